package resolver

import (
	"encoding/binary"
	"net/netip"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

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
	io.iov.Base, io.iov.Len = &b[0], uint64(len(b))
	io.hdr = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&io.name)), Iov: &io.iov, Iovlen: 1}
	io.hdr.Namelen = putSockaddr(&io.name, u.family, to)
	if u.wildcard && src.IsValid() {
		n := putPktinfo(io.oob[:], src, ifindex)
		io.hdr.Control, io.hdr.Controllen = &io.oob[0], uint64(n)
	}
	_, _, errno := unix.Syscall(unix.SYS_SENDMSG, uintptr(u.fd), uintptr(unsafe.Pointer(&io.hdr)), 0)
	if errno != 0 {
		return os.NewSyscallError("sendmsg", errno)
	}
	return nil
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
