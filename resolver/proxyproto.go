package resolver

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
)

// PROXY protocol (HAProxy's spec, versions 1 and 2) carries the client
// address through an L4 load balancer. The rules dnsward applies:
//   - from a proxy_protocol.trusted peer a header is required on TCP and
//     DoT: a balancer configured to send one always does, and a connection
//     without one would give every device the balancer's group. On DoH it
//     is optional, because a trusted peer there may be an HTTP proxy that
//     names the client in Forwarded/X-Forwarded-For instead. LOCAL (health
//     checks) keeps the peer address.
//   - from any other peer a header is refused: a client must not choose
//     its own address, and with it its group. Plain DNS and TLS proceed.
// Either way the connection is closed and the reason counted.

var (
	proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")
	proxyV1Sig = []byte("PROXY ")
)

const (
	// maxProxyV2Body bounds the addresses and TLVs after the 16-byte v2
	// header; balancers' TLVs (AWS VPC endpoint id, GCP PSC id) are far
	// smaller, and the spec's 64 KiB would be a memory lever.
	maxProxyV2Body = 1024
	maxProxyV1Line = 107 // the spec's longest v1 line, CRLF included
)

// Reasons a connection is closed over its PROXY header; the label values
// of dnsward_proxy_protocol_rejected_total.
const (
	ProxyUntrusted = "untrusted" // a header from a peer not in proxy_protocol.trusted
	ProxyMissing   = "missing"   // no header from a trusted peer
	ProxyMalformed = "malformed"
	ProxyOversized = "oversized"
	ProxyTimeout   = "timeout" // the header did not arrive in time
)

// ProxyError says why a connection was refused.
type ProxyError struct {
	Reason string // one of the Proxy* constants
	Err    error
}

func (e *ProxyError) Error() string { return "PROXY protocol: " + e.Reason + ": " + e.Err.Error() }
func (e *ProxyError) Unwrap() error { return e.Err }

// ProxyPolicy decides, per connection, whether a PROXY header is expected.
type ProxyPolicy struct {
	trusted []netip.Prefix
}

// NewProxyPolicy compiles cfg (validated by Validate; errors at the same key).
func NewProxyPolicy(cfg ProxyConfig) (*ProxyPolicy, error) {
	ps, err := cfg.prefixes()
	if err != nil {
		return nil, err
	}
	return &ProxyPolicy{trusted: ps}, nil
}

// Any reports whether any proxy is trusted, so that listeners expect
// PROXY headers at all.
func (p *ProxyPolicy) Any() bool { return p != nil && len(p.trusted) > 0 }

// Trusted reports whether a is one of the trusted proxies.
func (p *ProxyPolicy) Trusted(a netip.Addr) bool {
	if p == nil {
		return false
	}
	a = a.Unmap()
	for _, pr := range p.trusted {
		if pr.Contains(a) {
			return true
		}
	}
	return false
}

// ClientConn is an accepted connection whose RemoteAddr is the real client
// (from a trusted PROXY header, else the peer). Bytes read while looking for
// a header are replayed first. Peer is the TCP peer itself.
type ClientConn struct {
	net.Conn
	r             *bufio.Reader
	client, local net.Addr
	peer          net.Addr
	onClose       func()
	closeOnce     sync.Once
}

func (c *ClientConn) Read(p []byte) (int, error) {
	if c.r != nil && c.r.Buffered() > 0 {
		return c.r.Read(p)
	}
	return c.Conn.Read(p)
}

// RemoteAddr is the client: from the PROXY header, or the TCP peer.
func (c *ClientConn) RemoteAddr() net.Addr { return c.client }

// LocalAddr is the address the client connected to: the header's
// destination (the balancer's address) when there was one.
func (c *ClientConn) LocalAddr() net.Addr { return c.local }

// Peer is the TCP peer (the balancer, when a header was used).
func (c *ClientConn) Peer() net.Addr { return c.peer }

// Close closes the connection once and runs the close hook.
func (c *ClientConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		if c.onClose != nil {
			c.onClose()
		}
	})
	return err
}

// Accept reads a PROXY header from conn when one is there or expected and
// applies the policy. The caller sets conn's read deadline; a nil policy
// trusts no one. headerOptional lets a trusted peer omit the header (DoH
// behind an HTTP proxy). On error the caller closes conn: a *ProxyError is a
// refusal to count, anything else a client that sent nothing in time.
func (p *ProxyPolicy) Accept(conn net.Conn, headerOptional bool) (*ClientConn, error) {
	cc := &ClientConn{Conn: conn, r: bufio.NewReaderSize(conn, 512), client: conn.RemoteAddr(), local: conn.LocalAddr(), peer: conn.RemoteAddr()}
	trusted := p.Trusted(addrPortOf(conn.RemoteAddr()).Addr())
	version, err := sniffProxy(cc.r)
	switch {
	case errors.Is(err, io.EOF) && trusted && !headerOptional: // e.g. a balancer's TCP health check
		return nil, &ProxyError{ProxyMissing, fmt.Errorf("trusted proxy %s closed before sending a header", conn.RemoteAddr())}
	case err != nil && trusted:
		return nil, proxyReadError(err, "waiting for the header")
	case err != nil:
		return nil, err // silent or gone before its first bytes: nothing to serve (not a PROXY error)
	case version == 0 && trusted && !headerOptional:
		return nil, &ProxyError{ProxyMissing, fmt.Errorf("no header from trusted proxy %s", conn.RemoteAddr())}
	case version == 0:
		return cc, nil
	case !trusted:
		return nil, &ProxyError{ProxyUntrusted, fmt.Errorf("header from %s, which is not in proxy_protocol.trusted", conn.RemoteAddr())}
	}
	var src, dst netip.AddrPort
	if version == 2 {
		src, dst, err = readProxyV2(cc.r)
	} else {
		src, dst, err = readProxyV1(cc.r)
	}
	if err != nil {
		return nil, err
	}
	if src.IsValid() {
		cc.client = net.TCPAddrFromAddrPort(src)
		cc.local = net.TCPAddrFromAddrPort(dst)
	}
	return cc, nil
}

