package resolver

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/sys/unix"
)

// The receive buffer asked for is the one the socket gets (as root,
// through SO_RCVBUFFORCE, past net.core.rmem_max).
func TestUDPReceiveBufferIsGranted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_NET_ADMIN) to pass net.core.rmem_max")
	}
	u, err := listenUDPSocket(netip.MustParseAddrPort("127.0.0.1:0"), false, 8<<20, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer u.release()
	if got := u.receiveBuffer(); got < 8<<20 {
		t.Fatalf("receive buffer %d bytes, asked for %d", got, 8<<20)
	}
}

// With udp.receive_buffer_mb unset, the socket of an address read by two
// loops gets the kernel's default buffer twice over: it queues as many
// queries as two sockets of one loop each did.
func TestUDPDefaultBufferScalesWithReadLoops(t *testing.T) {
	up := startUpstream(t, testZone...)
	rcvbuf := func(u *udpSocket) int {
		v, err := unix.GetsockoptInt(u.fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	one := startResolver(t, Config{}, Options{UDPReaders: 1}, up.addr)
	two := startResolver(t, Config{}, Options{UDPReaders: 2}, up.addr)
	def := rcvbuf(one.listeners.udp[0])
	got := rcvbuf(two.listeners.udp[0])
	if got != 2*def {
		if b, _ := os.ReadFile("/proc/sys/net/core/rmem_max"); os.Geteuid() != 0 {
			t.Skipf("receive buffer %d, default %d: unprivileged, net.core.rmem_max %s caps it", got, def, b)
		}
		t.Fatalf("receive buffer %d bytes with two read loops, want twice the default %d", got, def)
	}
	ask(t, "udp", two.addr, "a.example.", dns.TypeA, false)
}

// Datagrams that find the receive buffer full are counted, exactly: sent
// minus read. After release the last count stays, and no descriptor is read.
func TestUDPReceiveDropsAreCounted(t *testing.T) {
	u, err := listenUDPSocket(netip.MustParseAddrPort("127.0.0.1:0"), false, 4096, 1) // the kernel's least
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(u.local))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const sent = 200
	pkt := make([]byte, 512)
	for range sent {
		if _, err := c.Write(pkt); err != nil {
			t.Fatal(err)
		}
	}
	b, read := newUDPBatch(), 0
	for {
		n, err := u.readBatch(b, false)
		if err != nil {
			break // EAGAIN: the queue is empty
		}
		read += n
	}
	if read == 0 || read == sent {
		t.Fatalf("read %d of %d packets: the buffer should have held some and dropped the rest", read, sent)
	}
	if got := u.drops(); got != sent-uint64(read) {
		t.Fatalf("drops %d, want %d (sent %d, read %d)", got, sent-read, sent, read)
	}
	u.release()
	if got := u.drops(); got != sent-uint64(read) {
		t.Fatalf("after release: drops %d, want the last count %d", got, sent-read)
	}
}

// A resolver exports its sockets' drops, and says at start-up when the
// kernel gave a smaller buffer than udp.receive_buffer_mb asks for.
func TestUDPReceiveBufferInMetricsAndLog(t *testing.T) {
	up := startUpstream(t, testZone...)
	rec, reg := newRecorder(t)
	// Two listen addresses, a socket each.
	cfg := Config{Listen: []string{"127.0.0.1:0", "127.0.0.2:0"}, UDP: UDPConfig{ReceiveBufferMB: 1}}
	srv := startResolver(t, cfg, Options{Metrics: rec, UDPReaders: 2}, up.addr)
	ask(t, "udp", srv.addr, "a.example.", dns.TypeA, false)
	if got := testutil.ToFloat64(counter(t, reg, "dnsward_udp_receive_drops_total")); got != 0 {
		t.Fatalf("dnsward_udp_receive_drops_total %v on an idle resolver", got)
	}
	// Each socket's count adds up: stand in counts the kernel would keep.
	for i, u := range srv.listeners.udp {
		u.stats.mu.Lock()
		u.stats.released, u.stats.drops = true, uint64(3+i)
		u.stats.mu.Unlock()
	}
	got := testutil.ToFloat64(counter(t, reg, "dnsward_udp_receive_drops_total"))
	for _, u := range srv.listeners.udp {
		u.stats.mu.Lock()
		u.stats.released = false // Shutdown still closes it
		u.stats.mu.Unlock()
	}
	if got != 3+4 {
		t.Fatalf("dnsward_udp_receive_drops_total %v, want the sockets' 3+4", got)
	}

	var logs bytes.Buffer
	r := &Resolver{cfg: Config{UDP: UDPConfig{ReceiveBufferMB: 64}}, log: slog.New(slog.NewTextHandler(&logs, nil))}
	u, err := listenUDPSocket(netip.MustParseAddrPort("127.0.0.1:0"), false, 0, 1) // the kernel's default
	if err != nil {
		t.Fatal(err)
	}
	defer u.release()
	r.checkReceiveBuffer("127.0.0.1:0", u)
	if !strings.Contains(logs.String(), "udp.receive_buffer_mb") || !strings.Contains(logs.String(), "net.core.rmem_max") {
		t.Fatalf("no warning for a buffer smaller than asked: %q", logs.String())
	}
}
