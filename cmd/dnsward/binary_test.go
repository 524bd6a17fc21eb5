package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dnsward/dnsward/internal/dnstest"
)

// TestBinaryAsAUserRunsIt builds dnsward, starts it on a config file the
// way an operator would, queries it with dig (miekg/dns when dig is not
// installed), checks the admin endpoints, then stops it with SIGTERM and
// expects a clean exit.
func TestBinaryAsAUserRunsIt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "dnsward")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	up := startZoneServer(t, nil)
	dir := t.TempDir()
	dnsPort, adminPort := freePort(t), freePort(t)
	cfg := fmt.Sprintf(`listen: ["127.0.0.1:%d"]
upstream: { servers: ["udp://%s"], strategy: failover, timeout: 1s }
admin: { listen: "127.0.0.1:%d" }
lists:
  tiktok: { sources: ["builtin:tiktok"] }
groups:
  - { name: government-devices, clients: ["127.0.0.0/8"], block: [tiktok] }
state_dir: %q
log: { level: info, format: json }
`, dnsPort, up.addr, adminPort, filepath.Join(dir, "state"))
	path := filepath.Join(dir, "dnsward.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	if out, err := exec.Command(bin, "check", "-config", path).CombinedOutput(); err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("dnsward check: %v\n%s", err, out)
	}
	logs := &dnstest.LogBuffer{}
	cmd := exec.Command(bin, "serve", "-config", path)
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	admin := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	waitHTTP(t, admin+"/healthz", exited, logs)
	server := fmt.Sprintf("127.0.0.1:%d", dnsPort)
	if got := lookup(t, server, "example.org"); !strings.Contains(got, "192.0.2.1") {
		t.Fatalf("example.org: %s", got)
	}
	if got := lookup(t, server, "www.tiktok.com"); !strings.Contains(got, "NXDOMAIN") {
		t.Fatalf("www.tiktok.com not blocked: %s", got)
	}
	if resp, err := http.Get(admin + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/readyz after an answer: %v %v", resp, err)
	}

	// SIGHUP applies an edited config: the group no longer blocks tiktok.
	edited := strings.Replace(cfg, "block: [tiktok]", "block: []", 1)
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(lookup(t, server, "www.tiktok.com"), "192.0.2.1") {
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP did not apply the edited config\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no exit 15 s after SIGTERM\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "dnsward started") || !strings.Contains(logs.String(), "shutting down") {
		t.Fatalf("logs lack start/stop lines:\n%s", logs.String())
	}
}

// lookup asks with dig when it is installed, as an operator would.
func lookup(t *testing.T, server, name string) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(server)
	if dig, err := exec.LookPath("dig"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, dig, "@"+host, "-p", port, name, "+tries=1", "+time=3").CombinedOutput()
		if err != nil {
			t.Fatalf("dig %s: %v\n%s", name, err, out)
		}
		return string(out)
	}
	resp, err := exchange("127.0.0.1", server, name+".", 1)
	if err != nil {
		t.Fatal(err)
	}
	return resp.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	pc, l := dnstest.ListenUDPAndTCP(t)
	port := l.Addr().(*net.TCPAddr).Port
	pc.Close()
	l.Close()
	return port
}

func waitHTTP(t *testing.T, url string, exited <-chan error, logs *dnstest.LogBuffer) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Fatalf("dnsward exited early: %v\n%s", err, logs.String())
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not up within 15 s\n%s", url, logs.String())
}
