package upstream

import (
	"net/netip"
	"os"
	"syscall"
	"time"
)

// freshUDP is a connected UDP socket for one upstream query, made with
// raw system calls: net.DialUDP spends three more per query (SO_BROADCAST,
// getsockname, getpeername) that a forwarder has no use for, and a socket
// per query is most of the cost of a cache miss. Connecting lets the
// kernel drop datagrams from any other address and report ICMP errors.
type freshUDP struct {
	f  *os.File // registers the socket with Go's poller, for deadlines
	rc syscall.RawConn
}

func dialFreshUDP(addr netip.AddrPort) (udpConn, error) {
	if addr.Addr().Zone() != "" {
		return dialNetUDP(addr) // scoped IPv6 needs the interface index: let net do it
	}
	family, sa := syscall.AF_INET, syscall.Sockaddr(nil)
	if ip := addr.Addr().Unmap(); ip.Is4() {
		sa = &syscall.SockaddrInet4{Port: int(addr.Port()), Addr: ip.As4()}
	} else {
		family, sa = syscall.AF_INET6, &syscall.SockaddrInet6{Port: int(addr.Port()), Addr: ip.As16()}
	}
	fd, err := syscall.Socket(family, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := syscall.Connect(fd, sa); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("connect", err)
	}
	f := os.NewFile(uintptr(fd), "udp "+addr.String())
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &freshUDP{f: f, rc: rc}, nil
}

// sendAndRead sends b and reads the first datagram that comes back. The
// send happens inside the read callback, after the poller has been reset
// for this read, so the read need not be tried before the reply can be
// there: that saves a system call that would fail with EAGAIN on almost
// every query. (Waiting before sending would miss readiness the poller
// already saw and then forgot.)
func (c *freshUDP) sendAndRead(b, buf []byte) (int, error) {
	sent := false
	var n int
	var ioErr error
	err := c.rc.Read(func(fd uintptr) bool {
		if sent {
			n, ioErr = readOnce(fd, buf)
			return ioErr != syscall.EAGAIN
		}
		sent = true
		if _, werr := syscall.Write(int(fd), b); werr != nil {
			ioErr = os.NewSyscallError("write", werr)
			return true
		}
		return false // wait for the reply
	})
	return readResult(n, err, ioErr)
}

// read reads the next datagram, trying at once: two can arrive behind one
// readiness event.
func (c *freshUDP) read(buf []byte) (int, error) {
	var n int
	var ioErr error
	err := c.rc.Read(func(fd uintptr) bool {
		n, ioErr = readOnce(fd, buf)
		return ioErr != syscall.EAGAIN
	})
	return readResult(n, err, ioErr)
}

// readResult prefers the poller's error (deadline, close) to the last read's.
func readResult(n int, pollErr, ioErr error) (int, error) {
	if pollErr != nil {
		return 0, pollErr
	}
	if ioErr != nil {
		return 0, ioErr
	}
	return n, nil
}

// readOnce is one read(2); EAGAIN comes back bare for the poller loop.
func readOnce(fd uintptr, buf []byte) (int, error) {
	n, err := syscall.Read(int(fd), buf)
	if err != nil && err != syscall.EAGAIN {
		return 0, os.NewSyscallError("read", err)
	}
	return n, err
}

func (c *freshUDP) SetDeadline(t time.Time) error { return c.f.SetDeadline(t) }
func (c *freshUDP) Close() error                  { return c.f.Close() }
