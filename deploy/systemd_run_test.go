package deploy

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestSystemdService installs the .deb where systemd runs as PID 1 and
// checks the unit does what the docs promise: postinst starts it, it is
// "active" only after READY=1, it runs as the dnsward user holding only
// CAP_NET_BIND_SERVICE inside its sandbox and answers on port 53, reload
// keeps the process, stop ends it cleanly, and purging the running
// service stops it and leaves no unit.
//
// systemd runs in a rootful podman container whose root file system is
// this host's own, behind an overlay (--rootfs /:O), so nothing is pulled
// and nothing the test does reaches the host's files. The container has no
// network but loopback: the example config's upstreams are unreachable,
// and the probe uses a blocked name, which needs none. It boots only
// basic.target, so the host's own services stay off.
func TestSystemdService(t *testing.T) {
	skipShort(t)
	requireTools(t, "podman", "runc", "dpkg", "setcap")
	requireRoot(t, "rootful podman")
	if _, err := os.Stat("/lib/systemd/systemd"); err != nil {
		t.Skip("needs systemd installed on this host (Debian package systemd): its root file system boots the container")
	}
	deb := buildDeb(t)
	name := fmt.Sprintf("dnsward-systemd-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	t.Cleanup(func() { removeContainer(t, name) })
	args := append([]string{"run", "-d", "--name", name}, podmanRun...)
	args = append(args, "--network", "none", "--cap-add", "SYS_ADMIN", // SYS_ADMIN: systemd sets up the unit's mount namespace
		"--systemd=always", "--tmpfs", "/run:rw,notmpcopyup", "--tmpfs", "/tmp:rw,notmpcopyup",
		"--rootfs", "/:O", "/lib/systemd/systemd", "--unit=basic.target")
	runCmd(t, time.Minute, "", "podman", args...)
	inside := func(limit time.Duration, cmd ...string) (string, error) {
		return tryCmd(limit, "", nil, "podman", append([]string{"exec", name}, cmd...)...)
	}
	waitFor(t, 60*time.Second, "systemd booted", func() (bool, string) {
		out, _ := inside(10*time.Second, "systemctl", "is-system-running")
		return strings.Contains(out, "running") || strings.Contains(out, "degraded"), out
	})

	// Container images forbid service starts in maintainer scripts with
	// policy-rc.d; a real host has none. Removed in the overlay only.
	if out, err := inside(time.Minute, "rm", "-f", "/usr/sbin/policy-rc.d"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	runCmd(t, time.Minute, "", "podman", "cp", deb, name+":/root/dnsward.deb")
	if out, err := inside(2*time.Minute, "dpkg", "-i", "/root/dnsward.deb"); err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}
	unitState := func() map[string]string {
		out, _ := inside(10*time.Second, "systemctl", "show", "dnsward", "-p", "ActiveState,MainPID,Result,ExecMainStatus,NRestarts,UnitFileState")
		props := map[string]string{}
		for _, line := range strings.Split(out, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				props[k] = strings.TrimSpace(v)
			}
		}
		return props
	}
	journal := func() string {
		out, _ := inside(10*time.Second, "journalctl", "-u", "dnsward", "--no-pager")
		return out
	}
	waitFor(t, 30*time.Second, "postinst started dnsward", func() (bool, string) {
		s := unitState()
		return s["ActiveState"] == "active", fmt.Sprint(s, "\n", journal())
	})
	state := unitState()
	if state["UnitFileState"] != "enabled" || state["NRestarts"] != "0" {
		t.Errorf("after install: %v", state)
	}
	checkSandboxedProcess(t, inside, state["MainPID"])
	if out, err := inside(time.Minute, "/usr/bin/dnsward", "health", "-probe", "www.tiktok.com"); err != nil || !strings.Contains(out, "NXDOMAIN") {
		t.Fatalf("dnsward health inside: %v\n%s\n%s", err, out, journal())
	}

	if out, err := inside(time.Minute, "systemctl", "reload", "dnsward"); err != nil {
		t.Fatalf("systemctl reload: %v\n%s", err, out)
	}
	waitFor(t, 15*time.Second, "reload applied", func() (bool, string) {
		j := journal()
		return strings.Contains(j, "config reloaded"), j
	})
	if after := unitState(); after["MainPID"] != state["MainPID"] || after["ActiveState"] != "active" {
		t.Errorf("reload replaced or stopped the process: before %v, after %v", state, after)
	}

	if out, err := inside(time.Minute, "systemctl", "stop", "dnsward"); err != nil {
		t.Fatalf("systemctl stop: %v\n%s", err, out)
	}
	if s := unitState(); s["ActiveState"] != "inactive" || s["Result"] != "success" || s["ExecMainStatus"] != "0" {
		t.Fatalf("after stop: %v\n%s", s, journal())
	}
	// Purge a running service: prerm must stop it.
	if out, err := inside(time.Minute, "systemctl", "start", "dnsward"); err != nil {
		t.Fatalf("systemctl start: %v\n%s", err, out)
	}
	if out, err := inside(2*time.Minute, "dpkg", "--purge", "dnsward"); err != nil {
		t.Fatalf("dpkg --purge: %v\n%s", err, out)
	}
	if out, err := inside(10*time.Second, "pgrep", "-x", "dnsward"); err == nil {
		t.Errorf("dnsward still runs after purge: pid %s", out)
	}
	if out, _ := inside(10*time.Second, "systemctl", "list-unit-files", "--no-legend", "dnsward.service"); strings.Contains(out, "dnsward") {
		t.Errorf("unit still known after purge: %s", out)
	}
}

// checkSandboxedProcess reads the service's credentials: the dnsward
// user, CAP_NET_BIND_SERVICE alone, no new privileges, a seccomp filter.
func checkSandboxedProcess(t *testing.T, inside func(time.Duration, ...string) (string, error), pid string) {
	t.Helper()
	status, err := inside(10*time.Second, "cat", "/proc/"+pid+"/status")
	if err != nil {
		t.Fatalf("status of pid %s: %v\n%s", pid, err, status)
	}
	uid, _ := inside(10*time.Second, "id", "-u", "dnsward")
	want := map[string]string{
		"Uid":        strings.TrimSpace(uid),
		"CapEff":     "0000000000000400",
		"CapBnd":     "0000000000000400",
		"NoNewPrivs": "1",
		"Seccomp":    "2",
	}
	for _, line := range strings.Split(status, "\n") {
		k, v, _ := strings.Cut(line, ":")
		if w, ok := want[k]; ok {
			if got := strings.Fields(v); len(got) == 0 || got[0] != w {
				t.Errorf("%s: %q, want %s", k, v, w)
			}
			delete(want, k)
		}
	}
	if len(want) > 0 {
		t.Errorf("status lacks %v:\n%s", want, status)
	}
}

// waitFor polls cond until it holds or the time is up.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s\n%s", what, limit, detail)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
