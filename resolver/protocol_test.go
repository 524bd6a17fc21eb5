package resolver

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnswire"
)

// bigTXT returns a TXT record of about size bytes in 200-byte strings.
func bigTXT(name string, size int) string {
	var parts []string
	for n := 0; n < size; n += 200 {
		parts = append(parts, `"`+strings.Repeat("x", 200)+`"`)
	}
	return name + " 300 IN TXT " + strings.Join(parts, " ")
}

func TestLargeAnswerTruncatesOverUDPAndFitsOverTCP(t *testing.T) {
	up := startUpstream(t, bigTXT("big.example.", 4000))
	up.udpCap.Store(512) // force the upstream leg through TC → TCP as well
	srv := startResolver(t, Config{}, Options{}, up.addr)

	udp := ask(t, "udp", srv.addr, "big.example.", dns.TypeTXT, false)
	if !udp.Truncated {
		t.Fatalf("4 KB answer over UDP without EDNS: TC not set (%d answers)", len(udp.Answer))
	}
	// What a stub does next: retry over TCP and get everything.
	tcp := ask(t, "tcp", srv.addr, "big.example.", dns.TypeTXT, false)
	if tcp.Truncated || len(tcp.Answer) != 1 || len(strings.Join(tcp.Answer[0].(*dns.TXT).Txt, "")) < 4000 {
		t.Fatalf("TCP answer incomplete: TC=%v answers=%d", tcp.Truncated, len(tcp.Answer))
	}
	// dns.Client does the TC → TCP retry itself when asked to; the client
	// buffer honours the EDNS size we advertise.
	edns := ask(t, "udp", srv.addr, "big.example.", dns.TypeTXT, true)
	if !edns.Truncated {
		t.Fatalf("4 KB answer fitted into the 1232-byte EDNS limit?")
	}
	if opt := edns.IsEdns0(); opt == nil || opt.UDPSize() != dnswire.UDPSize {
		t.Fatalf("our OPT record missing or wrong size: %v", opt)
	}
}

