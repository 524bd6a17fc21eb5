package resolver

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpSocket is a UDP socket that a read loop serves with blocking system
// calls, its thread waiting in the kernel, instead of through Go's
// netpoller: at moderate rates each packet otherwise costs a goroutine
// park and a futex wake-up on top of the read; a thread blocked in the
// kernel is woken by the packet itself, as in C resolvers. The socket is
// ours, not net's, so closing it cannot race with a read Go's runtime
// does not know about.
//
// A socket bound to a wildcard address (0.0.0.0, ::) reads each packet's
// destination address (IP_PKTINFO, IPV6_PKTINFO) and sends the reply from
// it: on a host with several addresses, a VIP or an anycast address, a
// reply from any other address is dropped by the client.
type udpSocket struct {
	fd       int
	family   int
	local    netip.AddrPort
	wildcard bool
	closed   atomic.Bool
	stats    socketStats
}

// readTimeoutUsec bounds each blocking read so a closed socket's reader
// notices within this time even if shutdown(2) did not wake it.
const readTimeoutUsec = 500_000

// listenUDPSocket opens the UDP socket for addr; v6only keeps a
// [::] socket to IPv6 (when 0.0.0.0 on the same port is listed too),
// rcvbuf is the receive buffer to ask for in bytes, and loops how many
// read loops will serve the socket (with rcvbuf 0, the kernel's default
// buffer is asked for once per loop: see setReceiveBuffer).
func listenUDPSocket(addr netip.AddrPort, v6only bool, rcvbuf, loops int) (*udpSocket, error) {
	family := unix.AF_INET
	if addr.Addr().Is6() && !addr.Addr().Is4In6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	u := &udpSocket{fd: fd, family: family, wildcard: addr.Addr().IsUnspecified()}
	if err := u.setOptions(v6only, rcvbuf, loops); err != nil {
		unix.Close(fd)
		return nil, err
	}
	var sa unix.Sockaddr
	if family == unix.AF_INET {
		sa = &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().Unmap().As4()}
	} else {
		sa = &unix.SockaddrInet6{Port: int(addr.Port()), Addr: addr.Addr().As16()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("getsockname", err)
	}
	switch got := got.(type) {
	case *unix.SockaddrInet4:
		u.local = netip.AddrPortFrom(netip.AddrFrom4(got.Addr), uint16(got.Port))
	case *unix.SockaddrInet6:
		u.local = netip.AddrPortFrom(netip.AddrFrom16(got.Addr), uint16(got.Port))
	}
	return u, nil
}

func (u *udpSocket) setOptions(v6only bool, rcvbuf, loops int) error {
	if err := setReceiveBuffer(u.fd, rcvbuf, loops); err != nil {
		return err
	}
	tv := unix.Timeval{Usec: readTimeoutUsec}
	if err := unix.SetsockoptTimeval(u.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return os.NewSyscallError("setsockopt SO_RCVTIMEO", err)
	}
	if u.family == unix.AF_INET6 {
		if err := setV6Only(uintptr(u.fd), v6only); err != nil {
			return err
		}
	}
	if !u.wildcard {
		return nil
	}
	if u.family == unix.AF_INET6 {
		if err := unix.SetsockoptInt(u.fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1); err != nil {
			return os.NewSyscallError("setsockopt IPV6_RECVPKTINFO", err)
		}
		if v6only {
			return nil
		}
	}
	// IPv4 packets, also those a dual-stack [::] socket receives.
	if err := unix.SetsockoptInt(u.fd, unix.IPPROTO_IP, unix.IP_PKTINFO, 1); err != nil {
		return os.NewSyscallError("setsockopt IP_PKTINFO", err)
	}
	return nil
}

// LocalAddr returns the bound address.
func (u *udpSocket) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(u.local) }

// Close stops the reader: shutdown(2) wakes a blocked read even on an
// unconnected UDP socket, and the read timeout is the fallback. The
// descriptor stays open until release, once nothing can use it: closing
// it earlier could hand its number to another socket while a write from
// a completing query is pending.
func (u *udpSocket) Close() error {
	u.closed.Store(true)
	_ = unix.Shutdown(u.fd, unix.SHUT_RD)
	return nil
}

// setReceiveBuffer asks for a receive buffer of n bytes. SO_RCVBUFFORCE
// goes past net.core.rmem_max, which only CAP_NET_ADMIN may do; without it
// SO_RCVBUF gets at most rmem_max, and Start says so (see receiveBuffer).
//
// With n 0 a socket that loops read loops share asks for the kernel's
// default buffer (net.core.rmem_default) once per loop: it then queues as
// many queries as one socket per loop did, and as many as Unbound's
// so-reuseport threads do, each with a default buffer of its own. One
// default buffer holds about 256 small queries, fewer than dnsperf's 500
// outstanding or a floor of phones back on Wi-Fi; the kernel caps the
// ask at rmem_max without a word, which is fine for a default.
func setReceiveBuffer(fd, n, loops int) error {
	if n == 0 && loops > 1 {
		def, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF) // a fresh socket's: rmem_default
		if err != nil {
			return os.NewSyscallError("getsockopt SO_RCVBUF", err)
		}
		n = def * loops / 2 // the kernel doubles what it is asked for
	}
	if n <= 0 || unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n) == nil {
		return nil
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, n); err != nil {
		return os.NewSyscallError("setsockopt SO_RCVBUF", err)
	}
	return nil
}

// receiveBuffer returns the bytes of queued packets the kernel holds for
// the socket (it reports double that, for its bookkeeping).
func (u *udpSocket) receiveBuffer() int {
	v, err := unix.GetsockoptInt(u.fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	if err != nil {
		return -1
	}
	return v / 2
}

// socketStats is what a metrics scrape reads from a socket. Its lock keeps
// a scrape from reading a descriptor that release has closed and the
// kernel may have given to another socket.
type socketStats struct {
	mu       sync.Mutex
	released bool
	drops    uint64 // the last count read
}

// drops returns how many datagrams the kernel dropped on the socket, for
// a full receive buffer, before a read loop could read them (SO_MEMINFO's
// drop count, as in /proc/net/udp). Safe from any goroutine.
func (u *udpSocket) drops() uint64 {
	u.stats.mu.Lock()
	defer u.stats.mu.Unlock()
	if !u.stats.released {
		u.readDrops()
	}
	return u.stats.drops
}

// readDrops updates the last count; the caller holds u.stats.mu.
func (u *udpSocket) readDrops() {
	var info [unix.SK_MEMINFO_VARS]uint32
	size := uint32(unsafe.Sizeof(info))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(u.fd), unix.SOL_SOCKET, unix.SO_MEMINFO,
		uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&size)), 0)
	if errno == 0 {
		u.stats.drops = uint64(info[unix.SK_MEMINFO_DROPS])
	}
}

// release closes the descriptor once nothing can use it (see Close),
// keeping the socket's last drop count for the metrics.
func (u *udpSocket) release() {
	u.stats.mu.Lock()
	defer u.stats.mu.Unlock()
	if u.stats.released {
		return
	}
	u.readDrops()
	u.stats.released = true
	unix.Close(u.fd)
}
