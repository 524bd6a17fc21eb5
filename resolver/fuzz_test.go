package resolver

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/resolver/upstream"
)

// recordingWriter is a dns.ResponseWriter that keeps what the handler
// writes, for driving ServeDNS without sockets in fuzzing.
type recordingWriter struct {
	remote net.Addr
	msgs   []*dns.Msg
}

func (w *recordingWriter) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}
func (w *recordingWriter) RemoteAddr() net.Addr        { return w.remote }
func (w *recordingWriter) WriteMsg(m *dns.Msg) error   { w.msgs = append(w.msgs, m); return nil }
func (w *recordingWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *recordingWriter) Close() error                { return nil }
func (w *recordingWriter) TsigStatus() error           { return nil }
func (w *recordingWriter) TsigTimersOnly(bool)         {}
func (w *recordingWriter) Hijack()                     {}

// FuzzServeDNS feeds arbitrary packets through the whole pipeline (policy,
// cache, a real upstream on loopback): every packet that unpacks must get
// exactly one reply that packs, carries the query's ID and fits 512 bytes
// over UDP without EDNS.
func FuzzServeDNS(f *testing.F) {
	for _, m := range []*dns.Msg{
		new(dns.Msg).SetQuestion("a.example.", dns.TypeA),
		new(dns.Msg).SetQuestion("www.tiktok.com.", dns.TypeAAAA),
		new(dns.Msg).SetQuestion("big.example.", dns.TypeTXT),
		new(dns.Msg).SetQuestion("alias.example.", dns.TypeANY),
	} {
		wire, _ := m.Pack()
		f.Add(wire)
	}
	edns := new(dns.Msg).SetQuestion("a.example.", dns.TypeA)
	edns.SetEdns0(512, true)
	wire, _ := edns.Pack()
	f.Add(wire)

	up := startUpstreamF(f, append(testZone, bigTXT("big.example.", 3000))...)
	fwd, err := upstream.New(upstream.Config{Servers: []string{up.addr}, Strategy: "failover", Timeout: 300 * time.Millisecond}, upstream.Options{})
	if err != nil {
		f.Fatal(err)
	}
	cfg := DefaultConfig()
	r, err := New(Options{Config: cfg, Upstream: fwd, Policy: &suffixPolicy{block: map[string]string{"tiktok.com": "tiktok"}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, packet []byte) {
		req := new(dns.Msg)
		if req.Unpack(packet) != nil {
			return // miekg's server answers FORMERR or drops before the handler
		}
		w := &recordingWriter{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}}
		r.ServeDNS(w, req)
		if len(w.msgs) != 1 {
			t.Fatalf("%d replies to one query", len(w.msgs))
		}
		resp := w.msgs[0]
		out, err := resp.Pack()
		if err != nil {
			t.Fatalf("reply does not pack: %v", err)
		}
		if resp.Id != req.Id {
			t.Fatalf("reply ID %d, query ID %d", resp.Id, req.Id)
		}
		if req.IsEdns0() == nil && len(out) > dns.MinMsgSize {
			t.Fatalf("UDP reply of %d bytes without EDNS", len(out))
		}
	})
}

// FuzzFastUDP feeds arbitrary packets to the hand-written wire parser of
// the UDP fast path. It must never panic; when it answers, the answer
// must unpack, carry the query's ID and question, and match what the full
// pipeline answers for the same packet.
func FuzzFastUDP(f *testing.F) {
	for _, m := range []*dns.Msg{
		new(dns.Msg).SetQuestion("a.example.", dns.TypeA),
		new(dns.Msg).SetQuestion("WWW.tiktok.com.", dns.TypeAAAA),
		new(dns.Msg).SetQuestion("alias.example.", dns.TypeA).SetEdns0(1232, true),
		new(dns.Msg).SetQuestion("missing.example.", dns.TypeMX).SetEdns0(600, false),
	} {
		wire, _ := m.Pack()
		f.Add(wire)
	}
	up := startUpstreamF(f, testZone...)
	fwd, err := upstream.New(upstream.Config{Servers: []string{up.addr}, Strategy: "failover", Timeout: 300 * time.Millisecond}, upstream.Options{})
	if err != nil {
		f.Fatal(err)
	}
	r, err := New(Options{Config: DefaultConfig(), Upstream: fwd, Policy: &suffixPolicy{block: map[string]string{"tiktok.com": "tiktok"}}})
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range []string{"a.example.", "alias.example.", "missing.example."} { // warm the cache
		serveWith(r, new(dns.Msg).SetQuestion(name, dns.TypeA))
	}
	from := netip.MustParseAddrPort("127.0.0.1:5000")
	f.Fuzz(func(t *testing.T, packet []byte) {
		var s fastScratch
		out, ok := r.fastUDP(packet, from, &s)
		if !ok {
			return
		}
		fast := new(dns.Msg)
		if err := fast.Unpack(out); err != nil {
			t.Fatalf("fast answer does not unpack: %v", err)
		}
		req := new(dns.Msg)
		if err := req.Unpack(packet); err != nil {
			t.Fatalf("fast path answered a packet the full parser rejects: %v", err)
		}
		if fast.Id != req.Id || len(fast.Question) != 1 || fast.Question[0] != req.Question[0] {
			t.Fatalf("fast answer ID/question %d %v, query %d %v", fast.Id, fast.Question, req.Id, req.Question)
		}
		slow := serveWith(r, req)
		if !strings.EqualFold(withoutTTLs(fast), withoutTTLs(slow)) {
			t.Fatalf("fast and full answers differ:\n%s\n%s", fast, slow)
		}
	})
}

// withoutTTLs prints m with TTLs zeroed: the two paths may straddle a
// second boundary.
func withoutTTLs(m *dns.Msg) string {
	c := m.Copy()
	for _, s := range [][]dns.RR{c.Answer, c.Ns, c.Extra} {
		for _, rr := range s {
			if rr.Header().Rrtype != dns.TypeOPT {
				rr.Header().Ttl = 0
			}
		}
	}
	return c.String()
}
