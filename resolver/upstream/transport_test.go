package upstream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnstest"

	"github.com/dnsward/dnsward/internal/dnswire"
)

func TestForwardsRecordsIntactOverEveryProtocol(t *testing.T) {
	udpTCP, _ := startUDPTCP(t, serve(zone))
	dotAddr, _, dotCert := startTLS(t, serve(zone))
	dohURL, dohCert, h2 := startDoH(t, zone)
	servers := map[string]string{
		"bare":   udpTCP,
		"udp":    "udp://" + udpTCP,
		"tcp":    "tcp://" + udpTCP,
		"tls":    "tls://dns.test@" + dotAddr,
		"tls-ip": "tls://" + dotAddr, // certificate has 127.0.0.1 as an IP SAN
		"https":  dohURL,
	}
	questions := []struct {
		name  string
		qtype uint16
	}{
		{"a.test.", dns.TypeA},
		{"AAAA.Test.", dns.TypeAAAA}, // mixed case must come back as sent
		{"cname.test.", dns.TypeA},
		{"mx.test.", dns.TypeMX},
		{"txt.test.", dns.TypeTXT},
		{"big.test.", dns.TypeTXT}, // 4 KB: truncated over UDP, so TCP
		{"missing.test.", dns.TypeA},
	}
	for proto, server := range servers {
		t.Run(proto, func(t *testing.T) {
			f := newForwarder(t, Config{Servers: []string{server}}, Options{TLSConfig: trust(dotCert, dohCert)})
			for _, qq := range questions {
				q := query(qq.name, qq.qtype)
				q.Id = 4242
				before, _ := q.Pack()
				r, err := f.Exchange(context.Background(), q)
				if err != nil {
					t.Fatalf("%s %s: %v", qq.name, dns.TypeToString[qq.qtype], err)
				}
				want := zone(q)
				if r.Id != 4242 || r.Rcode != want.Rcode || r.Truncated {
					t.Errorf("%s: id %d rcode %d tc %v, want id 4242 rcode %d", qq.name, r.Id, r.Rcode, r.Truncated, want.Rcode)
				}
				if !slices.Equal(answerStrings(r), answerStrings(want)) {
					t.Errorf("%s: answer\n%v\nwant\n%v", qq.name, answerStrings(r), answerStrings(want))
				}
				if r.Question[0] != q.Question[0] {
					t.Errorf("question %v, want %v", r.Question[0], q.Question[0])
				}
				if r.IsEdns0() != nil {
					t.Errorf("%s: reply carries an OPT record the client never sent", qq.name)
				}
				if after, _ := q.Pack(); !bytes.Equal(before, after) {
					t.Errorf("%s: Exchange modified the query", qq.name)
				}
			}
		})
	}
	if h2.Load() == 0 {
		t.Error("DoH did not use HTTP/2")
	}
}

func TestTruncatedUDPAnswerRetriedOverTCP(t *testing.T) {
	var seen counter
	addr, _ := startUDPTCP(t, seen.wrap(serve(zone)))
	f := newForwarder(t, Config{Servers: []string{"udp://" + addr}}, Options{})
	r, err := f.Exchange(context.Background(), query("big.test.", dns.TypeTXT))
	if err != nil {
		t.Fatal(err)
	}
	size := 0
	for _, rr := range r.Answer {
		size += len(rr.(*dns.TXT).Txt[0])
	}
	if len(r.Answer) != 16 || size != 16*255 || r.Truncated {
		t.Fatalf("got %d records, %d bytes of text, tc=%v; want 16 records, %d bytes", len(r.Answer), size, r.Truncated, 16*255)
	}
	if seen.udp.Load() != 1 || seen.tcp.Load() != 1 {
		t.Errorf("server saw %d UDP and %d TCP queries, want 1 and 1", seen.udp.Load(), seen.tcp.Load())
	}
}

