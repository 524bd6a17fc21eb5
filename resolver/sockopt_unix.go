//go:build unix

package resolver

import (
	"os"

	"golang.org/x/sys/unix"
)

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
