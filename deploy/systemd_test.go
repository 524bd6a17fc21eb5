package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestSystemdUnit runs systemd-analyze verify on deploy/systemd/dnsward.service
// (ExecStart pointed at a freshly built binary, since /usr/bin/dnsward is
// only there once the .deb is installed; TestDebPackage verifies the
// installed unit as it is), checks the directives the deployment relies on,
// and that the exposure score systemd-analyze security gives is "OK" and is
// the one docs/deploy.md states.
func TestSystemdUnit(t *testing.T) {
	requireTools(t, "systemd-analyze")
	root := repoRoot(t)
	unitPath := filepath.Join(root, "deploy", "systemd", "dnsward.service")
	unit, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Type=notify", "ExecStart=/usr/bin/dnsward serve -config /etc/dnsward/dnsward.yaml",
		"ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure", "User=dnsward",
		"AmbientCapabilities=CAP_NET_BIND_SERVICE", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
		"ProtectSystem=strict", "StateDirectory=dnsward", "NoNewPrivileges=yes",
	} {
		if !strings.Contains(string(unit), "\n"+want+"\n") {
			t.Errorf("unit lacks %s", want)
		}
	}

	dir := t.TempDir()
	bin := filepath.Join(dir, "dnsward")
	buildGo(t, "./cmd/dnsward", bin)
	copyPath := filepath.Join(dir, "dnsward.service")
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(string(unit), "/usr/bin/dnsward", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := tryCmd(time.Minute, dir, nil, "systemd-analyze", "verify", copyPath); err != nil || out != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}

	out, err := tryCmd(time.Minute, "", nil, "systemd-analyze", "security", "--offline=yes", unitPath)
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for dnsward\.service: (\d+\.\d+) (\w+)`).FindStringSubmatch(out)
	if m == nil || m[2] != "OK" {
		t.Fatalf("exposure not OK:\n%s", out)
	}
	docs, err := os.ReadFile(filepath.Join(root, "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	if stated := "exposure level " + m[1] + " OK"; !strings.Contains(string(docs), stated) {
		t.Errorf("docs/deploy.md should state %q, the score systemd-analyze security gives", stated)
	}
	t.Logf("systemd-analyze security: %s %s", m[1], m[2])
}
