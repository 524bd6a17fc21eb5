package resolver

import (
	"bytes"
	"context"
	"net"
	"net/netip"
)

// Query is one client query as a listener received it: what every
// transport hands to the one pipeline.
type Query struct {
	Wire      []byte         // the DNS message, as received
	Client    netip.AddrPort // the real client (after PROXY/X-Forwarded-For from trusted proxies)
	Local     netip.AddrPort
	Transport Transport
	Token     string // device token from the DoH path or the SNI first label; "" if none
}

// QueryHandler answers one query; nil means "send nothing" (drop).
type QueryHandler func(ctx context.Context, q Query) []byte

// addrPortOf converts a listener's net.Addr, unmapping IPv4-in-IPv6 so
// policy sees 10.1.2.3, not ::ffff:10.1.2.3.
func addrPortOf(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		if a != nil {
			ap, _ = netip.ParseAddrPort(a.String())
		}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// Handle answers one query from a listener that waits for each answer in
// a goroutine of its own (DoH, DoQ): it runs the query through the
// pipeline and, for a cache miss, waits for the answer or ctx. The reply
// is the caller's; nil means send nothing.
func (r *Resolver) Handle(ctx context.Context, q Query) []byte {
	later := make(replyChan, 1) // never blocks the upstream's goroutine, even after ctx ends
	s := r.scratches.Get().(*scratch)
	out, pending := r.serveQuery(q, later, s)
	if !pending {
		out = bytes.Clone(out)
	}
	r.scratches.Put(s)
	if !pending {
		return out
	}
	select {
	case out := <-later:
		return out
	case <-ctx.Done():
		return nil
	}
}

// replyChan is the origin of a query whose listener waits for it.
type replyChan chan []byte

func (c replyChan) reply(out []byte, _ *scratch) { c <- bytes.Clone(out) }

// serveQuery runs q through the pipeline with s as scratch: the reply,
// in s's memory, when it is known at once, or pending, and from gets it
// later (see serve).
func (r *Resolver) serveQuery(q Query, from origin, s *scratch) ([]byte, bool) {
	req := request{pkt: q.Wire, client: q.Client.Addr().Unmap(), token: q.Token, transport: q.Transport,
		from: from, peer: q.Client, local: q.Local}
	return r.serve(&req, s)
}
