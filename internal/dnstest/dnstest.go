// Package dnstest holds what dnsward's tests share: real DNS servers and
// sockets on loopback, started inside a test and stopped with it.
package dnstest

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// ListenUDPAndTCP binds UDP and TCP on one free loopback port.
func ListenUDPAndTCP(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 10 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if l, err := net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			return pc, l
		}
		pc.Close() // TCP's side of the port is taken: try another
	}
	t.Fatal("no loopback port free for both UDP and TCP")
	return nil, nil
}

// Serve runs h on UDP and TCP on one free loopback port until the test
// ends; it is answering when Serve returns. It returns "127.0.0.1:port"
// and the TCP listener, which counts the connections it accepts.
func Serve(t testing.TB, h dns.Handler) (string, *CountingListener) {
	t.Helper()
	pc, l := ListenUDPAndTCP(t)
	cl := &CountingListener{Listener: l}
	Start(t, &dns.Server{PacketConn: pc, Handler: h})
	Start(t, &dns.Server{Listener: cl, Handler: h})
	return pc.LocalAddr().String(), cl
}

// Start runs srv until the test ends and returns once it is serving.
func Start(t testing.TB, srv *dns.Server) {
	t.Helper()
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
}

// CountingListener counts the connections it accepts.
type CountingListener struct {
	net.Listener
	Accepted atomic.Int64
}

func (l *CountingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.Accepted.Add(1)
	}
	return c, err
}

// Blackhole is a UDP address that reads queries and never answers.
func Blackhole(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	return pc.LocalAddr().String()
}

// ClosedPort returns a loopback address ("udp" or "tcp") where nothing listens.
func ClosedPort(t testing.TB, network string) string {
	t.Helper()
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().String()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Exchange sends m over network ("udp" or "tcp") to addr from src (""
// for any local address) and returns the reply.
func Exchange(m *dns.Msg, network, src, addr string) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: 3 * time.Second, UDPSize: 65535}
	if src != "" {
		var local net.Addr = &net.UDPAddr{IP: net.ParseIP(src)}
		if network == "tcp" {
			local = &net.TCPAddr{IP: net.ParseIP(src)}
		}
		c.Dialer = &net.Dialer{LocalAddr: local, Timeout: 3 * time.Second}
	}
	resp, _, err := c.Exchange(m, addr)
	return resp, err
}

// RR parses a record in zone-file form, failing the test if it does not.
func RR(t testing.TB, text string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(text)
	if err != nil {
		t.Fatalf("bad test record %q: %v", text, err)
	}
	return rr
}
