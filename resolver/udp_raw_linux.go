package resolver

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawUDP is a UDP socket that dnsward reads with blocking recvfrom, its
// reader's thread waiting in the kernel, instead of through Go's
// netpoller. At moderate rates
// each packet otherwise costs a goroutine park and a futex wake-up on top
// of the read; a thread blocked in the kernel is woken by the packet
// itself, as in C resolvers. The socket is ours, not net's, so closing it
// cannot race with a read that Go's runtime does not know about.
type rawUDP struct {
	fd     int
	family int
	local  netip.AddrPort
	closed atomic.Bool
}

// readTimeoutUsec bounds each blocking read so a closed socket's reader
// notices within this time even if shutdown(2) did not wake it.
const readTimeoutUsec = 500_000

func listenRawUDP(addr netip.AddrPort) (*rawUDP, error) {
	family := unix.AF_INET
	if addr.Addr().Is6() && !addr.Addr().Is4In6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, err
	}
	u := &rawUDP{fd: fd, family: family}
	fail := func(err error) (*rawUDP, error) {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return fail(err)
	}
	tv := unix.Timeval{Usec: readTimeoutUsec}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fail(err)
	}
	var sa unix.Sockaddr
	if family == unix.AF_INET {
		sa = &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().Unmap().As4()}
	} else {
		if addr.Addr().IsUnspecified() { // [::] serves IPv4 too, as Go's net does
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
				return fail(err)
			}
		}
		sa = &unix.SockaddrInet6{Port: int(addr.Port()), Addr: addr.Addr().As16()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail(err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		return fail(err)
	}
	switch got := got.(type) {
	case *unix.SockaddrInet4:
		u.local = netip.AddrPortFrom(netip.AddrFrom4(got.Addr), uint16(got.Port))
	case *unix.SockaddrInet6:
		u.local = netip.AddrPortFrom(netip.AddrFrom16(got.Addr), uint16(got.Port))
	}
	return u, nil
}

// LocalAddr returns the bound address.
func (u *rawUDP) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(u.local) }

// Close stops the reader: shutdown(2) wakes a blocked recvfrom even on
// an unconnected UDP socket (it reports ENOTCONN, which is expected), and
// the read timeout is the fallback. The descriptor stays open until
// release, once no reader or writer can use it: closing it earlier could
// hand its number to another socket while a write is pending.
func (u *rawUDP) Close() error {
	u.closed.Store(true)
	_ = unix.Shutdown(u.fd, unix.SHUT_RD)
	return nil
}

func (u *rawUDP) release() { unix.Close(u.fd) }

// readFrom blocks until a packet arrives, the read times out (ok false,
// no error) or the socket is closed (net.ErrClosed).
func (u *rawUDP) readFrom(buf []byte, from *netip.AddrPort) (int, error) {
	var rsa unix.RawSockaddrInet6 // large enough for either family
	for {
		rsaLen := uint32(unsafe.Sizeof(rsa))
		if u.closed.Load() {
			return 0, net.ErrClosed
		}
		n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(u.fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)),
			0, uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&rsaLen)))
		switch errno {
		case 0:
			if n == 0 { // woken by shutdown, or an empty datagram: nothing to answer
				continue
			}
			*from = rawToAddrPort(&rsa)
			return int(n), nil
		case unix.EAGAIN, unix.EINTR:
			continue
		default:
			return 0, fmt.Errorf("recvfrom: %w", errno)
		}
	}
}

// readNow reads a packet that is already queued; it fails with EAGAIN
// when none is, and with net.ErrClosed once the socket is closed.
func (u *rawUDP) readNow(buf []byte, from *netip.AddrPort) (int, error) {
	var rsa unix.RawSockaddrInet6
	for {
		rsaLen := uint32(unsafe.Sizeof(rsa))
		if u.closed.Load() {
			return 0, net.ErrClosed
		}
		n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(u.fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)),
			unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&rsaLen)))
		switch {
		case errno == unix.EINTR:
			continue
		case errno != 0:
			return 0, errno
		case n == 0:
			continue // an empty datagram: nothing to answer
		}
		*from = rawToAddrPort(&rsa)
		return int(n), nil
	}
}

// writeTo sends one datagram; safe from any goroutine.
func (u *rawUDP) writeTo(b []byte, to netip.AddrPort) error {
	if len(b) == 0 {
		return nil
	}
	var ptr unsafe.Pointer
	var size uintptr
	var sa4 unix.RawSockaddrInet4
	var sa6 unix.RawSockaddrInet6
	if u.family == unix.AF_INET {
		sa4.Family = unix.AF_INET
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:], to.Port())
		sa4.Addr = to.Addr().Unmap().As4()
		ptr, size = unsafe.Pointer(&sa4), unsafe.Sizeof(sa4)
	} else {
		sa6.Family = unix.AF_INET6
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa6.Port))[:], to.Port())
		sa6.Addr = to.Addr().As16()
		ptr, size = unsafe.Pointer(&sa6), unsafe.Sizeof(sa6)
	}
	_, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(u.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0, uintptr(ptr), size)
	if errno != 0 {
		return errno
	}
	return nil
}

func rawToAddrPort(rsa *unix.RawSockaddrInet6) netip.AddrPort {
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&rsa.Port))[:])
	if rsa.Family == unix.AF_INET {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	}
	return netip.AddrPortFrom(netip.AddrFrom16(rsa.Addr).Unmap(), port)
}
