package resolver

import (
	"net/netip"
	"sync"
	"sync/atomic"
)

// Packets that miss the fast path are run by worker goroutines that stay
// for the next packet. A new goroutine per packet starts with a small stack
// and grows it through the whole pipeline every time, which cost about a
// tenth of a cache miss's CPU. Workers are created on demand (bounded by
// slowSlots); up to maxIdleWorkers of them wait for more work, the rest
// exit when their packet is done.

const maxIdleWorkers = 256

// slowPacket is one packet for the full pipeline.
type slowPacket struct {
	conn udpSocket
	pkt  []byte
	from netip.AddrPort
}

// workerPool hands packets to idle workers. Packets are sent only by the UDP
// read loops; stop is called once they have all returned.
type workerPool struct {
	idle  chan slowPacket // unbuffered: a send succeeds only if a worker waits
	nIdle atomic.Int32
	run   func(slowPacket)
	once  sync.Once
}

func newWorkerPool(run func(slowPacket)) *workerPool {
	return &workerPool{idle: make(chan slowPacket), run: run}
}

// dispatch gives p to an idle worker, or starts one.
func (w *workerPool) dispatch(p slowPacket) {
	select {
	case w.idle <- p:
	default:
		go w.work(p)
	}
}

func (w *workerPool) work(p slowPacket) {
	for {
		w.run(p)
		if w.nIdle.Add(1) > maxIdleWorkers {
			w.nIdle.Add(-1)
			return
		}
		var ok bool
		p, ok = <-w.idle
		w.nIdle.Add(-1)
		if !ok {
			return
		}
	}
}

// stop ends the idle workers; busy ones end after their packet. Shutdown
// may call it more than once.
func (w *workerPool) stop() { w.once.Do(func() { close(w.idle) }) }
