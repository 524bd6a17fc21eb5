package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testResolvConf writes a resolv.conf naming a loopback-free upstream, so
// "system" expands without touching the machine's real resolver.
func testResolvConf(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(p, []byte("nameserver 127.0.0.53\nnameserver 192.0.2.53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestShippedConfigsAreValid(t *testing.T) {
	for _, path := range []string{"../../configs/dnsward.yaml", "../../configs/default.yaml"} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := parseConfig(data, path, []string{testResolvConf(t)})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(cfg.Upstream.Servers) == 0 || len(cfg.Policy.Groups) == 0 {
			t.Fatalf("%s: parsed to an empty config: %+v", path, cfg)
		}
	}
}

// TestDockerConfigIsValid parses docker/compose-dnsward.yaml with its
// token file (a compose secret at run time) pointed at a temporary one;
// the image's own docker/dnsward.yaml is checked inside the image by the
// deploy tests.
func TestDockerConfigIsValid(t *testing.T) {
	data, err := os.ReadFile("../../docker/compose-dnsward.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const secret = "/run/secrets/dnsward_admin_token"
	if !strings.Contains(string(data), secret) {
		t.Fatalf("docker/compose-dnsward.yaml no longer reads %s; update this test", secret)
	}
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.ReplaceAll(string(data), secret, tok))
	if _, err := parseConfig(data, "docker/compose-dnsward.yaml", []string{testResolvConf(t)}); err != nil {
		t.Fatal(err)
	}
}

func TestEmbeddedDefaultUsesResolvConfWithoutLoopback(t *testing.T) {
	cfg, err := loadConfigFile("", []string{testResolvConf(t)})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Upstream.Servers, ","); got != "192.0.2.53" {
		t.Fatalf("upstreams = %q, want only the non-loopback resolv.conf entry", got)
	}
	if cfg.Resolver.Listen[0] != "127.0.0.1:5353" {
		t.Fatalf("default listen = %v", cfg.Resolver.Listen)
	}
}

func TestConfigErrorsNameFileLineAndKey(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown key", "listen: [\"127.0.0.1:53\"]\nupstream:\n  servers: [\"127.0.0.1:53\"]\n  retries: 3\n",
			`cfg.yaml: line 4: unknown key "retries"`},
		{"bad duration", "upstream:\n  servers: [\"127.0.0.1:53\"]\n  timeout: 2 seconds\n",
			`line 3: "2 seconds" is not a duration`},
		{"bare number duration", "upstream:\n  servers: [\"127.0.0.1:53\"]\ncache:\n  max_ttl: 300\n",
			`line 4:`},
		{"bad listen address", "listen:\n  - \"127.0.0.1:53\"\n  - \"localhost:53x\"\nupstream:\n  servers: [\"127.0.0.1:53\"]\n",
			`cfg.yaml:3: listen[1]:`},
		{"empty upstreams", "listen: [\"127.0.0.1:53\"]\nupstream:\n  servers: []\n",
			`cfg.yaml:3: upstream.servers`},
		{"bad upstream", "upstream:\n  servers:\n    - \"127.0.0.1:53\"\n    - \"ftp://1.2.3.4\"\n",
			`cfg.yaml:4: upstream.servers[1]`},
		{"bad answer mode", "upstream:\n  servers: [\"127.0.0.1:53\"]\nblocking:\n  answer: drop\n",
			`cfg.yaml:4: blocking.answer: "drop"`},
		{"bad group cidr", "upstream:\n  servers: [\"127.0.0.1:53\"]\ngroups:\n  - name: gov\n    clients: [\"10.0.0.0/33\"]\n",
			`cfg.yaml:5: groups[0].clients[0]`},
		{"unknown list in group", "upstream:\n  servers: [\"127.0.0.1:53\"]\ngroups:\n  - name: gov\n    clients: [\"10.0.0.0/8\"]\n    block: [nosuch]\n",
			`cfg.yaml:6: groups[0].block`},
		{"receive buffer too large", "upstream:\n  servers: [\"127.0.0.1:53\"]\nudp:\n  receive_buffer_mb: 1024\n",
			`cfg.yaml:4: udp.receive_buffer_mb: 1024 is outside 0..256`},
		{"negative receive buffer", "upstream:\n  servers: [\"127.0.0.1:53\"]\nudp:\n  receive_buffer_mb: -1\n",
			`cfg.yaml:4: udp.receive_buffer_mb: -1 is outside 0..256`},
		{"bad log level", "upstream:\n  servers: [\"127.0.0.1:53\"]\nlog:\n  level: loud\n",
			`cfg.yaml:4: log.level`},
		{"admin on the network without a token", "upstream:\n  servers: [\"127.0.0.1:53\"]\nadmin:\n  listen: \"0.0.0.0:9153\"\n",
			`cfg.yaml:4: admin.listen: invalid value "0.0.0.0:9153": is reachable from the network`},
		{"admin token too short", "upstream:\n  servers: [\"127.0.0.1:53\"]\nadmin:\n  listen: \"127.0.0.1:9153\"\n  token: hunter2\n",
			`cfg.yaml:5: admin.token: the token has 7 characters`},
		{"not yaml", "listen: [\n", `cfg.yaml: line`},
		{"control character", "upstream:\n  servers: [\"127.0.0.1:53\"]\nlog:\n  level: \"in\x01fo\"\n",
			`cfg.yaml: line 4: control characters are not allowed`},
		{"UTF-16 (Notepad's \"Unicode\")", "\xff\xfel\x00i\x00s\x00t\x00e\x00n\x00:\x00", `cfg.yaml: line 1: the file is UTF-16 text`},
		{"invalid UTF-8", "upstream:\n  servers: [\"127.0.0.1:53\"]\n# caf\xe9\n", `cfg.yaml: line 3: incomplete UTF-8`},
		{"unknown anchor", "upstream:\n  servers: *ups\n", `cfg.yaml: line 2: unknown anchor 'ups' referenced`},
		{"empty file", "", `cfg.yaml: the file is empty`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig([]byte(tc.yaml), "cfg.yaml", []string{testResolvConf(t)})
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.yaml)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// TestSystemUpstreamBehindSystemdResolved: when the first resolv.conf
// names only a loopback stub (systemd-resolved's 127.0.0.53), "system"
// takes the upstreams from the next file.
func TestSystemUpstreamBehindSystemdResolved(t *testing.T) {
	dir := t.TempDir()
	stub := filepath.Join(dir, "resolv.conf")
	real := filepath.Join(dir, "resolved.conf")
	os.WriteFile(stub, []byte("nameserver 127.0.0.53\noptions edns0 trust-ad\n"), 0o644)
	os.WriteFile(real, []byte("nameserver 192.0.2.10\nnameserver 2001:db8::10\n"), 0o644)
	cfg, err := parseConfig([]byte("upstream:\n  servers: [system]\n"), "cfg.yaml", []string{stub, real})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Upstream.Servers, ","); !strings.Contains(got, "192.0.2.10") || strings.Contains(got, "127.0.0.53") {
		t.Fatalf("upstreams = %q", got)
	}
	if _, err := parseConfig([]byte("upstream:\n  servers: [system]\n"), "cfg.yaml", []string{stub}); err == nil ||
		!strings.Contains(err.Error(), "upstream.servers[0]") {
		t.Fatalf("only a loopback stub: err = %v", err)
	}
}
