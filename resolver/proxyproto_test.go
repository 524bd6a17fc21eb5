package resolver

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// proxyV2 builds a v2 header: cmd 1 = PROXY, 0 = LOCAL.
func proxyV2(cmd byte, src, dst netip.AddrPort, extra int) []byte {
	var body []byte
	fam := byte(0x11) // INET, STREAM
	if src.Addr().Is6() {
		fam = 0x21
		s, d := src.Addr().As16(), dst.Addr().As16()
		body = append(append(body, s[:]...), d[:]...)
	} else if src.IsValid() {
		s, d := src.Addr().As4(), dst.Addr().As4()
		body = append(append(body, s[:]...), d[:]...)
	} else {
		fam = 0
	}
	if src.IsValid() {
		body = binary.BigEndian.AppendUint16(body, src.Port())
		body = binary.BigEndian.AppendUint16(body, dst.Port())
	}
	body = append(body, make([]byte, extra)...) // TLV bytes
	h := append(append([]byte{}, proxyV2Sig...), 0x20|cmd, fam)
	h = binary.BigEndian.AppendUint16(h, uint16(len(body)))
	return append(h, body...)
}

// proxyServer runs a GuardListener (no TLS) on loopback that echoes, per
// connection, the client address it saw followed by the bytes it read.
type proxyServer struct {
	addr    string
	mu      sync.Mutex
	rejects []string
}

func startProxyServer(t *testing.T, trusted ...string) *proxyServer {
	t.Helper()
	pol, err := NewProxyPolicy(ProxyConfig{Trusted: trusted})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &proxyServer{addr: ln.Addr().String()}
	g := GuardListener(ln, GuardOptions{Proxy: pol, HandshakeTimeout: 500 * time.Millisecond, Transport: "tcp",
		Logger: slog.New(slog.DiscardHandler), OnProxyReject: func(r string) { s.mu.Lock(); s.rejects = append(s.rejects, r); s.mu.Unlock() }})
	t.Cleanup(func() { g.Close() })
	go func() {
		for {
			c, err := g.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(2 * time.Second))
				buf := make([]byte, 5)
				n, _ := io.ReadFull(c, buf)
				io.WriteString(c, c.RemoteAddr().String()+" "+c.LocalAddr().String()+"|"+string(buf[:n]))
			}()
		}
	}()
	return s
}

// send writes data then "hello" and returns what came back ("" when the
// server closed the connection without answering).
func (s *proxyServer) send(t *testing.T, data []byte) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	c.Write(append(append([]byte{}, data...), "hello"...))
	out, _ := io.ReadAll(c)
	return string(out)
}

// rejectNo waits for the server's i-th reject (from 0) and returns its
// reason. The guard closes a refused connection before it counts it, so
// a client can be done before its reject is noted: waiting for the last
// reason to match would pass on the previous case's, when both agree.
func (s *proxyServer) rejectNo(t *testing.T, i int) string {
	t.Helper()
	var reason string
	waitFor(t, 2*time.Second, fmt.Sprintf("reject %d counted", i+1), func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.rejects) <= i {
			return false
		}
		reason = s.rejects[i]
		return true
	})
	return reason
}

func TestProxyProtocolFromTrustedPeer(t *testing.T) {
	s := startProxyServer(t, "127.0.0.0/8")
	v4 := proxyV2(1, netip.MustParseAddrPort("198.51.100.7:40000"), netip.MustParseAddrPort("203.0.113.1:853"), 0)
	if got := s.send(t, v4); got != "198.51.100.7:40000 203.0.113.1:853|hello" {
		t.Errorf("IPv4 header: %q", got)
	}
	v6 := proxyV2(1, netip.MustParseAddrPort("[2001:db8::7]:40000"), netip.MustParseAddrPort("[2001:db8::1]:443"), 24)
	if got := s.send(t, v6); got != "[2001:db8::7]:40000 [2001:db8::1]:443|hello" {
		t.Errorf("IPv6 header with TLVs: %q", got)
	}
	mapped := proxyV2(1, netip.MustParseAddrPort("[::ffff:10.1.2.3]:5"), netip.MustParseAddrPort("[::ffff:10.0.0.1]:53"), 0)
	if got := s.send(t, mapped); !strings.HasPrefix(got, "10.1.2.3:5 ") {
		t.Errorf("4-in-6 header: %q (policy wants the IPv4 address)", got)
	}
	if got := s.send(t, proxyV2(0, netip.AddrPort{}, netip.AddrPort{}, 0)); !strings.HasPrefix(got, "127.0.0.1:") || !strings.HasSuffix(got, "|hello") {
		t.Errorf("LOCAL keeps the peer: %q", got)
	}
	if got := s.send(t, []byte("PROXY TCP4 192.0.2.9 192.0.2.1 1234 53\r\n")); got != "192.0.2.9:1234 192.0.2.1:53|hello" {
		t.Errorf("v1 header: %q", got)
	}
	if got := s.send(t, []byte("PROXY UNKNOWN\r\n")); !strings.HasPrefix(got, "127.0.0.1:") {
		t.Errorf("v1 UNKNOWN: %q", got)
	}
}

