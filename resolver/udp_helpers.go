package resolver

import "sync/atomic"

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
	n = max(n, 0)
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
