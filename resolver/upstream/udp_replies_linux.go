package upstream

import (
	"container/heap"
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
		head := heap.Pop(&p.timers).(timer)
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

// timer is one attempt's deadline; deadlines is a min-heap of them.
type timer struct {
	at  time.Time
	idx int32
	gen uint32
}

type deadlines []timer

func (d deadlines) Len() int           { return len(d) }
func (d deadlines) Less(i, j int) bool { return d[i].at.Before(d[j].at) }
func (d deadlines) Swap(i, j int)      { d[i], d[j] = d[j], d[i] }
func (d *deadlines) Push(x any)        { *d = append(*d, x.(timer)) }
func (d *deadlines) Pop() any {
	old := *d
	t := old[len(old)-1]
	*d = old[:len(old)-1]
	return t
}
