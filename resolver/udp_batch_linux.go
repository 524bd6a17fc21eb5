package resolver

import (
	"net"
	"net/netip"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/dnsward/dnsward/internal/dnswire"
)

// udpBatchSize is how many datagrams one recvmmsg takes and one sendmmsg
// sends. Under load a read loop then makes two system calls per batch
// instead of two per query; at a low rate a batch is one packet, and a
// lone reply goes out with one sendto or sendmsg as before.
const udpBatchSize = 8

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

// queue copies a reply to slot from's sender into the batch; flush sends it.
func (b *udpBatch) queue(u *udpSocket, out []byte, from *udpIO) {
	if len(out) == 0 {
		return
	}
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
