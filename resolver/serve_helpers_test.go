package resolver

import (
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// chanOrigin receives an answer the pipeline sends later (a cache miss).
type chanOrigin chan []byte

func (c chanOrigin) reply(out []byte, _ *scratch) { c <- append([]byte(nil), out...) }

// serveWire runs one packet through the pipeline in process, as a UDP
// query from client, and returns the reply (nil: none), waiting for a
// cache miss's answer. ok is false when the pipeline sent nothing.
func serveWire(t testing.TB, r *Resolver, pkt []byte, client string) []byte {
	t.Helper()
	s := newScratch()
	return serveWireWith(t, r, pkt, client, TransportUDP, s)
}

func serveWireWith(t testing.TB, r *Resolver, pkt []byte, client string, tr Transport, s *scratch) []byte {
	t.Helper()
	from := netip.AddrPortFrom(netip.MustParseAddr(client), 5000)
	later := make(chanOrigin, 1)
	req := request{pkt: pkt, client: from.Addr(), transport: tr, from: later, peer: from}
	out, pending := r.serve(&req, s)
	if !pending {
		if out == nil {
			return nil
		}
		return append([]byte(nil), out...)
	}
	select {
	case out := <-later:
		if len(out) == 0 {
			return nil
		}
		return out
	case <-time.After(5 * time.Second):
		t.Fatal("no answer within 5s")
		return nil
	}
}

// serveMsg is serveWire for a dns.Msg, unpacking the reply.
func serveMsg(t testing.TB, r *Resolver, req *dns.Msg) *dns.Msg {
	t.Helper()
	pkt, err := req.Pack()
	if err != nil {
		t.Fatal(err)
	}
	out := serveWire(t, r, pkt, "127.0.0.1")
	if out == nil {
		t.Fatalf("no reply to %v", req.Question)
	}
	m := new(dns.Msg)
	if err := m.Unpack(out); err != nil {
		t.Fatalf("reply does not unpack: %v", err)
	}
	return m
}

// serveOnce runs pkt through the pipeline from 127.0.0.1 over UDP, with no
// origin for a miss: for benchmarks and allocation counts of answers
// known at once.
func serveOnce(r *Resolver, pkt []byte, s *scratch) ([]byte, bool) {
	return serveAs(r, pkt, TransportUDP, s)
}

func serveAs(r *Resolver, pkt []byte, tr Transport, s *scratch) ([]byte, bool) {
	req := request{pkt: pkt, client: loopback, transport: tr, peer: netip.AddrPortFrom(loopback, 5000)}
	return r.serve(&req, s)
}

var loopback = netip.MustParseAddr("127.0.0.1")
