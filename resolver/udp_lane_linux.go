package resolver

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/dnsward/dnsward/resolver/upstream"
)

// A read loop with cache misses of its own on its lane waits for its
// socket and the lane's replies at once, in one epoll set, the way
// event-driven C resolvers do; with none it blocks in recvmmsg.
type loopPoll struct {
	epfd    int
	sockFd  int
	watched bool // the socket is in the set
	events  [2]unix.EpollEvent
}

const (
	sockToken = 1
	laneToken = 2
)

func newLoopPoll(u *udpSocket, lane *upstream.Lane) (*loopPoll, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	lp := &loopPoll{epfd: epfd, sockFd: u.fd, watched: true}
	for fd, token := range map[int]int32{u.fd: sockToken, lane.Fd(): laneToken} {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: token}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			unix.Close(epfd)
			return nil, os.NewSyscallError("epoll_ctl", err)
		}
	}
	return lp, nil
}

// wait sleeps up to msec (-1: until an event) and reports whether client
// packets are waiting.
func (lp *loopPoll) wait(msec int) bool {
	n, err := unix.EpollWait(lp.epfd, lp.events[:], msec)
	if err != nil {
		return false // EINTR
	}
	for _, ev := range lp.events[:n] {
		if ev.Fd == sockToken {
			return true
		}
	}
	return false
}

// stopClients takes the socket out of the set once it is closed: a
// shut-down socket stays readable, and only the lane's replies matter then.
func (lp *loopPoll) stopClients() {
	if lp.watched {
		_ = unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_DEL, lp.sockFd, nil)
		lp.watched = false
	}
}

func (lp *loopPoll) close() { unix.Close(lp.epfd) }
