//go:build unix

package resolver

import (
	"os"

	"golang.org/x/sys/unix"
)

// reusePort lets several sockets share one UDP address, so the kernel
// spreads packets over the read loops (SO_REUSEPORT).
func reusePort(fd uintptr) error {
	if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return os.NewSyscallError("setsockopt SO_REUSEPORT", err)
	}
	return nil
}

// setV6Only makes a [::] socket IPv6-only (when 0.0.0.0 on the same port
// is listed too) or dual-stack.
func setV6Only(fd uintptr, on bool) error {
	v := 0
	if on {
		v = 1
	}
	if err := unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v); err != nil {
		return os.NewSyscallError("setsockopt IPV6_V6ONLY", err)
	}
	return nil
}
