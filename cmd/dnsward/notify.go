package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// sdNotify tells systemd (Type=notify) about dnsward's state: READY=1 once
// the listeners and the admin listener are up, RELOADING=1 and READY=1
// around a reload, STOPPING=1 at shutdown. It does nothing when
// NOTIFY_SOCKET is unset, i.e. outside a notify unit. Failures are logged,
// never fatal: a resolver that serves matters more than its unit's state.
func sdNotify(log *slog.Logger, states ...string) {
	if err := notifySocket(os.Getenv("NOTIFY_SOCKET"), states...); err != nil {
		log.Warn("telling systemd our state failed", "state", strings.Join(states, " "), "err", err)
	}
}

// notifySocket sends one datagram to socket, a path or an "@" abstract
// name (Go maps a leading "@" to the abstract namespace).
func notifySocket(socket string, states ...string) error {
	if socket == "" {
		return nil
	}
	if !strings.HasPrefix(socket, "/") && !strings.HasPrefix(socket, "@") {
		return fmt.Errorf("NOTIFY_SOCKET %q: only unix socket paths and @abstract names are supported", socket)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(strings.Join(states, "\n") + "\n"))
	return err
}

// reloadingState is RELOADING=1 with the CLOCK_MONOTONIC timestamp that
// systemd (253+, Type=notify-reload) requires alongside it.
func reloadingState() []string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return []string{"RELOADING=1"}
	}
	return []string{"RELOADING=1", fmt.Sprintf("MONOTONIC_USEC=%d", ts.Nano()/1000)}
}

// notifyReload sends RELOADING=1 now and returns the func that sends
// READY=1, so a reload is one line: defer notifyReload(log)().
func notifyReload(log *slog.Logger) func() {
	sdNotify(log, reloadingState()...)
	return func() { sdNotify(log, "READY=1") }
}