// evilServer answers each query first with forged replies (wrong ID, then
// the right ID for another question, then a query instead of a reply) and,
// if honest, finally with the real answer.
func evilServer(t *testing.T, honest bool) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	forged, _ := dns.NewRR("a.test. 300 IN A 198.51.100.66")
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			req := new(dns.Msg)
			if req.Unpack(buf[:n]) != nil {
				continue
			}
			wrongID := new(dns.Msg).SetReply(req)
			wrongID.Id++
			wrongID.Answer = []dns.RR{forged}
			wrongQ := new(dns.Msg).SetReply(req)
			wrongQ.Question[0].Name = "other.test."
			wrongQ.Answer = []dns.RR{forged}
			notReply := req.Copy()
			replies := []*dns.Msg{wrongID, wrongQ, notReply}
			if honest {
				replies = append(replies, zone(req))
			}
			for _, m := range replies {
				out, _ := m.Pack()
				pc.WriteTo(out, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

func TestForgedUDPRepliesAreIgnored(t *testing.T) {
	rec := &recorder{}
	addr := evilServer(t, true)
	f := newForwarder(t, Config{Servers: []string{addr}}, Options{Observer: rec})
	r, err := f.Exchange(context.Background(), query("a.test.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if got := answerStrings(r); len(got) != 1 || !strings.Contains(got[0], "192.0.2.1") {
		t.Fatalf("answer %v, want the honest 192.0.2.1", got)
	}
	if rec.resultCount(addr+" success") != 1 {
		t.Errorf("observer saw %v", rec.results)
	}
}

func TestOnlyForgedRepliesIsBadResponse(t *testing.T) {
	rec := &recorder{}
	addr := evilServer(t, false)
	f := newForwarder(t, Config{Servers: []string{addr}, Timeout: 200 * time.Millisecond}, Options{Observer: rec})
	start := time.Now()
	_, err := f.Exchange(context.Background(), query("a.test.", dns.TypeA))
	if err == nil || !errors.Is(err, errBadResponse) {
		t.Fatalf("err = %v, want a bad response error", err)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("took %v with a 200ms timeout", elapsed)
	}
	if rec.resultCount(addr+" bad_response") != 1 {
		t.Errorf("observer saw %v", rec.results)
	}
}

func TestEDNSAdvertisedAndClientOptionsNotForwarded(t *testing.T) {
	seen := make(chan *dns.OPT, 2)
	addr, _ := startUDPTCP(t, serve(func(req *dns.Msg) *dns.Msg {
		seen <- req.IsEdns0()
		m := zone(req)
		m.SetEdns0(4096, false)
		return m
	}))
	f := newForwarder(t, Config{Servers: []string{addr}}, Options{})

	r, err := f.Exchange(context.Background(), query("a.test.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if opt := <-seen; opt == nil || opt.UDPSize() != dnswire.UDPSize || opt.Do() {
		t.Errorf("upstream saw OPT %v, want UDP size %d without DO", opt, dnswire.UDPSize)
	}
	if r.IsEdns0() != nil {
		t.Error("client sent no EDNS but the reply has an OPT record")
	}

	// A client's options (ECS says where it is) stay with dnsward.
	q := query("a.test.", dns.TypeA)
	q.SetEdns0(4096, true)
	q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_LOCAL{Code: 65001, Data: []byte("private")})
	r, err = f.Exchange(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	opt := <-seen
	if opt == nil || opt.UDPSize() != dnswire.UDPSize || !opt.Do() || len(opt.Option) != 0 {
		t.Errorf("upstream saw OPT %v, want size %d, DO and no options", opt, dnswire.UDPSize)
	}
	if r.IsEdns0() == nil {
		t.Error("client sent EDNS but the reply has no OPT record")
	}
	if q.IsEdns0().UDPSize() != 4096 {
		t.Error("Exchange changed the client's OPT record")
	}
}

func TestStreamConnectionsAreReused(t *testing.T) {
	addr, tcpConns := startUDPTCP(t, serve(zone))
	dotAddr, tlsConns, cert := startTLS(t, serve(zone))
	for name, c := range map[string]struct {
		server string
		conns  *dnstest.CountingListener
	}{"tcp": {"tcp://" + addr, tcpConns}, "tls": {"tls://dns.test@" + dotAddr, tlsConns}} {
		t.Run(name, func(t *testing.T) {
			f := newForwarder(t, Config{Servers: []string{c.server}}, Options{TLSConfig: trust(cert)})
			for i := 0; i < 10; i++ {
				if _, err := f.Exchange(context.Background(), query("a.test.", dns.TypeA)); err != nil {
					t.Fatal(err)
				}
			}
			if n := c.conns.Accepted.Load(); n != 1 {
				t.Errorf("10 sequential queries opened %d connections, want 1", n)
			}
		})
	}
}

func TestIdleConnectionClosedByServerIsRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := &dnstest.CountingListener{Listener: ln}
	dnstest.Start(t, &dns.Server{Listener: conns, Handler: serve(zone),
		IdleTimeout: func() time.Duration { return 50 * time.Millisecond }})
	rec := &recorder{}
	server := "tcp://" + ln.Addr().String()
	f := newForwarder(t, Config{Servers: []string{server}}, Options{Observer: rec})
	for i := 0; i < 2; i++ {
		if _, err := f.Exchange(context.Background(), query("a.test.", dns.TypeA)); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		time.Sleep(200 * time.Millisecond) // the server hangs up on the idle connection
	}
	if n := conns.Accepted.Load(); n != 2 {
		t.Errorf("accepted %d connections, want 2", n)
	}
	if rec.resultCount(server+" success") != 2 {
		t.Errorf("observer saw %v, want two successes", rec.results)
	}
}

func TestExchangeRejectsQueryWithoutOneQuestion(t *testing.T) {
	f := newForwarder(t, Config{Servers: []string{"127.0.0.1:53"}}, Options{})
	if _, err := f.Exchange(context.Background(), new(dns.Msg)); err == nil {
		t.Fatal("want an error for a query with no question")
	}
}

// rawTCPServer reads one length-prefixed query per connection, writes
// whatever reply returns for it, and hangs up.
func rawTCPServer(t *testing.T, reply func(query []byte) []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var size [2]byte
				if _, err := io.ReadFull(c, size[:]); err != nil {
					return
				}
				q := make([]byte, int(size[0])<<8|int(size[1]))
				if _, err := io.ReadFull(c, q); err != nil {
					return
				}
				c.Write(reply(q))
			}()
		}
	}()
	return "tcp://" + ln.Addr().String()
}

