package resolver

import (
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

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
