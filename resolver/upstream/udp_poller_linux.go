package upstream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// udpPoller waits for the replies of every UDP attempt in one epoll set,
// read by one goroutine: a query costs a socket and a few system calls,
// not a goroutine, a timer and a poller registration, which were most of
// a cache miss's CPU. Deadlines sit in a heap; the poller sleeps until
// the earliest, and an eventfd wakes it when an earlier one arrives or
// the forwarder closes.
type udpPoller struct {
	epfd, wakefd int
	done         chan struct{}

	mu      sync.Mutex
	slots   []udpSlot
	free    []int32
	timers  deadlines
	sleepTo time.Time // when the poller wakes by itself
	closed  bool
	active  atomic.Int32 // slots in use: attempts waiting
	driven  bool         // a Lane: polled by its owner's loop, no goroutine of its own

	events [64]unix.EpollEvent // poller goroutine only
	buf    [udpReadSize]byte
}

// udpSlot is one attempt's socket.
type udpSlot struct {
	gen      uint32 // counts reuses, so a stale event or timer cannot match
	fd       int    // -1 when free
	id       uint16
	a        *attempt
	t        *udpTransport
	rejected error         // the last datagram that was not the reply
	every    time.Duration // the wait before the next resend
}

const wakeToken = -1 // epoll data of the eventfd

// Lane is a set of UDP attempts that one of the caller's own loops waits
// on, instead of the forwarder's poller goroutine: a UDP read loop that
// sends its cache misses upstream handles their replies itself, on its
// own thread, and answers its clients from there — no hand-off to another
// goroutine per query, which at high miss rates cost more than the rest
// of the miss. A Lane is not safe for use by several loops at once;
// attempts an exchange moves to another transport (a TCP retry) leave it.
type Lane struct{ p *udpPoller }

// Busy reports whether attempts wait on the lane.
func (l *Lane) Busy() bool { return l.p.active.Load() > 0 }

// Wait is how many milliseconds the owner may sleep before Process is
// due for a deadline (-1: none).
func (l *Lane) Wait() int { return l.p.sleepTime() }

// Process handles the replies that arrived and the deadlines that passed;
// it never blocks. done callbacks run from it.
func (l *Lane) Process() { l.p.poll(0) }

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

// send opens a socket for the attempt, sends its query and waits for the
// reply in the poller. Failures are reported at once.
func (p *udpPoller) send(a *attempt, t *udpTransport) {
	var buf [512]byte // the query goes out at once: no copy kept
	wire := append(buf[:0], a.ex.wire...)
	id := randomID()
	binary.BigEndian.PutUint16(wire, id)
	fd, err := dialAndSend(t.addr, wire)
	if err != nil {
		a.finish(nil, err, false)
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		unix.Close(fd)
		a.finish(nil, ErrClosed, false)
		return
	}
	idx := p.slotLocked()
	sl := &p.slots[idx]
	sl.fd, sl.id, sl.a, sl.t, sl.rejected = fd, id, a, t, nil
	sl.every = a.up.resendAfter(a.ex.f.timeout)
	a.poller = p // follow-up attempts of the exchange go where this one went
	p.active.Add(1)
	gen := sl.gen
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: idx, Pad: int32(gen)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.releaseLocked(idx)
		p.mu.Unlock()
		a.finish(nil, os.NewSyscallError("epoll_ctl", err), false)
		return
	}
	first := minTime(a.started.Add(sl.every), a.deadline) // a slot has one timer: resend or deadline
	p.timers.push(timer{at: first, idx: idx, gen: gen})
	wake := !p.driven && first.Before(p.sleepTo)
	p.mu.Unlock()
	if wake {
		p.wake()
	}
	a.onCancel(func() { p.cancel(idx, gen) })
}

