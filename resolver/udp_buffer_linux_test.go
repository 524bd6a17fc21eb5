package resolver

import (
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The listening UDP socket asks for a receive buffer larger than the
// kernel's default, so short stalls do not drop queries; the kernel caps
// it at net.core.rmem_max.
func TestUDPListenerAsksForALargeReceiveBuffer(t *testing.T) {
	rmemMax, rmemDefault := sysctlInt(t, "rmem_max"), sysctlInt(t, "rmem_default")
	want := min(udpReceiveBuffer, rmemMax) * 2 // Linux doubles what it grants
	if want <= rmemDefault {
		t.Skipf("net.core.rmem_max (%d) leaves no room above the default (%d)", rmemMax, rmemDefault)
	}
	u, err := listenUDPSocket(netip.MustParseAddrPort("127.0.0.1:0"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(u.fd)
	got, err := unix.GetsockoptInt(u.fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	if err != nil {
		t.Fatal(err)
	}
	if got < want {
		t.Fatalf("SO_RCVBUF = %d, want %d (min(%d, rmem_max %d) doubled)", got, want, udpReceiveBuffer, rmemMax)
	}
}

func sysctlInt(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/core/" + name)
	if err != nil {
		t.Skipf("no /proc/sys/net/core/%s: %v", name, err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("/proc/sys/net/core/%s: %v", name, err)
	}
	return v
}