// sniffProxy peeks at the first bytes: 2 or 1 for a v2 or v1 header, 0 for
// none. Most connections are decided by their first byte (TLS 0x16, a DNS
// length 0x00), so no client waits for bytes it will never send.
func sniffProxy(r *bufio.Reader) (int, error) {
	for n := 1; n <= len(proxyV2Sig); n++ {
		b, err := r.Peek(n)
		if err != nil {
			if n > 1 && errors.Is(err, io.EOF) {
				return 0, nil // too short for a header: let the reader see the bytes and EOF
			}
			return 0, err
		}
		v2 := bytes.HasPrefix(proxyV2Sig, b)
		v1 := bytes.HasPrefix(proxyV1Sig, b) || bytes.HasPrefix(b, proxyV1Sig)
		switch {
		case !v1 && !v2:
			return 0, nil
		case v1 && n >= len(proxyV1Sig):
			return 1, nil
		case v2 && n == len(proxyV2Sig):
			return 2, nil
		}
	}
	return 0, nil
}

func proxyReadError(err error, doing string) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &ProxyError{ProxyTimeout, fmt.Errorf("%s: %w", doing, err)}
	}
	return &ProxyError{ProxyMalformed, fmt.Errorf("%s: %w", doing, err)}
}

// readProxyV2 parses a binary header; src is invalid for LOCAL and for
// address families without an IP (UNSPEC, UNIX), which keep the peer.
func readProxyV2(r *bufio.Reader) (src, dst netip.AddrPort, err error) {
	var hdr [16]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return src, dst, proxyReadError(err, "reading the v2 header")
	}
	verCmd, fam, size := hdr[12], hdr[13], int(binary.BigEndian.Uint16(hdr[14:]))
	if verCmd>>4 != 2 || verCmd&0xf > 1 {
		return src, dst, &ProxyError{ProxyMalformed, fmt.Errorf("version/command byte %#x", verCmd)}
	}
	if size > maxProxyV2Body {
		return src, dst, &ProxyError{ProxyOversized, fmt.Errorf("%d bytes of addresses and TLVs; at most %d accepted", size, maxProxyV2Body)}
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(r, body); err != nil {
		return src, dst, proxyReadError(err, "reading the v2 addresses")
	}
	if verCmd&0xf == 0 { // LOCAL: the balancer's own connection (a health check)
		return src, dst, nil
	}
	switch fam >> 4 {
	case 1: // AF_INET
		if size < 12 {
			return src, dst, &ProxyError{ProxyMalformed, fmt.Errorf("IPv4 addresses need 12 bytes, got %d", size)}
		}
		src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[0:4])), binary.BigEndian.Uint16(body[8:]))
		dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[4:8])), binary.BigEndian.Uint16(body[10:]))
	case 2: // AF_INET6
		if size < 36 {
			return src, dst, &ProxyError{ProxyMalformed, fmt.Errorf("IPv6 addresses need 36 bytes, got %d", size)}
		}
		src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[0:16])).Unmap(), binary.BigEndian.Uint16(body[32:]))
		dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[16:32])).Unmap(), binary.BigEndian.Uint16(body[34:]))
	case 0, 3: // UNSPEC, UNIX: no IP to use
	default:
		return src, dst, &ProxyError{ProxyMalformed, fmt.Errorf("address family %#x", fam>>4)}
	}
	return src, dst, nil
}

// readProxyV1 parses "PROXY TCP4 src dst sport dport\r\n" (or UNKNOWN).
func readProxyV1(r *bufio.Reader) (src, dst netip.AddrPort, err error) {
	line := make([]byte, 0, maxProxyV1Line)
	for !bytes.HasSuffix(line, []byte("\r\n")) {
		if len(line) == maxProxyV1Line {
			return src, dst, &ProxyError{ProxyOversized, fmt.Errorf("v1 line longer than %d bytes", maxProxyV1Line)}
		}
		b, err := r.ReadByte()
		if err != nil {
			return src, dst, proxyReadError(err, "reading the v1 line")
		}
		line = append(line, b)
	}
	f := strings.Split(strings.TrimSuffix(string(line), "\r\n"), " ")
	if len(f) >= 2 && f[1] == "UNKNOWN" {
		return src, dst, nil
	}
	if len(f) != 6 || (f[1] != "TCP4" && f[1] != "TCP6") {
		return src, dst, &ProxyError{ProxyMalformed, fmt.Errorf("v1 line %q", strings.TrimSpace(string(line)))}
	}
	if src, err = v1AddrPort(f[2], f[4], f[1]); err == nil {
		dst, err = v1AddrPort(f[3], f[5], f[1])
	}
	return src, dst, err
}

func v1AddrPort(ip, port, proto string) (netip.AddrPort, error) {
	a, err := netip.ParseAddr(ip)
	p, perr := strconv.ParseUint(port, 10, 16)
	if err != nil || perr != nil || a.Is4() != (proto == "TCP4") || a.Zone() != "" {
		return netip.AddrPort{}, &ProxyError{ProxyMalformed, fmt.Errorf("v1 address %q port %q for %s", ip, port, proto)}
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(p)), nil
}
