package resolver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// Packets queued on a socket come back from one read, at most a batch at
// a time, each with its own sender; replies queued for them leave in one
// flush, each to its sender and, on a wildcard socket, from the address
// its query was sent to.
func TestUDPBatchReadsQueuedPacketsAndRepliesToEach(t *testing.T) {
	for _, bind := range []string{"127.0.0.1:0", "0.0.0.0:0"} {
		t.Run(bind, func(t *testing.T) {
			u, err := listenUDPSocket(netip.MustParseAddrPort(bind), false, 0, 1)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(u.release)
			const clients = udpBatchSize + 3 // more than one read takes
			conns, dsts := make([]*net.UDPConn, clients), make([]string, clients)
			for i := range conns {
				dsts[i] = "127.0.0.1"
				if bind == "0.0.0.0:0" && i%2 == 1 {
					dsts[i] = "127.0.0.2"
				}
				to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(dsts[i]), u.local.Port()))
				if conns[i], err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
					t.Fatal(err)
				}
				defer conns[i].Close()
				if _, err := conns[i].WriteTo(fmt.Appendf(nil, "query %d", i), to); err != nil {
					t.Fatal(err)
				}
			}
			b := newUDPBatch()
			seen := 0
			for read := 0; seen < clients; read++ {
				n, err := u.readBatch(b, read == 0) // the first waits; loopback has queued the rest
				if err != nil {
					t.Fatalf("read %d after %d packets: %v", read, seen, err)
				}
				if n > udpBatchSize {
					t.Fatalf("one read returned %d packets, more than the batch's %d", n, udpBatchSize)
				}
				for i := range n {
					io, size := b.slot(i)
					want := fmt.Sprintf("query %d", seen)
					if got := string(io.buf[:size]); got != want {
						t.Fatalf("packet %d: %q, want %q", seen, got, want)
					}
					if io.from != conns[seen].LocalAddr().(*net.UDPAddr).AddrPort() {
						t.Fatalf("packet %d from %v, sent from %v", seen, io.from, conns[seen].LocalAddr())
					}
					b.queue(u, fmt.Appendf(nil, "reply %d", seen), io)
					seen++
				}
				u.flush(b)
			}
			if _, err := u.readBatch(b, false); !errors.Is(err, unix.EAGAIN) {
				t.Fatalf("a read of an empty socket: %v, want EAGAIN", err)
			}
			for i, c := range conns {
				c.SetReadDeadline(time.Now().Add(3 * time.Second))
				buf := make([]byte, 64)
				n, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatalf("client %d: no reply: %v", i, err)
				}
				if got, want := string(buf[:n]), fmt.Sprintf("reply %d", i); got != want {
					t.Errorf("client %d got %q, want %q", i, got, want)
				}
				if from.Addr().String() != dsts[i] {
					t.Errorf("client %d asked %s, answered from %s", i, dsts[i], from.Addr())
				}
			}
		})
	}
}