func TestEDNSClientBufferHonoured(t *testing.T) {
	up := startUpstream(t, bigTXT("mid.example.", 1000))
	srv := startResolver(t, Config{}, Options{}, up.addr)
	m := new(dns.Msg).SetQuestion("mid.example.", dns.TypeTXT)
	m.SetEdns0(4096, false)
	c := &dns.Client{Net: "udp", UDPSize: 4096, Timeout: 3 * time.Second}
	resp, _, err := c.Exchange(m, srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Truncated || len(resp.Answer) != 1 {
		t.Fatalf("1 KB answer with a 4096-byte client buffer was truncated")
	}
}

func TestANYGetsMinimalAnswer(t *testing.T) {
	up := startUpstream(t, testZone...)
	srv := startResolver(t, Config{}, Options{}, up.addr)
	resp := ask(t, "udp", srv.addr, "a.example.", dns.TypeANY, false)
	if len(resp.Answer) != 1 || resp.Answer[0].Header().Rrtype != dns.TypeHINFO {
		t.Fatalf("ANY answer = %v, want one HINFO (RFC 8482)", resp.Answer)
	}
	if up.queries.Load() != 0 {
		t.Fatalf("ANY was forwarded upstream")
	}
}

func TestNonQueryOpcodesAreNotImplemented(t *testing.T) {
	up := startUpstream(t, testZone...)
	srv := startResolver(t, Config{}, Options{}, up.addr)
	for _, op := range []int{dns.OpcodeNotify, dns.OpcodeUpdate, dns.OpcodeStatus} {
		m := new(dns.Msg).SetQuestion("a.example.", dns.TypeSOA)
		m.Opcode = op
		resp, err := dns.Exchange(m, srv.addr)
		if err != nil {
			t.Fatalf("opcode %d: %v", op, err)
		}
		if resp.Rcode != dns.RcodeNotImplemented {
			t.Errorf("opcode %s: rcode %s, want NOTIMP", dns.OpcodeToString[op], dns.RcodeToString[resp.Rcode])
		}
	}
}

// A message may carry hundreds of questions; the error it gets (NOTIMP
// for UPDATE, FORMERR for a NOTIFY, per miekg/dns's accept rules) must
// still fit 512 bytes over UDP, so it echoes none of them.
func TestManyQuestionsGetAHeaderOnlyReply(t *testing.T) {
	up := startUpstream(t, testZone...)
	srv := startResolver(t, Config{}, Options{}, up.addr)
	for op, want := range map[int]int{dns.OpcodeUpdate: dns.RcodeNotImplemented, dns.OpcodeNotify: dns.RcodeFormatError} {
		m := new(dns.Msg).SetQuestion("a.example.", dns.TypeSOA)
		m.Opcode = op
		for i := range 300 {
			m.Question = append(m.Question, dns.Question{Name: fmt.Sprintf("q%d.example.", i), Qtype: dns.TypeSOA, Qclass: dns.ClassINET})
		}
		wire, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		out := sendRaw(t, srv.addr, wire)
		resp := new(dns.Msg)
		if err := resp.Unpack(out); err != nil {
			t.Fatal(err)
		}
		if n := len(out); n > dns.MinMsgSize || resp.Rcode != want || resp.Id != m.Id || len(resp.Question) != 0 || resp.Opcode != op {
			t.Fatalf("%s: %d-byte reply, rcode %s, %d questions; want %s with none, within 512 bytes", dns.OpcodeToString[op],
				len(out), dns.RcodeToString[resp.Rcode], len(resp.Question), dns.RcodeToString[want])
		}
	}
}

func TestAccessControlRefusesOtherClients(t *testing.T) {
	up := startUpstream(t, testZone...)
	srv := startResolver(t, Config{Access: AccessConfig{Allow: []string{"127.0.0.2"}}}, Options{}, up.addr)
	resp := ask(t, "udp", srv.addr, "a.example.", dns.TypeA, false)
	if resp.Rcode != dns.RcodeRefused {
		t.Fatalf("client 127.0.0.1 got %s, want REFUSED", dns.RcodeToString[resp.Rcode])
	}
	c := &dns.Client{Net: "udp", Timeout: 3 * time.Second,
		Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP("127.0.0.2")}}}
	m := new(dns.Msg).SetQuestion("a.example.", dns.TypeA)
	resp, _, err := c.Exchange(m, srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Rcode != dns.RcodeSuccess {
		t.Fatalf("allowed client 127.0.0.2 got %s", dns.RcodeToString[resp.Rcode])
	}
}

