package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"gopkg.in/yaml.v3"
)

const debVersion = "0.0.0~debtest"

// TestDebPackage builds the .deb with deploy/deb.sh (nfpm), lints it,
// installs it with dpkg, checks the installed config and unit, starts the
// installed binary by hand as the dnsward user (no systemd here) and
// queries it, then purges the package and looks for what is left.
func TestDebPackage(t *testing.T) {
	skipShort(t)
	requireTools(t, "dpkg", "dpkg-query", "adduser")
	requireRoot(t, "dpkg -i installs into the system")
	if out, _ := tryCmd(time.Minute, "", nil, "dpkg-query", "-W", "-f", "${Status}", "dnsward"); strings.Contains(out, "installed") {
		t.Skip("a dnsward package is installed on this machine; the test does not touch it")
	}
	_, userErr := user.Lookup("dnsward")
	userExisted := userErr == nil
	deb := buildDeb(t)

	t.Run("lintian", func(t *testing.T) { lintDeb(t, deb) })

	t.Cleanup(func() {
		_, _ = tryCmd(2*time.Minute, "", nil, "dpkg", "--purge", "dnsward")
		if !userExisted {
			_, _ = tryCmd(time.Minute, "", nil, "deluser", "--system", "dnsward")
		}
	})
	runCmd(t, 2*time.Minute, "", "dpkg", "-i", deb)
	checkInstalled(t)
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		if out, err := tryCmd(time.Minute, "", nil, "systemd-analyze", "verify", "/lib/systemd/system/dnsward.service"); err != nil || out != "" {
			t.Errorf("systemd-analyze verify on the installed unit: %v\n%s", err, out)
		}
	}
	if out := runCmd(t, time.Minute, "", "/usr/bin/dnsward", "check", "-config", "/etc/dnsward/dnsward.yaml"); !strings.Contains(out, "/etc/dnsward/dnsward.yaml: OK") {
		t.Fatalf("check on the installed conffile:\n%s", out)
	}
	runInstalled(t)

	runCmd(t, 2*time.Minute, "", "dpkg", "--purge", "dnsward")
	checkPurged(t)
}

// buildDeb runs deploy/deb.sh and returns the package's path.
func buildDeb(t *testing.T) string {
	t.Helper()
	out := t.TempDir()
	runCmd(t, 10*time.Minute, repoRoot(t), "deploy/deb.sh", out, debVersion)
	return filepath.Join(out, fmt.Sprintf("dnsward_%s_%s.deb", debVersion, goEnv(t, "GOARCH")))
}

func goEnv(t *testing.T, key string) string {
	t.Helper()
	return strings.TrimSpace(runCmd(t, time.Minute, "", "go", "env", key))
}

// lintDeb runs lintian: errors fail the test; warnings are listed in
// docs/deploy.md and logged here.
func lintDeb(t *testing.T, deb string) {
	requireTools(t, "lintian")
	out, err := tryCmd(5*time.Minute, "", nil, "lintian", "--fail-on", "error", deb)
	if err != nil || strings.Contains(out, "\nE: ") || strings.HasPrefix(out, "E: ") {
		t.Fatalf("lintian: %v\n%s", err, out)
	}
	t.Logf("lintian:\n%s", out)
}

// checkInstalled looks at what dpkg -i and postinst left.
func checkInstalled(t *testing.T) {
	t.Helper()
	if conffiles := runCmd(t, time.Minute, "", "dpkg-query", "-W", "-f", "${Conffiles}", "dnsward"); !strings.Contains(conffiles, "/etc/dnsward/dnsward.yaml") {
		t.Errorf("conffiles: %q", conffiles)
	}
	u, err := user.Lookup("dnsward")
	if err != nil {
		t.Fatalf("postinst created no dnsward user: %v", err)
	}
	fi, err := os.Stat("/var/lib/dnsward")
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if strconv.Itoa(int(st.Uid)) != u.Uid || fi.Mode().Perm() != 0o750 {
		t.Errorf("/var/lib/dnsward: uid %d mode %v, want %s and 0750", st.Uid, fi.Mode().Perm(), u.Uid)
	}
}

