package resolver

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func packedQuery(t testing.TB, name string, edns bool) []byte {
	t.Helper()
	m := new(dns.Msg).SetQuestion(name, dns.TypeAAAA)
	m.Id, m.CheckingDisabled = 0xbeef, true
	if edns {
		m.SetEdns0(4096, true)
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0123456789abcdef"})
	}
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return wire
}

func TestLimitedReply(t *testing.T) {
	for _, edns := range []bool{false, true} {
		query := packedQuery(t, "WwW.ExAmple.COM.", edns)
		for _, v := range []RateVerdict{RateRefuse, RateSlip} {
			out, ok := appendLimitedReply([]byte("prefix"), query, v)
			if !ok || string(out[:6]) != "prefix" {
				t.Fatalf("edns %v %v: ok %v, or the prefix was overwritten", edns, v, ok)
			}
			wire := out[6:]
			if len(wire) > len(query) || (!edns && len(wire) != len(query)) {
				t.Errorf("edns %v %v: reply %d bytes for a %d-byte query", edns, v, len(wire), len(query))
			}
			m := new(dns.Msg)
			if err := m.Unpack(wire); err != nil {
				t.Fatalf("edns %v %v: reply does not unpack: %v", edns, v, err)
			}
			wantRcode, wantTC := dns.RcodeRefused, false
			if v == RateSlip {
				wantRcode, wantTC = dns.RcodeSuccess, true
			}
			if !m.Response || m.Id != 0xbeef || m.Rcode != wantRcode || m.Truncated != wantTC ||
				!m.RecursionDesired || !m.RecursionAvailable || !m.CheckingDisabled || m.Authoritative {
				t.Errorf("edns %v %v: header %+v", edns, v, m.MsgHdr)
			}
			if len(m.Question) != 1 || m.Question[0].Name != "WwW.ExAmple.COM." || m.Question[0].Qtype != dns.TypeAAAA ||
				len(m.Answer)+len(m.Ns)+len(m.Extra) != 0 {
				t.Errorf("edns %v %v: question %v, %d records; want the question as sent and none", edns, v, m.Question, len(m.Answer)+len(m.Ns)+len(m.Extra))
			}
		}
		for _, v := range []RateVerdict{RateAllow, RateDrop} {
			if out, ok := appendLimitedReply(nil, query, v); ok || len(out) != 0 {
				t.Errorf("%v: ok %v, %d bytes; want nothing to send", v, ok, len(out))
			}
		}
	}
}

func TestLimitedReplyRefusesMalformed(t *testing.T) {
	good := packedQuery(t, "a.example.", false)
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for name, pkt := range map[string][]byte{
		"empty":             nil,
		"header only":       good[:headerLen],
		"cut in the name":   good[:headerLen+3],
		"cut before class":  good[:len(good)-1],
		"response":          mutate(func(b []byte) []byte { b[2] |= 0x80; return b }),
		"no question":       mutate(func(b []byte) []byte { b[5] = 0; return b }),
		"two questions":     mutate(func(b []byte) []byte { b[5] = 2; return b }),
		"compressed name":   append(append([]byte(nil), good[:headerLen]...), 0xC0, 0x0C, 0, 1, 0, 1),
		"label over 63":     append(append([]byte(nil), good[:headerLen]...), append([]byte{64}, bytes.Repeat([]byte{'a'}, 70)...)...),
		"name over 255":     append(append([]byte(nil), good[:headerLen]...), bytes.Repeat(append([]byte{63}, bytes.Repeat([]byte{'a'}, 63)...), 5)...),
		"only a root label": append(append([]byte(nil), good[:headerLen]...), 0),
	} {
		if out, ok := appendLimitedReply(nil, pkt, RateRefuse); ok {
			t.Errorf("%s: built a %d-byte reply, want none", name, len(out))
		}
	}
	root := append(append([]byte(nil), good[:headerLen]...), 0, 0, 1, 0, 1)
	if _, ok := appendLimitedReply(nil, root, RateRefuse); !ok {
		t.Error("a question for the root name is well-formed")
	}
	buf := make([]byte, 0, 512)
	if a := testing.AllocsPerRun(1000, func() { appendLimitedReply(buf, good, RateSlip) }); a != 0 {
		t.Errorf("appendLimitedReply allocates %.1f times with room in dst", a)
	}
}

