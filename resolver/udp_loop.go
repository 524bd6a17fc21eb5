package resolver

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"time"

	"github.com/dnsward/dnsward/internal/dnswire"
)

// serveUDP is one read loop: it reads packets until the socket is
// closed, blocking its thread in the kernel, and hands each to the
// pipeline. Answers known at once are written from here; cache misses
// are answered later by the upstream's goroutine (udpOrigin).
func (r *Resolver) serveUDP(u *udpSocket) {
	defer r.listeners.readers.Done()
	s := newScratch()
	io := newUDPIO(dnswire.MaxMessageSize)
	var y yielder
	for {
		y.maybe()
		n, err := u.read(io)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ICMP-induced errors: the socket is still good
		}
		r.serveDatagram(u, io, n, s)
	}
}

// serveDatagram runs one packet through the pipeline and writes what it
// answers at once. A panic is logged and costs only this packet.
func (r *Resolver) serveDatagram(u *udpSocket, io *udpIO, n int, s *scratch) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("query handler panicked", "panic", p, "client", io.from)
		}
	}()
	req := request{pkt: io.buf[:n], client: io.from.Addr().Unmap(), transport: TransportUDP,
		udp: u, peer: io.from, dst: io.dst, ifindex: io.ifindex, local: u.local}
	if out, pending := r.serve(&req, s); !pending && out != nil {
		_ = u.write(out, io.from, io.dst, io.ifindex, io)
	}
}

// udpOrigin is where a UDP cache miss's answer goes.
type udpOrigin struct {
	sock    *udpSocket
	to      netip.AddrPort
	dst     netip.Addr
	ifindex int32
}

func (o *udpOrigin) reply(out []byte) {
	if out != nil {
		var io udpIO
		_ = o.sock.write(out, o.to, o.dst, o.ifindex, &io)
	}
}

// yielder lets a read loop pass through the scheduler every few
// milliseconds. A goroutine that never does is seen by the runtime's
// sysmon as running too long: every 10 ms it takes the loop's P away,
// and after each such take it polls every 20 µs again, about 4,000 wake-ups
// a second at 20k QPS. The loop is not locked to its thread, so a yield is
// a cheap requeue rather than a thread hand-off.
type yielder struct {
	n    uint
	last int64 // nanotime of the last yield
}

const yieldEvery = 4 * time.Millisecond

func (y *yielder) maybe() {
	y.n++
	if y.n%8 != 0 { // reading the clock costs about as much as a packet of bookkeeping
		return
	}
	if now := time.Now().UnixNano(); now-y.last >= int64(yieldEvery) {
		y.last = now
		runtime.Gosched()
	}
}
