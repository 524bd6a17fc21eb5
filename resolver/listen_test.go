package resolver

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnstest"
)

// freePort returns a port free for UDP and TCP on every address.
func freePort(t *testing.T) string {
	t.Helper()
	pc, l := dnstest.ListenUDPAndTCP(t)
	_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
	pc.Close()
	l.Close()
	return port
}

// listenOn starts a resolver on exactly these addresses.
func listenOn(t *testing.T, listen []string, upstreams ...string) *Resolver {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = listen
	r, err := New(Options{Config: cfg, Upstream: newTestForwarder(t, upstreams...)})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatalf("listen %v: %v", listen, err)
	}
	t.Cleanup(func() { shutdown(t, r) })
	return r
}

// With the wildcards 0.0.0.0 and [::] on one port — what people write for
// Unbound and BIND — dnsward starts, and a query sent to any local
// address is answered from that address: a client's connected socket
// (dig, every stub) drops a reply from any other.
func TestWildcardListenersReplyFromTheQueriedAddress(t *testing.T) {
	up := startUpstream(t, testZone...)
	port := freePort(t)
	listenOn(t, []string{"0.0.0.0:" + port, "[::]:" + port}, up.addr)
	for _, dst := range []string{"127.0.0.1", "127.0.0.2", "::1"} {
		addr := net.JoinHostPort(dst, port)
		for _, network := range []string{"udp", "tcp"} {
			resp, err := dnstest.Exchange(new(dns.Msg).SetQuestion("a.example.", dns.TypeA), network, "", addr)
			if err != nil {
				t.Fatalf("%s to %s: %v", network, addr, err)
			}
			if len(resp.Answer) != 1 {
				t.Fatalf("%s to %s: %v", network, addr, resp)
			}
		}
		// The reply's source, read on an unconnected socket.
		conn, err := net.ListenUDP("udp", nil)
		if err != nil {
			t.Fatal(err)
		}
		q, _ := new(dns.Msg).SetQuestion("a.example.", dns.TypeA).Pack()
		to, _ := net.ResolveUDPAddr("udp", addr)
		if _, err := conn.WriteTo(q, to); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 1500)
		_, from, err := conn.ReadFromUDPAddrPort(buf)
		conn.Close()
		if err != nil {
			t.Fatalf("no reply to a query sent to %s: %v", addr, err)
		}
		if from.Addr().Unmap().String() != dst {
			t.Errorf("query to %s answered from %s", addr, from)
		}
	}
}

// One [::] listener alone serves IPv4 clients too (dual stack), and the
// IPv4 reply still leaves from the address the query went to.
func TestDualStackWildcardRepliesFromTheQueriedIPv4Address(t *testing.T) {
	up := startUpstream(t, testZone...)
	port := freePort(t)
	listenOn(t, []string{"[::]:" + port}, up.addr)
	resp, err := dnstest.Exchange(new(dns.Msg).SetQuestion("a.example.", dns.TypeA), "udp", "127.0.0.1", "127.0.0.3:"+port)
	if err != nil || len(resp.Answer) != 1 {
		t.Fatalf("query to 127.0.0.3 through [::]: %v %v", resp, err)
	}
}

func TestBusyPortIsExplained(t *testing.T) {
	pc, l := dnstest.ListenUDPAndTCP(t)
	defer pc.Close()
	defer l.Close()
	cfg := DefaultConfig()
	cfg.Listen = []string{pc.LocalAddr().String()}
	r, err := New(Options{Config: cfg, Upstream: newTestForwarder(t, dnstest.Blackhole(t))})
	if err != nil {
		t.Fatal(err)
	}
	err = r.Start()
	if err == nil || !strings.Contains(err.Error(), "another process holds") {
		t.Fatalf("Start on a busy port: %v, want an error that explains it", err)
	}
}