// FuzzLimitedReply: whatever arrives, a limited reply is never longer than
// it, and when one is built it is a well-formed response with one question
// and no records.
func FuzzLimitedReply(f *testing.F) {
	f.Add(packedQuery(f, "a.example.", false), false)
	f.Add(packedQuery(f, "WwW.ExAmple.COM.", true), true)
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 0x0C, 0, 1, 0, 1}, false)
	f.Fuzz(func(t *testing.T, pkt []byte, slip bool) {
		v := RateRefuse
		if slip {
			v = RateSlip
		}
		out, ok := appendLimitedReply(nil, pkt, v)
		if !ok {
			return
		}
		if len(out) > len(pkt) {
			t.Fatalf("reply %d bytes for a %d-byte packet", len(out), len(pkt))
		}
		m := new(dns.Msg)
		if err := m.Unpack(out); err != nil {
			t.Fatalf("reply does not unpack: %v", err)
		}
		if !m.Response || m.Id != uint16(pkt[0])<<8|uint16(pkt[1]) || len(m.Question) != 1 || len(m.Answer)+len(m.Ns)+len(m.Extra) != 0 {
			t.Fatalf("reply %+v", m)
		}
	})
}

// limitingFront is a UDP DNS responder in front of the limiter, as the
// pipeline will use it: an answer when allowed, else the limited reply.
func limitingFront(t *testing.T, l *RateLimiter) string {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			v := l.Check(from.Addr(), "", true, time.Now())
			var out []byte
			if v == RateAllow {
				q := new(dns.Msg)
				if q.Unpack(buf[:n]) != nil {
					continue
				}
				r := new(dns.Msg).SetReply(q)
				r.Answer = append(r.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)})
				out, _ = r.Pack()
			} else if out, _ = appendLimitedReply(nil, buf[:n], v); out == nil {
				continue
			}
			pc.WriteToUDPAddrPort(out, from)
		}
	}()
	return pc.LocalAddr().String()
}

// TestRateLimitOverRealSockets: a client flooding from 127.0.0.5 is limited
// (REFUSED and TC replies no larger than its queries), while 127.0.0.6,
// asking at a normal pace meanwhile, gets every answer.
func TestRateLimitOverRealSockets(t *testing.T) {
	cfg := DefaultRateLimitConfig()
	cfg.QPS, cfg.Burst = 20, 10
	addr := limitingFront(t, NewRateLimiter(cfg, time.Now()))
	flood := &dns.Client{Net: "udp", Timeout: time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 5)}}}
	conn, err := flood.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	counts := map[string]int{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		calm := &dns.Client{Net: "udp", Timeout: time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 6)}}}
		for i := range 10 { // 10 queries 50 ms apart: under the 20 QPS limit
			r, _, err := calm.Exchange(new(dns.Msg).SetQuestion("calm.example.", dns.TypeA), addr)
			if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
				t.Errorf("calm client, query %d: %v %v", i, err, r)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	start := time.Now()
	for i := 0; i < 300 && time.Since(start) < 5*time.Second; i++ {
		q := new(dns.Msg).SetQuestion("flood.example.", dns.TypeA)
		q.SetEdns0(1232, false)
		qlen, _ := q.Pack()
		r, _, err := flood.ExchangeWithConn(q, conn)
		switch {
		case err != nil:
			counts["lost"]++
		case r.Truncated:
			counts["tc"]++
		case r.Rcode == dns.RcodeRefused:
			counts["refused"]++
		case len(r.Answer) == 1:
			counts["answered"]++
		}
		if err == nil && r.Rcode != dns.RcodeSuccess || err == nil && r.Truncated {
			if wire, _ := r.Pack(); len(wire) > len(qlen) {
				t.Errorf("limited reply of %d bytes to a %d-byte query", len(wire), len(qlen))
			}
		}
	}
	elapsed := time.Since(start)
	<-done
	t.Logf("flooder, %d queries in %v: %v", 300, elapsed, counts)
	maxAnswered := 10 + int(elapsed.Seconds()*20) + 1
	if counts["answered"] > maxAnswered || counts["refused"] == 0 || counts["tc"] == 0 || counts["lost"] != 0 {
		t.Errorf("flooder in %v: %v; want at most %d answered, the rest REFUSED and TC", elapsed, counts, maxAnswered)
	}
}
