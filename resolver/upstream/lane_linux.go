package upstream

import (
	"time"

	"github.com/miekg/dns"
)

// Lane is a set of UDP attempts that one of the caller's own loops waits
// on, instead of the forwarder's poller goroutine: a UDP read loop that
// sends its cache misses upstream handles their replies itself, on its
// own thread, and answers its clients from there — no hand-off to another
// goroutine per query, which at high miss rates cost more than the rest
// of the miss. A Lane is not safe for use by several loops at once;
// attempts an exchange moves to another transport (a TCP retry) leave it.
type Lane struct{ p *udpPoller }

// NewLane makes a Lane for one loop.
func (f *Forwarder) NewLane() (*Lane, error) {
	p, err := newDrivenPoller()
	if err != nil {
		return nil, err
	}
	return &Lane{p: p}, nil
}

// Fd is the epoll descriptor to wait on (readable: Process has work).
func (l *Lane) Fd() int { return l.p.epfd }

// Busy reports whether attempts wait on the lane.
func (l *Lane) Busy() bool { return l.p.active.Load() > 0 }

// Wait is how many milliseconds the owner may sleep before Process is
// due for a deadline (-1: none).
func (l *Lane) Wait() int { return l.p.sleepTime() }

// Process handles the replies that arrived and the deadlines that passed;
// it never blocks. done callbacks run from it.
func (l *Lane) Process() { l.p.poll(0) }

// Close ends the lane; attempts still waiting end with ErrClosed.
func (l *Lane) Close() error { return l.p.close() }

// StartOn is Start with the exchange's UDP attempts on lane (nil: the
// forwarder's own poller).
func (f *Forwarder) StartOn(lane *Lane, q Query, deadline time.Time, done func(*dns.Msg, error)) {
	order, healthy := f.order()
	var p *udpPoller
	if lane != nil {
		p = lane.p
	}
	f.start(order, healthy, q, deadline, p, done)
}