// dialAndSend opens a UDP socket connected to addr (the kernel picks a
// random source port and drops datagrams from anyone else) and sends wire.
func dialAndSend(addr netip.AddrPort, wire []byte) (int, error) {
	if addr.Addr().Zone() != "" {
		return -1, fmt.Errorf("scoped IPv6 upstream %s is not supported", addr)
	}
	family, sa := unix.AF_INET, unix.Sockaddr(nil)
	if ip := addr.Addr().Unmap(); ip.Is4() {
		sa = &unix.SockaddrInet4{Port: int(addr.Port()), Addr: ip.As4()}
	} else {
		family, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: int(addr.Port()), Addr: ip.As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if err := unix.Connect(fd, sa); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("connect", err)
	}
	if _, err := unix.Write(fd, wire); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("write", err)
	}
	return fd, nil
}

func (p *udpPoller) slotLocked() int32 {
	if n := len(p.free); n > 0 {
		idx := p.free[n-1]
		p.free = p.free[:n-1]
		return idx
	}
	p.slots = append(p.slots, udpSlot{fd: -1})
	return int32(len(p.slots) - 1)
}

// releaseLocked closes a slot's socket (which also leaves the epoll set)
// and frees the slot.
func (p *udpPoller) releaseLocked(idx int32) {
	sl := &p.slots[idx]
	unix.Close(sl.fd)
	*sl = udpSlot{gen: sl.gen + 1, fd: -1}
	p.free = append(p.free, idx)
	p.active.Add(-1)
}

// cancel drops an attempt the exchange no longer needs.
func (p *udpPoller) cancel(idx int32, gen uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed && p.slots[idx].gen == gen && p.slots[idx].fd >= 0 {
		p.releaseLocked(idx)
	}
}

func (p *udpPoller) wake() {
	if p.driven {
		return // its owner's loop polls it
	}
	var one = [8]byte{7: 1}
	_, _ = unix.Write(p.wakefd, one[:])
}

// poll waits up to msec (-1: until an event) for replies, handles them
// and expires deadlines; it reports true once the poller is closed.
func (p *udpPoller) poll(msec int) bool {
	n, err := unix.EpollWait(p.epfd, p.events[:], msec)
	if err != nil && !errors.Is(err, unix.EINTR) {
		n = 0
	}
	for _, ev := range p.events[:max(n, 0)] {
		if ev.Fd == wakeToken {
			var b [8]byte
			_, _ = unix.Read(p.wakefd, b[:])
			continue
		}
		p.readable(ev.Fd, uint32(ev.Pad))
	}
	return p.expire(time.Now())
}

// sleepTime is how long to wait for events: until the earliest deadline.
func (p *udpPoller) sleepTime() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, ok := p.earliestLocked()
	if !ok {
		p.sleepTo = time.Unix(1<<62, 0)
		return -1
	}
	p.sleepTo = at
	wait := max(time.Until(at), 0)
	return int((wait + time.Millisecond - 1) / time.Millisecond)
}

func (p *udpPoller) earliestLocked() (time.Time, bool) {
	for p.timers.Len() > 0 {
		head := p.timers[0]
		if sl := &p.slots[head.idx]; sl.gen == head.gen && sl.fd >= 0 {
			return head.at, true
		}
		p.timers.pop() // answered or cancelled already
	}
	return time.Time{}, false
}

// readable reads what arrived on slot idx's socket.
func (p *udpPoller) readable(idx int32, gen uint32) {
	p.mu.Lock()
	if idx < 0 || int(idx) >= len(p.slots) || p.slots[idx].gen != gen || p.slots[idx].fd < 0 {
		p.mu.Unlock()
		return // a late event for a socket already closed
	}
	if !p.readLocked(idx) {
		p.mu.Unlock()
	}
}

