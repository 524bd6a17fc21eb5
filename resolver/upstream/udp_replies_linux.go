package upstream

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// readable reads what arrived on slot idx's socket. Datagrams that are
// not the reply (wrong ID or question: possibly spoofed) are noted and
// the wait goes on; the reply ends the slot and goes to its transport.
func (p *udpPoller) readable(idx int32, gen uint32) {
	p.mu.Lock()
	if idx < 0 || int(idx) >= len(p.slots) || p.slots[idx].gen != gen || p.slots[idx].fd < 0 {
		p.mu.Unlock()
		return // a late event for a socket already closed
	}
	sl := &p.slots[idx]
	for {
		n, err := unix.Read(sl.fd, p.buf[:])
		switch {
		case err == unix.EAGAIN:
			p.mu.Unlock()
			return
		case err == unix.EINTR:
			continue
		case err != nil: // e.g. ICMP port unreachable
			a := sl.a
			p.releaseLocked(idx)
			p.mu.Unlock()
			a.finish(nil, os.NewSyscallError("read", err), false)
			return
		}
		if !matchesQuery(p.buf[:n], sl.a.ex.wire, sl.id, sl.a.ex.qlen) {
			sl.rejected = fmt.Errorf("%w: only replies to other queries arrived (wrong ID or question)", errBadResponse)
			continue
		}
		a, t, id := sl.a, sl.t, sl.id
		p.releaseLocked(idx)
		p.mu.Unlock()
		t.replied(a, p.buf[:n], id) // p.buf is the poller goroutine's own
		return
	}
}

// expire ends attempts past their deadline. It reports true once the
// poller is closed.
func (p *udpPoller) expire(now time.Time) bool {
	type expired struct {
		a   *attempt
		err error
	}
	var due []expired
	p.mu.Lock()
	closed := p.closed
	for {
		at, ok := p.earliestLocked()
		if !ok || (!closed && now.Before(at)) {
			break
		}
		head := p.timers.pop()
		sl := &p.slots[head.idx]
		err := sl.rejected
		if err == nil {
			err = fmt.Errorf("no reply: %w", os.ErrDeadlineExceeded)
		}
		if closed {
			err = ErrClosed
		}
		due = append(due, expired{sl.a, err})
		p.releaseLocked(head.idx)
	}
	p.mu.Unlock()
	for _, d := range due {
		d.a.finish(nil, d.err, false)
	}
	return closed
}

// close stops the poller; attempts still waiting end with ErrClosed.
func (p *udpPoller) close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	if p.driven {
		p.expire(time.Now()) // ends every attempt still waiting (ErrClosed)
		return os.NewSyscallError("close", unix.Close(p.epfd))
	}
	p.wake()
	<-p.done
	return errors.Join(os.NewSyscallError("close", unix.Close(p.epfd)), os.NewSyscallError("close", unix.Close(p.wakefd)))
}

// timer is one attempt's deadline; deadlines is a min-heap of them,
// written out rather than through container/heap, whose any-typed Push
// and Pop would box a timer per query.
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
