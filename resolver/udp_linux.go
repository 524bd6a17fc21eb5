package resolver

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/dnsward/dnsward/internal/dnswire"
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

// udpIO is the memory for reading or writing one packet: the message
// header, address and control buffers the kernel fills, kept off the
// stack so a system call never makes them escape per packet. A batch has
// one per slot; a goroutine's scratch has one for the replies it writes.
type udpIO struct {
	buf     []byte
	from    netip.AddrPort
	dst     netip.Addr
	ifindex int32

	hdr  unix.Msghdr
	iov  unix.Iovec
	name unix.RawSockaddrInet6 // large enough for either family
	oob  [128]byte
}

// udpBatchSize is how many datagrams one recvmmsg takes and one sendmmsg
// sends. Under load a read loop then makes two system calls per batch
// instead of two per query; at a low rate a batch is one packet, and its
// reply goes out with one sendto (sendmsg on a wildcard socket).
const udpBatchSize = 8

// udpCanDrain: a socket can be read without waiting (readBatch with wait
// false), so helper loops can drain what its leader leaves.
const udpCanDrain = true

// udpBatch is one read loop's packets of one read and the replies queued
// for them. Every slot's buffer takes the largest datagram, so no query is
// cut short; the kernel touches only the pages a packet fills.
type udpBatch struct {
	in     [udpBatchSize]udpIO
	rmsgs  [udpBatchSize]unix.Mmsghdr
	out    [udpBatchSize]udpIO // the queued replies: bytes and headers
	wmsgs  [udpBatchSize]unix.Mmsghdr
	queued int
}

func newUDPBatch() *udpBatch {
	b := &udpBatch{}
	bufs := make([]byte, udpBatchSize*dnswire.MaxMessageSize)
	for i := range b.in {
		b.in[i].buf = bufs[i*dnswire.MaxMessageSize : (i+1)*dnswire.MaxMessageSize : (i+1)*dnswire.MaxMessageSize]
		b.out[i].buf = make([]byte, 0, 1024)
	}
	return b
}

// readBatch reads the datagrams waiting on the socket into b's slots and
// returns how many, waiting for the first one if wait is set (else failing
// with EAGAIN when none is queued). It returns net.ErrClosed once the
// socket is closed.
func (u *udpSocket) readBatch(b *udpBatch, wait bool) (int, error) {
	flags := unix.MSG_WAITFORONE
	if !wait {
		flags = unix.MSG_DONTWAIT
	}
	for {
		if u.closed.Load() {
			return 0, net.ErrClosed
		}
		u.prepareRead(b)
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(u.fd), uintptr(unsafe.Pointer(&b.rmsgs[0])),
			udpBatchSize, uintptr(flags), 0, 0)
		switch errno {
		case 0:
		case unix.EAGAIN:
			if !wait {
				return 0, errno
			}
			continue // the read timeout
		case unix.EINTR:
			continue
		default:
			return 0, os.NewSyscallError("recvmmsg", errno)
		}
		u.finishRead(b, int(n))
		return int(n), nil
	}
}

// prepareRead points each slot's header at its buffers; the kernel
// overwrites the lengths on every call.
func (u *udpSocket) prepareRead(b *udpBatch) {
	for i := range b.in {
		io, h := &b.in[i], &b.rmsgs[i].Hdr
		io.iov.Base, io.iov.Len = &io.buf[0], uint64(len(io.buf))
		*h = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&io.name)), Namelen: uint32(unsafe.Sizeof(io.name)),
			Iov: &io.iov, Iovlen: 1}
		if u.wildcard {
			h.Control, h.Controllen = &io.oob[0], uint64(len(io.oob))
		}
	}
}

// finishRead fills in each datagram's sender (and destination, on a
// wildcard socket).
func (u *udpSocket) finishRead(b *udpBatch, n int) {
	for i := range n {
		io := &b.in[i]
		io.from = rawToAddrPort(&io.name)
		io.dst, io.ifindex = netip.Addr{}, 0
		if u.wildcard {
			io.dst, io.ifindex = parsePktinfo(io.oob[:b.rmsgs[i].Hdr.Controllen])
		}
	}
}

// slot returns datagram i of the last read and its length; 0 is an empty
// datagram or shutdown's wake-up, with nothing to answer.
func (b *udpBatch) slot(i int) (*udpIO, int) { return &b.in[i], int(b.rmsgs[i].Len) }

// queue copies a reply (not empty) to slot from's sender into the batch;
// flush sends it.
func (b *udpBatch) queue(u *udpSocket, out []byte, from *udpIO) {
	w := &b.out[b.queued]
	w.buf = append(w.buf[:0], out...)
	w.fillSendHeader(u, w.buf, from.from, from.dst, from.ifindex)
	b.wmsgs[b.queued].Hdr = w.hdr
	b.queued++
}

