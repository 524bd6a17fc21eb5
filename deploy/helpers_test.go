// Package deploy holds the deployment tests: each drives the real tool a
// network team would use (podman, systemd-analyze, dpkg and lintian,
// promtool, kubeconform) on the files under docker/ and deploy/, and skips
// with the reason when that tool is not installed (.ci/run installs them).
package deploy

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// repoRoot is the repository's top directory (tests run in deploy/).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// requireTools skips the test, naming what is missing, unless every tool
// is on PATH.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		t.Skipf("needs %s on PATH (Debian: apt-get install podman runc systemd lintian prometheus libcap2-bin; .ci/run installs them)", strings.Join(missing, ", "))
	}
}

func requireRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root: %s (CI runs as root)", why)
	}
}

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("deployment test: builds and runs the packaged binary")
	}
}

// runCmd runs a command with a time limit and returns its combined output;
// a non-zero exit fails the test with that output.
func runCmd(t *testing.T, limit time.Duration, dir string, name string, args ...string) string {
	t.Helper()
	out, err := tryCmd(limit, dir, nil, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// tryCmd is runCmd that returns the error instead of failing.
func tryCmd(limit time.Duration, dir string, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("still running after %s", limit)
	}
	return out.String(), err
}

// buildStatic builds dnsward the way the image and the package ship it.
func buildStatic(t *testing.T, out, version string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -X main.version="+version, "-o", out, "./cmd/dnsward")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
}

// buildGo builds one of this module's commands as a static binary.
func buildGo(t *testing.T, pkg, out string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

// freeLoopbackPort is a port free on 127.0.0.1 for both UDP and TCP.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	for range 10 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		pc.Close()
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no loopback port free for both UDP and TCP")
	return 0
}

// waitAnswer queries name at addr over network until a reply arrives or
// the time is up; the packaged server may still be starting.
func waitAnswer(t *testing.T, network, addr, name string, limit time.Duration) *dns.Msg {
	t.Helper()
	m := new(dns.Msg).SetQuestion(dns.Fqdn(name), dns.TypeA)
	m.SetEdns0(1232, false)
	c := &dns.Client{Net: network, Timeout: time.Second}
	deadline := time.Now().Add(limit)
	var lastErr error
	for time.Now().Before(deadline) {
		resp, _, err := c.Exchange(m, addr)
		// SERVFAIL while the upstream beside it is still starting is
		// expected; ask again until it has had time to come up.
		if err == nil && (resp.Rcode != dns.RcodeServerFailure || !time.Now().Add(time.Second).Before(deadline)) {
			return resp
		}
		if err == nil {
			err = fmt.Errorf("SERVFAIL")
		}
		lastErr = err
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no answer for %s from %s/%s within %s: %v", name, addr, network, limit, lastErr)
	return nil
}

// expectForwarded checks the stub upstream's answer came through.
func expectForwarded(t *testing.T, resp *dns.Msg, what string) {
	t.Helper()
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) == 0 || !strings.Contains(resp.Answer[0].String(), "192.0.2.1") {
		t.Fatalf("%s: want the upstream's 192.0.2.1, got\n%s", what, resp)
	}
}

// expectBlocked checks for the policy's NXDOMAIN with the Blocked EDE.
func expectBlocked(t *testing.T, resp *dns.Msg, what string) {
	t.Helper()
	if resp.Rcode != dns.RcodeNameError || !strings.Contains(resp.String(), "Blocked") {
		t.Fatalf("%s: want NXDOMAIN with EDE Blocked, got\n%s", what, resp)
	}
}

// lockedBuffer collects a child's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