func TestBrokenTCPRepliesFailCleanly(t *testing.T) {
	framed := func(b []byte) []byte { return append([]byte{byte(len(b) >> 8), byte(len(b))}, b...) }
	cases := map[string]struct {
		reply   func(q []byte) []byte
		outcome string
	}{
		"length says 65535, connection closes early": {
			func(q []byte) []byte { return []byte{0xff, 0xff, q[0], q[1], 0x81} }, OutcomeError},
		"garbage after the right ID": {
			func(q []byte) []byte { return framed([]byte{q[0], q[1], 0x81, 0x80, 0xff, 0xff, 0xff}) }, OutcomeBadResponse},
		"well-formed answer with the wrong ID": {
			func(q []byte) []byte {
				req := new(dns.Msg)
				req.Unpack(q)
				m := zone(req)
				m.Id++
				out, _ := m.Pack()
				return framed(out)
			}, OutcomeBadResponse},
		"zero-length message": {
			func(q []byte) []byte { return []byte{0, 0} }, OutcomeBadResponse},
		"SOA record with no data": {
			func(q []byte) []byte {
				req := new(dns.Msg)
				req.Unpack(q)
				out, _ := new(dns.Msg).SetRcode(req, dns.RcodeNameError).Pack()
				out[9] = 1 // NSCOUNT 1: root, SOA, IN, TTL 300, RDLENGTH 0
				out = append(out, 0, 0, 6, 0, 1, 0, 0, 1, 44, 0, 0)
				return framed(out)
			}, OutcomeBadResponse},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			server := rawTCPServer(t, c.reply)
			rec := &recorder{}
			f := newForwarder(t, Config{Servers: []string{server}}, Options{Observer: rec})
			start := time.Now()
			if _, err := f.Exchange(context.Background(), query("a.test.", dns.TypeA)); err == nil {
				t.Fatal("want an error")
			}
			if elapsed := time.Since(start); elapsed > 2500*time.Millisecond {
				t.Errorf("took %v; a broken reply should fail at once, not at the 5s timeout", elapsed)
			}
			if rec.resultCount(server+" "+c.outcome) != 1 {
				t.Errorf("observer saw %v, want one %s", rec.results, c.outcome)
			}
		})
	}
}