// runInstalled starts /usr/bin/dnsward as the dnsward user on the
// installed conffile with only its addresses changed: free loopback ports
// and a loopback upstream. State and audit log go where the package puts
// them; /var/log/dnsward is made as systemd's LogsDirectory= would.
func runInstalled(t *testing.T) {
	t.Helper()
	u, err := user.Lookup("dnsward")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.MkdirAll("/var/log/dnsward", 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown("/var/log/dnsward", uid, gid); err != nil {
		t.Fatal(err)
	}
	upstream := startStubUpstream(t)
	dnsPort, adminPort := freeLoopbackPort(t), freeLoopbackPort(t)
	cfg := installedConfigOnLoopback(t, dnsPort, adminPort, upstream)

	cmd := exec.Command("/usr/bin/dnsward", "serve", "-config", cfg)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("config:\n%s\nserver log:\n%s", readFile(cfg), logs)
		}
	})

	addr := fmt.Sprintf("127.0.0.1:%d", dnsPort)
	expectForwarded(t, waitAnswer(t, "udp", addr, "example.org", 20*time.Second), "example.org")
	expectBlocked(t, waitAnswer(t, "tcp", addr, "www.tiktok.com", 5*time.Second), "www.tiktok.com")
	if out, err := tryCmd(time.Minute, "", nil, "/usr/bin/dnsward", "health", "-admin", fmt.Sprintf("127.0.0.1:%d", adminPort),
		"-dns", addr, "-probe", "example.org"); err != nil {
		t.Fatalf("dnsward health: %v\n%s", err, out)
	}

	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no exit 20 s after SIGTERM\n%s", logs)
	}
	audit, err := os.ReadFile("/var/log/dnsward/audit.log")
	if err != nil || !strings.Contains(string(audit), "www.tiktok.com") {
		t.Fatalf("audit log of the example config: %v\n%s\nserver log:\n%s", err, audit, logs)
	}
}

// installedConfigOnLoopback writes the installed conffile, addresses
// changed, to a directory the dnsward user can read.
func installedConfigOnLoopback(t *testing.T, dnsPort, adminPort int, upstream string) string {
	t.Helper()
	data, err := os.ReadFile("/etc/dnsward/dnsward.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["listen"] = []string{fmt.Sprintf("127.0.0.1:%d", dnsPort)}
	cfg["admin"].(map[string]any)["listen"] = fmt.Sprintf("127.0.0.1:%d", adminPort)
	cfg["upstream"].(map[string]any)["servers"] = []string{"udp://" + upstream}
	if data, err = yaml.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: its parent is private to root.
	dir, err := os.MkdirTemp("", "dnsward-debtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "dnsward.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startStubUpstream answers A queries with 192.0.2.1 on a loopback port.
func startStubUpstream(t *testing.T) string {
	t.Helper()
	port := freeLoopbackPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg).SetReply(req)
		if q := req.Question; len(q) == 1 && q[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR(q[0].Name + " 300 IN A 192.0.2.1")
			m.Answer = append(m.Answer, rr)
		}
		_ = w.WriteMsg(m)
	})
	for _, network := range []string{"udp", "tcp"} {
		srv := &dns.Server{Addr: addr, Net: network, Handler: h}
		started := make(chan error, 1)
		srv.NotifyStartedFunc = func() { started <- nil }
		go func() { started <- srv.ListenAndServe() }()
		if err := <-started; err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return addr
}

// checkPurged lists what dpkg --purge must have removed. The dnsward
// system user stays (Debian keeps system users; see postrm).
func checkPurged(t *testing.T) {
	t.Helper()
	if out, _ := tryCmd(time.Minute, "", nil, "dpkg-query", "-W", "-f", "${Status}", "dnsward"); strings.Contains(out, "installed") || strings.Contains(out, "config-files") {
		t.Errorf("after purge dpkg still knows dnsward: %q", out)
	}
	for _, path := range []string{
		"/usr/bin/dnsward", "/etc/dnsward", "/lib/systemd/system/dnsward.service",
		"/var/lib/dnsward", "/var/log/dnsward", "/usr/share/doc/dnsward", "/usr/share/lintian/overrides/dnsward",
		"/etc/systemd/system/multi-user.target.wants/dnsward.service", "/etc/systemd/system/dnsward.service",
		"/var/lib/systemd/deb-systemd-helper-enabled/dnsward.service.dsh-also",
		"/var/lib/systemd/deb-systemd-helper-masked/dnsward.service",
	} {
		if _, err := os.Lstat(path); err == nil {
			t.Errorf("left after purge: %s", path)
		}
	}
	if _, err := user.Lookup("dnsward"); err != nil {
		t.Errorf("the dnsward user is gone, but docs/deploy.md says it stays: %v", err)
	}
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
