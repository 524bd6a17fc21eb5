package resolver

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/dnsward/dnsward/resolver/upstream"
)

// serveUDP is a socket's leader loop: it reads packets until the socket
// is closed, blocking its thread in the kernel, and hands each to the
// pipeline; a full read wakes one of h's parked helpers. Answers known at
// once are written from here. Cache misses go upstream on the loop's
// lane, whose replies this loop waits for too, so their answers are
// written from here as well (udpOrigin); without a lane, by the
// forwarder's poller.
func (r *Resolver) serveUDP(u *udpSocket, h *udpHelpers) {
	defer r.listeners.readers.Done()
	defer close(h.stop)
	l := r.newLoop(u)
	defer l.close()
	var y yielder
	for {
		y.maybe()
		if _, err := l.serveOnce(r, u, h, true); errors.Is(err, net.ErrClosed) {
			return
		} // other errors (e.g. ICMP-induced ones) leave the socket good
	}
}

// udpHelpers are the extra read loops of one UDP socket. The socket's
// leader loop waits on it in the kernel and, at a low rate, answers
// everything alone: one thread woken per packet or per batch, however many
// cores there are. When a read of the leader's comes back full — a
// backlog — it wakes a parked helper, which reads without waiting until the
// socket is drained and then parks again, so under load every core reads
// (a helper's own full reads wake the next one).
// One loop per SO_REUSEPORT socket instead woke every loop for its share
// of a light load, about a fifth more CPU per query at 20k QPS on two
// cores (docs/benchmarks.md).
type udpHelpers struct {
	n      int
	parked atomic.Int32
	wake   chan struct{}
	stop   chan struct{} // closed when the leader ends
	read   atomic.Uint64 // packets the helpers read (for tests)
}

// udpLoops is how many loops read each UDP socket, given readers wanted:
// a leader, and a helper per further reader where a socket can be read
// without waiting.
func udpLoops(readers int) int {
	if !udpCanDrain {
		return 1
	}
	return max(readers, 1)
}

func newUDPHelpers(n int) *udpHelpers {
	return &udpHelpers{n: n, wake: make(chan struct{}, max(n, 1)), stop: make(chan struct{})}
}

// backlog is the leader's note that a read filled its batch.
func (h *udpHelpers) backlog() {
	if h.parked.Load() > 0 {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
}

// helpUDP is a helper loop: parked until the leader sees a backlog, then
// reading until the socket is empty. While its own cache misses wait on
// its lane it does not park: like the leader, it waits for their replies
// and client packets at once (serveBusy).
func (r *Resolver) helpUDP(u *udpSocket, h *udpHelpers) {
	defer r.listeners.readers.Done()
	l := r.newLoop(u)
	defer l.close()
	var y yielder
	for {
		h.parked.Add(1)
		select {
		case <-h.wake:
		case <-h.stop:
			return
		}
		h.parked.Add(-1)
		for {
			y.maybe()
			n, err := l.serveOnce(r, u, h, false)
			if err != nil {
				break // drained, or closed
			}
			h.read.Add(uint64(n))
		}
	}
}

// serveOnce is one turn of a read loop: with misses in flight on its lane
// it waits for their replies and client packets at once (serveBusy);
// otherwise it reads the socket, waiting in the kernel if wait is set. It
// returns how many packets a read served and the read's error.
func (l *udpLoop) serveOnce(r *Resolver, u *udpSocket, h *udpHelpers, wait bool) (int, error) {
	if l.lane != nil && l.lane.Busy() {
		l.serveBusy(r, u, h)
		return 0, nil
	}
	return l.readAndServe(r, u, h, wait)
}

// readAndServe reads one batch and serves it; a full batch is a backlog,
// which wakes one of h's parked helpers.
func (l *udpLoop) readAndServe(r *Resolver, u *udpSocket, h *udpHelpers, wait bool) (int, error) {
	n, err := u.readBatch(l.batch, wait)
	if err != nil {
		return 0, err
	}
	if n == udpBatchSize {
		h.backlog()
	}
	r.serveBatch(u, l, n)
	return n, nil
}

// udpLoop is one read loop's state, used only by its goroutine.
type udpLoop struct {
	s     *scratch
	batch *udpBatch
	lane  *upstream.Lane // nil: misses use the forwarder's poller
	poll  *loopPoll
}

// busyReads is how many reads of client packets a busy loop makes
// before it looks at upstream replies again.
const busyReads = 64 / udpBatchSize

func (r *Resolver) newLoop(u *udpSocket) *udpLoop {
	l := &udpLoop{s: newScratch(), batch: newUDPBatch()}
	lane, err := r.upstream.NewLane()
	if err != nil {
		return l
	}
	if l.poll, err = newLoopPoll(u, lane); err != nil {
		r.log.Warn("cache misses take the forwarder's poller: no epoll for the read loop", "err", err)
		lane.Close()
		return l
	}
	l.lane = lane
	return l
}

// serveBusy waits for client packets and upstream replies alike, and
// handles both. Once the socket is closed it only finishes the lane's
// queries (shutdown answers what is in flight).
func (l *udpLoop) serveBusy(r *Resolver, u *udpSocket, h *udpHelpers) {
	if u.closed.Load() {
		l.poll.stopClients()
	}
	clients := l.poll.wait(l.lane.Wait())
	l.lane.Process()
	for i := 0; clients && i < busyReads && !u.closed.Load(); i++ {
		if _, err := l.readAndServe(r, u, h, false); err != nil {
			return // nothing more queued
		}
	}
}

func (l *udpLoop) close() {
	if l.lane != nil {
		l.poll.close()
		l.lane.Close()
	}
}

// serveBatch runs the n packets of one read through the pipeline and
// sends the answers known at once: a lone one at once, several together.
func (r *Resolver) serveBatch(u *udpSocket, l *udpLoop, n int) {
	for i := range n {
		io, size := l.batch.slot(i)
		if size == 0 {
			continue // an empty datagram, or shutdown's wake-up
		}
		out := r.serveDatagram(u, l, io, size)
		switch {
		case len(out) == 0: // a miss answered later, or nothing to send
		case n == 1:
			_ = u.write(out, io.from, io.dst, io.ifindex, io)
		default:
			l.batch.queue(u, out, io)
		}
	}
	u.flush(l.batch)
}

// serveDatagram runs one packet through the pipeline and returns the
// answer known at once, if any. A panic is logged and costs only this
// packet.
func (r *Resolver) serveDatagram(u *udpSocket, l *udpLoop, io *udpIO, n int) (out []byte) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("query handler panicked", "panic", p, "client", io.from)
			out = nil
		}
	}()
	req := request{pkt: io.buf[:n], client: io.from.Addr().Unmap(), transport: TransportUDP,
		udp: u, peer: io.from, dst: io.dst, ifindex: io.ifindex, local: u.local, lane: l.lane}
	if out, pending := r.serve(&req, l.s); !pending {
		return out
	}
	return nil
}

// udpOrigin is where a UDP cache miss's answer goes.
type udpOrigin struct {
	sock    *udpSocket
	to      netip.AddrPort
	dst     netip.Addr
	ifindex int32
}

func (o *udpOrigin) reply(out []byte, s *scratch) {
	if out != nil {
		_ = o.sock.write(out, o.to, o.dst, o.ifindex, &s.io)
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
