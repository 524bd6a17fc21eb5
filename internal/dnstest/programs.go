package dnstest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The TSIG key the zone-transfer tests share: knotd, named and dnsward
// are configured with it. TSIGKeyName is the name in dnsward's and the
// programs' configs; TSIGKeyFQDN is the owner name miekg/dns wants.
const (
	TSIGKeyName   = "transfer-key"
	TSIGKeyFQDN   = TSIGKeyName + "."
	TSIGSecret    = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="
	TSIGAlgorithm = "hmac-sha256"
)

// FindProgram returns the path of name, looking in PATH and the sbin
// directories a non-root PATH may miss, and skips the test when it is not
// installed (pkg is the Debian package that has it).
func FindProgram(t testing.TB, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skipf("%s is not installed (Debian package %s; .ci/run installs it)", name, pkg)
	return ""
}

// FreePort finds a port free for both UDP and TCP on 127.0.0.1, for a
// program (or a dnsward config) that must be told its address before it
// starts. Another process may take it in between; on loopback in a test
// that is rare enough.
func FreePort(t testing.TB) int {
	t.Helper()
	pc, l := ListenUDPAndTCP(t)
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	l.Close()
	return port
}

// FreeAddr is FreePort as "127.0.0.1:port".
func FreeAddr(t testing.TB) string { return fmt.Sprintf("127.0.0.1:%d", FreePort(t)) }

// LogBuffer is a log written by a child process and read by the test.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startProgram runs cmd until the test ends, its output in log, shown
// when the test failed.
func startProgram(t testing.TB, cmd *exec.Cmd, log *LogBuffer) {
	t.Helper()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	name := filepath.Base(cmd.Path)
	t.Cleanup(func() {
		stopProgram(cmd)
		if t.Failed() {
			t.Logf("%s log:\n%s", name, log.String())
		}
	})
}

func stopProgram(cmd *exec.Cmd) {
	if cmd.Process == nil || cmd.ProcessState != nil {
		return
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
