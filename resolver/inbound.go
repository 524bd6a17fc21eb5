package resolver

import (
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
	Transport string // "udp", "tcp", "tls", "https", "quic" (a bounded metrics label)
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
