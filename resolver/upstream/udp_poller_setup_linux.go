package upstream

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// A poller opens and closes here: the forwarder's own, with a goroutine
// (run), and a Lane's, which its owner's loop drives. What a poller does
// per query (send, read, expire) is in udp_poller_linux.go.

// newUDPPoller is the forwarder's poller, read by a goroutine of its own.
func newUDPPoller() (*udpPoller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeToken}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	p := &udpPoller{epfd: epfd, wakefd: wakefd, done: make(chan struct{})}
	go p.run()
	return p, nil
}

// run is the poller goroutine: wait, handle replies, expire deadlines.
func (p *udpPoller) run() {
	defer close(p.done)
	for !p.poll(p.sleepTime()) {
	}
}

// newDrivenPoller is a poller without a goroutine: its owner waits on
// epfd and calls poll (see Lane).
func newDrivenPoller() (*udpPoller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	p := &udpPoller{epfd: epfd, wakefd: -1, done: make(chan struct{}), driven: true}
	close(p.done)
	return p, nil
}

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

// Close ends the lane; attempts still waiting end with ErrClosed.
func (l *Lane) Close() error { return l.p.close() }

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
