package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// notifyListener is a stand-in for systemd's end of NOTIFY_SOCKET: a real
// unixgram socket whose datagrams the test reads.
func notifyListener(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func readNotify(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func TestNotifySocketPathAndAbstract(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	abstract := fmt.Sprintf("@dnsward-test-%d", os.Getpid())
	for _, name := range []string{path, abstract} {
		conn := notifyListener(t, name)
		if err := notifySocket(name, "READY=1", "STATUS=serving"); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := readNotify(t, conn); got != "READY=1\nSTATUS=serving\n" {
			t.Fatalf("%s: got %q", name, got)
		}
	}
}

func TestNotifyOutsideSystemd(t *testing.T) {
	if err := notifySocket("", "READY=1"); err != nil {
		t.Fatalf("unset NOTIFY_SOCKET must be a no-op, got %v", err)
	}
	if err := notifySocket("vsock:2:1234", "READY=1"); err == nil || !strings.Contains(err.Error(), "only unix socket") {
		t.Fatalf("vsock address: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "gone.sock")
	if err := notifySocket(missing, "READY=1"); err == nil {
		t.Fatal("a socket nobody listens on must be an error")
	}
}

// TestServeNotifiesSystemd runs serve as a Type=notify unit would: READY=1
// once it answers, RELOADING=1 with MONOTONIC_USEC then READY=1 around a
// SIGHUP reload, STOPPING=1 when it is told to stop.
func TestServeNotifiesSystemd(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "notify.sock")
	conn := notifyListener(t, socket)
	t.Setenv("NOTIFY_SOCKET", socket)

	up := startZoneServer(t, nil)
	path := writeConfig(t, t.TempDir(), up.addr, "")
	cfg, err := loadConfigFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hup := make(chan os.Signal, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), hup, 0) }()

	if got := readNotify(t, conn); got != "READY=1\n" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	before := monotonicUsec(t)
	hup <- syscall.SIGHUP
	reloading := readNotify(t, conn)
	lines := strings.Split(strings.TrimSpace(reloading), "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("reload notification %q", reloading)
	}
	usec, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil || usec < before || usec > monotonicUsec(t) {
		t.Fatalf("MONOTONIC_USEC %q is not CLOCK_MONOTONIC now (%d..)", lines[1], before)
	}
	if got := readNotify(t, conn); got != "READY=1\n" {
		t.Fatalf("after reload %q, want READY=1", got)
	}
	cancel()
	if got := readNotify(t, conn); got != "STOPPING=1\n" {
		t.Fatalf("at shutdown %q, want STOPPING=1", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

func monotonicUsec(t *testing.T) int64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}