// readLocked reads slot idx's socket until it is empty or the reply has
// come. Datagrams that are not the reply (wrong ID or question: possibly
// spoofed) are noted and the wait goes on; the reply ends the slot and goes
// to its transport. It reports whether the slot ended (the reply, or a
// socket error): then it has unlocked p.mu; otherwise p.mu is still held.
func (p *udpPoller) readLocked(idx int32) bool {
	sl := &p.slots[idx]
	for {
		n, err := unix.Read(sl.fd, p.buf[:])
		switch {
		case err == unix.EAGAIN:
			return false
		case err == unix.EINTR:
			continue
		case err != nil: // e.g. ICMP port unreachable
			a := sl.a
			p.releaseLocked(idx)
			p.mu.Unlock()
			a.finish(nil, os.NewSyscallError("read", err), false)
			return true
		}
		if !matchesQuery(p.buf[:n], sl.a.ex.wire, sl.id, sl.a.ex.qlen) {
			sl.rejected = fmt.Errorf("%w: only replies to other queries arrived (wrong ID or question)", errBadResponse)
			continue
		}
		a, t, id := sl.a, sl.t, sl.id
		p.releaseLocked(idx)
		p.mu.Unlock()
		t.replied(a, p.buf[:n], id) // p.buf is the poller goroutine's own
		return true
	}
}

// expire handles the timers that are due: an attempt past its deadline
// ends, one before it sends its query again. It reports true once the
// poller is closed. A reply already queued on an attempt's socket is taken
// first: a busy loop reads replies late (one epoll wait hands over 64
// sockets), and a reply that came while the loop was busy must neither
// fail the attempt and count its upstream as down nor be asked again.
func (p *udpPoller) expire(now time.Time) bool {
	for {
		p.mu.Lock()
		closed := p.closed
		at, ok := p.earliestLocked()
		if !ok || (!closed && now.Before(at)) {
			p.mu.Unlock()
			return closed
		}
		head := p.timers.pop()
		if !closed && p.readLocked(head.idx) {
			continue // the reply was waiting
		}
		sl := &p.slots[head.idx]
		a := sl.a
		if !closed && now.Before(a.deadline) {
			if !p.resendLocked(head.idx, now) {
				p.mu.Unlock()
				a.ex.f.obs.UpstreamResend(a.up.name)
			}
			continue
		}
		err := sl.rejected
		if err == nil {
			err = fmt.Errorf("no reply: %w", os.ErrDeadlineExceeded)
		}
		if closed {
			err = ErrClosed
		}
		p.releaseLocked(head.idx)
		p.mu.Unlock()
		a.finish(nil, err, false)
	}
}

// resendLocked sends slot idx's query again from the same socket with the
// same ID, so a reply to either copy is the reply, and sets the slot's
// next timer twice as far on, or at the deadline. It reports whether the
// slot ended (a send error): then it has unlocked p.mu.
func (p *udpPoller) resendLocked(idx int32, now time.Time) bool {
	sl := &p.slots[idx]
	var buf [512]byte
	wire := append(buf[:0], sl.a.ex.wire...)
	binary.BigEndian.PutUint16(wire, sl.id)
	if _, err := unix.Write(sl.fd, wire); err != nil {
		a := sl.a
		p.releaseLocked(idx)
		p.mu.Unlock()
		a.finish(nil, os.NewSyscallError("write", err), false)
		return true
	}
	sl.a.resent.Store(true)
	sl.every *= 2
	p.timers.push(timer{at: minTime(now.Add(sl.every), sl.a.deadline), idx: idx, gen: sl.gen})
	return false
}

// timer is when one attempt is due (a resend or its deadline); deadlines
// is a min-heap of them, written out rather than through container/heap,
// whose any-typed Push and Pop would box a timer per query.
type timer struct {
	at  time.Time
	idx int32
	gen uint32
}

type deadlines []timer

func (d deadlines) Len() int { return len(d) }

func (d *deadlines) push(t timer) {
	h := append(*d, t)
	for i := len(h) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h[i].at.Before(h[parent].at) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
	*d = h
}

func (d *deadlines) pop() timer {
	h := *d
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		small, l, r := i, 2*i+1, 2*i+2
		if l < len(h) && h[l].at.Before(h[small].at) {
			small = l
		}
		if r < len(h) && h[r].at.Before(h[small].at) {
			small = r
		}
		if small == i {
			break
		}
		h[i], h[small] = h[small], h[i]
		i = small
	}
	*d = h
	return top
}
