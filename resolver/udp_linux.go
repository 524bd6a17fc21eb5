package resolver

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/dnsward/dnsward/internal/dnswire"
	"github.com/dnsward/dnsward/resolver/upstream"
)

// The system calls a read loop makes per packet (the socket itself, its
// options and its drop count are in udp_socket_linux.go): recvmmsg for a
// batch, sendto, sendmsg or sendmmsg for the answers, epoll_wait while
// the loop's own misses are in flight.

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