// A burst from several clients, more than a batch at a time, gets every
// query answered once, to the socket that asked, with its own ID; the
// responses mixed into it get nothing back, not even an empty datagram.
func TestUDPBurstIsAnsweredQueryByQuery(t *testing.T) {
	up := startUpstream(t, testZone...)
	srv := startResolver(t, Config{}, Options{UDPReaders: 1}, up.addr)
	ask(t, "udp", srv.addr, "a.example.", dns.TypeA, false) // cached from now on
	to, _ := net.ResolveUDPAddr("udp", srv.addr)
	const clients, perClient = 4, 32
	conns := make([]*net.UDPConn, clients)
	for c := range conns {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conns[c] = conn
	}
	for i := range perClient {
		for c, conn := range conns {
			m := new(dns.Msg).SetQuestion("a.example.", dns.TypeA)
			m.Id = uint16(c<<8 | i)
			pkt, _ := m.Pack()
			m.Response = true
			resp, _ := m.Pack()
			for _, p := range [][]byte{pkt, resp} {
				if _, err := conn.WriteTo(p, to); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for c, conn := range conns {
		got := map[uint16]bool{}
		buf := make([]byte, 1500)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		for len(got) < perClient {
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("client %d: %d of %d answers, then %v", c, len(got), perClient, err)
			}
			var resp dns.Msg
			if err := resp.Unpack(buf[:n]); err != nil || len(resp.Answer) != 1 {
				t.Fatalf("client %d: bad answer %v %v", c, &resp, err)
			}
			if int(resp.Id>>8) != c || got[resp.Id] {
				t.Fatalf("client %d: answer with ID %#x (not its own, or twice)", c, resp.Id)
			}
			got[resp.Id] = true
		}
		conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, err := conn.Read(buf); err == nil {
			t.Fatalf("client %d: a datagram of %d bytes beyond its answers", c, n)
		}
	}
}

// Answers to a batch of queued cached and blocked queries, read with one
// recvmmsg and sent with one sendmmsg, cost no allocation either.
func TestBatchedAnswersDoNotAllocate(t *testing.T) {
	up := startUpstream(t, testZone...)
	pol := &suffixPolicy{block: map[string]string{"tiktok.com": "tiktok"}}
	srv := startResolver(t, Config{Cache: CacheConfig{MaxEntries: 100}}, Options{Policy: pol}, up.addr)
	ask(t, "udp", srv.addr, "a.example.", dns.TypeA, false) // cached from now on
	u, err := listenUDPSocket(netip.MustParseAddrPort("127.0.0.1:0"), false, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer u.release()
	l := srv.newLoop(u)
	defer l.close()
	var conns []*net.UDPConn
	var pkts [][]byte
	for _, name := range []string{"a.example.", "www.tiktok.com.", "a.example."} {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(u.local))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		pkt, _ := new(dns.Msg).SetQuestion(name, dns.TypeA).Pack()
		conns, pkts = append(conns, c), append(pkts, pkt)
	}
	send := func() {
		for i, c := range conns {
			if _, err := c.Write(pkts[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	buf := make([]byte, 1500)
	round := func() {
		for seen := 0; seen < len(conns); {
			n, err := u.readBatch(l.batch, true)
			if err != nil {
				t.Fatal(err)
			}
			srv.serveBatch(u, l, n)
			seen += n
		}
		for i, c := range conns {
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			if _, err := c.Read(buf); err != nil {
				t.Fatalf("client %d: %v", i, err)
			}
		}
	}
	send()
	round() // the first round grows the batch's reply buffers
	allocs := testing.AllocsPerRun(100, func() { send(); round() })
	if allocs != 0 {
		t.Errorf("%.1f allocations per batch of %d answers", allocs, len(conns))
	}
}

// A helper loop woken by a backlog answers all of it; the leader wakes
// one when its read comes back full; once the socket closes, both end.
func TestUDPHelpersDrainABacklog(t *testing.T) {
	up := startUpstream(t, testZone...)
	r := newTestResolver(t, Config{}, Options{}, up.addr)
	u, err := listenUDPSocket(netip.MustParseAddrPort("127.0.0.1:0"), false, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer u.release()
	client, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	// The helper alone, woken as the leader would wake it.
	h := newUDPHelpers(1)
	r.listeners.readers.Add(1)
	go r.helpUDP(u, h)
	const backlog = 200 // below the 256 a default buffer holds
	queueANY(t, client, u.local, backlog)
	waitParked(t, h)
	h.backlog()
	readAnswers(t, client, backlog)
	if got := h.read.Load(); got != backlog {
		t.Fatalf("the helper read %d of a %d-query backlog", got, backlog)
	}
	waitParked(t, h)
	close(h.stop)

	// The leader, with a (pretend) parked helper: a full read wakes it.
	lead := newUDPHelpers(1)
	lead.parked.Store(1)
	queueANY(t, client, u.local, 2*udpBatchSize)
	r.listeners.readers.Add(1)
	go r.serveUDP(u, lead)
	readAnswers(t, client, 2*udpBatchSize)
	if len(lead.wake) == 0 {
		t.Fatal("a full read did not wake the parked helper")
	}

	u.Close()
	done := make(chan struct{})
	go func() { r.listeners.readers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the loops did not end after the socket closed")
	}
}

// queueANY sends n ANY queries (answered without the upstream) to to.
func queueANY(t *testing.T, c *net.UDPConn, to netip.AddrPort, n int) {
	t.Helper()
	for i := range n {
		m := new(dns.Msg).SetQuestion("a.example.", dns.TypeANY)
		m.Id = uint16(i)
		pkt, _ := m.Pack()
		if _, err := c.WriteToUDPAddrPort(pkt, to); err != nil {
			t.Fatal(err)
		}
	}
}

// readAnswers reads n answers, each to a different query.
func readAnswers(t *testing.T, c *net.UDPConn, n int) {
	t.Helper()
	seen := make(map[uint16]bool)
	buf := make([]byte, 1500)
	for len(seen) < n {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, err := c.Read(buf)
		if err != nil {
			t.Fatalf("%d of %d answered: %v", len(seen), n, err)
		}
		var m dns.Msg
		if err := m.Unpack(buf[:k]); err != nil || seen[m.Id] {
			t.Fatalf("answer %d: %v (a second answer: %v)", m.Id, err, seen[m.Id])
		}
		seen[m.Id] = true
	}
}

func waitParked(t *testing.T, h *udpHelpers) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); h.parked.Load() == 0; runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatal("the helper did not park")
		}
	}
}
