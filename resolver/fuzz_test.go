package resolver

import (
	"net"
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