// TestMalformedPacketsNeverBreakTheServer throws junk at both transports;
// the server must answer FORMERR where a header can be read, stay silent
// otherwise, and keep answering real queries afterwards.
func TestMalformedPacketsNeverBreakTheServer(t *testing.T) {
	up := startUpstream(t, testZone...)
	srv := startResolver(t, Config{}, Options{}, up.addr)
	good := new(dns.Msg).SetQuestion("a.example.", dns.TypeA)
	wire, _ := good.Pack()
	junk := [][]byte{
		{},
		{0x12},
		wire[:12],                        // header only, claims one question
		append(wire[:12:12], 0xff, 0xff), // label length beyond the packet
		append(append([]byte{}, wire...), make([]byte, 3000)...),
		[]byte(strings.Repeat("\xc0\x0c", 100)),
	}
	conn, err := net.Dial("udp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i, p := range junk {
		if _, err := conn.Write(p); err != nil {
			t.Fatalf("junk %d: %v", i, err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 65535)
		if n, err := conn.Read(buf); err == nil {
			var resp dns.Msg
			if err := resp.Unpack(buf[:n]); err != nil && n >= 12 {
				t.Fatalf("junk %d: unreadable reply", i)
			}
			if resp.Rcode != dns.RcodeFormatError && resp.Rcode != dns.RcodeSuccess {
				t.Errorf("junk %d: rcode %s", i, dns.RcodeToString[resp.Rcode])
			}
		}
	}
	// Over TCP: a length prefix promising more than is sent, then close.
	tc, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = tc.Write([]byte{0xff, 0xff, 1, 2, 3})
	tc.Close()
	if resp := ask(t, "udp", srv.addr, "a.example.", dns.TypeA, false); len(resp.Answer) != 1 {
		t.Fatalf("server stopped answering after junk: %v", resp)
	}
	if resp := ask(t, "tcp", srv.addr, "a.example.", dns.TypeA, false); len(resp.Answer) != 1 {
		t.Fatalf("TCP stopped answering after junk: %v", resp)
	}
}

func TestShutdownFinishesInFlightQueries(t *testing.T) {
	up := startUpstream(t, testZone...)
	srv := startResolver(t, Config{}, Options{}, up.addr)
	ask(t, "udp", srv.addr, "a.example.", dns.TypeA, false)
	if err := srv.Ready(); err != nil {
		t.Fatalf("not ready after an answer: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if srv.Ready() == nil {
		t.Fatalf("still ready after shutdown")
	}
	c := &dns.Client{Net: "tcp", Timeout: 500 * time.Millisecond}
	if _, _, err := c.Exchange(new(dns.Msg).SetQuestion("a.example.", dns.TypeA), srv.addr); err == nil {
		t.Fatalf("TCP listener still answers after shutdown")
	}
}

// TestReadinessProbe: /readyz must turn green without client traffic (a
// load balancer sends none until it is green), and stay red while no
// upstream answers.
func TestReadinessProbe(t *testing.T) {
	up := startUpstream(t, testZone...)
	srv := startResolver(t, Config{}, Options{}, up.addr)
	deadline := time.Now().Add(5 * time.Second)
	for srv.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not ready 5 s after start with a working upstream: %v", srv.Ready())
		}
		time.Sleep(10 * time.Millisecond)
	}
	dead := startUpstream(t)
	dead.stop()
	down := startResolver(t, Config{}, Options{}, dead.addr)
	time.Sleep(100 * time.Millisecond)
	if err := down.Ready(); err == nil || !strings.Contains(err.Error(), "upstream") {
		t.Fatalf("ready with a dead upstream (%v)", err)
	}
}

// TestIPv6AndDualStackListeners: an IPv6 listener answers over UDP and
// TCP, and [::] also serves IPv4 clients, as operators expect from "[::]:53".
func TestIPv6AndDualStackListeners(t *testing.T) {
	if c, err := net.ListenPacket("udp", "[::1]:0"); err != nil {
		t.Skip("no IPv6 loopback here")
	} else {
		c.Close()
	}
	up := startUpstream(t, testZone...)
	for _, listen := range []string{"[::1]:0", "[::]:0"} {
		cfg := DefaultConfig()
		cfg.Listen = []string{listen}
		fwd := newTestForwarder(t, up.addr)
		r, err := New(Options{Config: cfg, Upstream: fwd})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(r.Addrs()[0].String())
		targets := []string{"[::1]:" + port}
		if listen == "[::]:0" {
			targets = append(targets, "127.0.0.1:"+port)
		}
		for _, addr := range targets {
			for _, proto := range []string{"udp", "tcp"} {
				if resp := ask(t, proto, addr, "a.example.", dns.TypeA, false); len(resp.Answer) != 1 {
					t.Errorf("%s via %s %s: %v", listen, proto, addr, resp)
				}
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := r.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		cancel()
	}
}

// TestPendingQueriesAreBounded: with every slot waiting on a silent
// upstream, further queries get SERVFAIL at once instead of piling up.
func TestPendingQueriesAreBounded(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0") // reads nothing, answers nothing
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	srv := startResolver(t, Config{}, Options{MaxPending: 2, Timeout: 2 * time.Second}, silent.LocalAddr().String())
	conn, err := net.Dial("udp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range 6 {
		m := new(dns.Msg).SetQuestion(fmt.Sprintf("n%d.example.", i), dns.TypeA)
		m.Id = uint16(100 + i)
		wire, _ := m.Pack()
		if _, err := conn.Write(wire); err != nil {
			t.Fatal(err)
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond)) // before the 500 ms upstream timeout
	refused := 0
	buf := make([]byte, 512)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			break
		}
		var resp dns.Msg
		if resp.Unpack(buf[:n]) == nil && resp.Rcode == dns.RcodeServerFailure {
			refused++
		}
	}
	if refused != 4 {
		t.Fatalf("%d immediate SERVFAILs with 2 slots and 6 queries, want 4", refused)
	}
}