func TestProxyProtocolRejects(t *testing.T) {
	trusted := startProxyServer(t, "127.0.0.1/32")
	header := proxyV2(1, netip.MustParseAddrPort("198.51.100.7:40000"), netip.MustParseAddrPort("203.0.113.1:853"), 0)
	for i, tt := range []struct {
		name   string
		data   []byte
		reason string
	}{
		{"missing from trusted", []byte("\x00\x1chello"), ProxyMissing},
		{"truncated", header[:20], ProxyTimeout},
		{"oversized", proxyV2(1, netip.MustParseAddrPort("198.51.100.7:1"), netip.MustParseAddrPort("203.0.113.1:2"), 2000), ProxyOversized},
		{"bad version", append(append([]byte{}, proxyV2Sig...), 0x31, 0x11, 0, 12), ProxyMalformed},
		{"short IPv4 body", append(append([]byte{}, proxyV2Sig...), 0x21, 0x11, 0, 4, 1, 2, 3, 4), ProxyMalformed},
		{"bad v1", []byte("PROXY TCP4 not-an-ip 192.0.2.1 1 2\r\n"), ProxyMalformed},
		{"v1 family mismatch", []byte("PROXY TCP6 192.0.2.9 192.0.2.1 1 2\r\n"), ProxyMalformed},
		{"long v1", []byte("PROXY TCP4 " + strings.Repeat("1", 200) + "\r\n"), ProxyOversized},
	} {
		if got := trusted.send(t, tt.data); got != "" {
			t.Errorf("%s: served (%q); want the connection closed", tt.name, got)
		}
		if got := trusted.rejectNo(t, i); got != tt.reason {
			t.Errorf("%s: rejected as %q, want %q", tt.name, got, tt.reason)
		}
	}

	untrusted := startProxyServer(t, "192.0.2.0/24")
	if got := untrusted.send(t, header); got != "" {
		t.Errorf("header from an untrusted peer served: %q", got)
	}
	if got := untrusted.rejectNo(t, 0); got != ProxyUntrusted {
		t.Errorf("header from an untrusted peer rejected as %q, want %q", got, ProxyUntrusted)
	}
	// Plain DNS over TCP from an untrusted peer proceeds, bytes intact.
	if got := untrusted.send(t, []byte("\x00\x1c")); !strings.HasPrefix(got, "127.0.0.1:") || !strings.HasSuffix(got, "|\x00\x1chel") {
		t.Errorf("plain client: %q", got)
	}
	// A prefix of the signature that then differs is just data.
	if got := untrusted.send(t, []byte("\r\n\r\nX")); !strings.HasSuffix(got, "|\r\n\r\nX") {
		t.Errorf("near-signature data: %q", got)
	}
}

func TestGuardListenerMaxConns(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := GuardListener(ln, GuardOptions{MaxConns: 2, HandshakeTimeout: 300 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	defer g.Close()
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte{0})
		held = append(held, c)
	}
	for range 2 {
		c, err := g.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	extra, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	_ = extra.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := extra.Read(make([]byte, 1)); n != 0 || err == nil || isTimeout(err) {
		t.Errorf("third connection: n=%d err=%v; want it closed at once", n, err)
	}
	if n := g.(*guardListener).OpenConns(); n != 2 {
		t.Errorf("open connections %d, want 2", n)
	}
	for _, c := range held {
		c.Close()
	}
}

// TestGuardListenerDropsSilentClients: a client that connects and sends
// nothing is closed after HandshakeTimeout and frees its slot.
func TestGuardListenerDropsSilentClients(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var failed sync.WaitGroup
	failed.Add(1)
	g := GuardListener(ln, GuardOptions{TLS: testCertStore(t, newTestCA(t)).ServerTLSConfig("dot"), Transport: "tls",
		HandshakeTimeout: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler), OnHandshakeError: func(string) { failed.Done() }})
	defer g.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("silent client: %v; want the connection closed by the server", err)
	}
	failed.Wait()
	waitFor(t, 2*time.Second, "slot released", func() bool { return g.(*guardListener).OpenConns() == 0 })
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