// flush sends the queued replies with as few sendmmsg calls as the
// kernel allows; a reply the kernel refuses (say, a full buffer) is
// dropped, as a failed sendto would drop it, and the rest still go.
func (u *udpSocket) flush(b *udpBatch) {
	for sent := 0; sent < b.queued; {
		n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(u.fd), uintptr(unsafe.Pointer(&b.wmsgs[sent])),
			uintptr(b.queued-sent), 0, 0, 0)
		switch {
		case errno == unix.EINTR:
		case errno != 0 || n == 0:
			sent++
		default:
			sent += int(n)
		}
	}
	b.queued = 0
}

// parsePktinfo finds the destination address in a packet's control messages.
func parsePktinfo(oob []byte) (netip.Addr, int32) {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		if h.Len < unix.SizeofCmsghdr || int(h.Len) > len(oob) {
			break
		}
		data := oob[unix.SizeofCmsghdr:h.Len]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			p := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
			return netip.AddrFrom4(p.Addr), p.Ifindex
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			p := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
			return netip.AddrFrom16(p.Addr).Unmap(), int32(p.Ifindex)
		}
		oob = oob[cmsgAlign(int(h.Len)):]
	}
	return netip.Addr{}, 0
}

func cmsgAlign(n int) int { return (n + 7) &^ 7 }

func rawToAddrPort(rsa *unix.RawSockaddrInet6) netip.AddrPort {
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&rsa.Port))[:])
	if rsa.Family == unix.AF_INET {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	}
	return netip.AddrPortFrom(netip.AddrFrom16(rsa.Addr).Unmap(), port)
}

// write sends one datagram to to, from src when the socket is a wildcard
// one (src is the address the query arrived at; ifindex its interface,
// which IPv6 link-local sources need). io is the calling goroutine's own.
// Safe from any goroutine.
func (u *udpSocket) write(b []byte, to netip.AddrPort, src netip.Addr, ifindex int32, io *udpIO) error {
	if len(b) == 0 {
		return nil
	}
	if !u.wildcard { // sendto: no control message to carry
		n := putSockaddr(&io.name, u.family, to)
		_, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(u.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0,
			uintptr(unsafe.Pointer(&io.name)), uintptr(n))
		if errno != 0 {
			return os.NewSyscallError("sendto", errno)
		}
		return nil
	}
	io.fillSendHeader(u, b, to, src, ifindex)
	_, _, errno := unix.Syscall(unix.SYS_SENDMSG, uintptr(u.fd), uintptr(unsafe.Pointer(&io.hdr)), 0)
	if errno != 0 {
		return os.NewSyscallError("sendmsg", errno)
	}
	return nil
}

// fillSendHeader sets io's message header for sendmsg or sendmmsg: b to
// to, from src on a wildcard socket. b must not be empty.
func (io *udpIO) fillSendHeader(u *udpSocket, b []byte, to netip.AddrPort, src netip.Addr, ifindex int32) {
	io.iov.Base, io.iov.Len = &b[0], uint64(len(b))
	io.hdr = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&io.name)), Iov: &io.iov, Iovlen: 1}
	io.hdr.Namelen = putSockaddr(&io.name, u.family, to)
	if u.wildcard && src.IsValid() {
		n := putPktinfo(io.oob[:], src, ifindex)
		io.hdr.Control, io.hdr.Controllen = &io.oob[0], uint64(n)
	}
}

// putSockaddr writes to into rsa in the socket's family and returns its length.
func putSockaddr(rsa *unix.RawSockaddrInet6, family int, to netip.AddrPort) uint32 {
	if family == unix.AF_INET {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: to.Addr().Unmap().As4()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:], to.Port())
		return unix.SizeofSockaddrInet4
	}
	*rsa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: to.Addr().As16()}
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&rsa.Port))[:], to.Port())
	return unix.SizeofSockaddrInet6
}

// putPktinfo writes the control message that sets a reply's source
// address: IP_PKTINFO's spec_dst for IPv4 (also on a dual-stack socket),
// IPV6_PKTINFO for IPv6. It returns the message's length.
func putPktinfo(oob []byte, src netip.Addr, ifindex int32) int {
	clear(oob)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	data := unsafe.Pointer(&oob[unix.SizeofCmsghdr])
	if src.Is4() {
		h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		(*unix.Inet4Pktinfo)(data).Spec_dst = src.As4()
		return unix.CmsgSpace(unix.SizeofInet4Pktinfo)
	}
	h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
	p := (*unix.Inet6Pktinfo)(data)
	p.Addr = src.As16()
	if src.IsLinkLocalUnicast() {
		p.Ifindex = uint32(ifindex)
	}
	return unix.CmsgSpace(unix.SizeofInet6Pktinfo)
}
