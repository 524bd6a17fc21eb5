package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const testToken = "3f1c9a7e5b2d4086a1e7c3b9d5f20a64"

// startTokenAdmin serves an admin listener on loopback with cfg's auth settings.
func startTokenAdmin(t *testing.T, cfg AdminConfig, log *slog.Logger) string {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	a := NewAdmin(cfg, prometheus.NewRegistry(), nil, log)
	a.Handle("POST /v1/reload", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("reloaded"))
	}))
	if err := a.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Shutdown(ctx)
	})
	return "http://" + a.Addr().String()
}

type authReply struct {
	code      int
	challenge string
}

// call sends one request with the given Authorization header ("" for none).
func call(t *testing.T, method, url, auth string) authReply {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return authReply{resp.StatusCode, resp.Header.Get("WWW-Authenticate")}
}

func TestAdminTokenGuardsAPIAndPprof(t *testing.T) {
	base := startTokenAdmin(t, AdminConfig{Token: testToken, Pprof: true}, nil)
	good := "Bearer " + testToken
	const challenge = `Bearer realm="dnsward admin"`
	for _, c := range []struct {
		method, path, auth string
		code               int
		challenge          string
	}{
		{"GET", "/healthz", "", 200, ""},
		{"GET", "/readyz", "", 200, ""},
		{"GET", "/metrics", "", 200, ""},
		{"GET", "/metrics", "Bearer wrong", 200, ""}, // open paths ignore the header
		{"POST", "/v1/reload", "", 401, challenge},
		{"POST", "/v1/reload", "Bearer wrong-token-of-some-length", 401, challenge + `, error="invalid_token"`},
		{"POST", "/v1/reload", "Bearer " + testToken[:len(testToken)-1], 401, challenge + `, error="invalid_token"`},
		{"POST", "/v1/reload", "Basic " + testToken, 401, challenge},
		{"POST", "/v1/reload", "Bearer", 401, challenge},
		{"POST", "/v1/reload", good, 200, ""},
		{"POST", "/v1/reload", "bearer " + testToken, 200, ""}, // scheme is case-insensitive
		{"GET", "/v1/stats/top", "", 401, challenge},
		{"GET", "/v1/stats/top", good, 503, ""}, // through to the handler: no counter set
		{"GET", "/debug/pprof/", "", 401, challenge},
		{"GET", "/debug/pprof/", good, 200, ""},
		{"GET", "/debug/pprof/cmdline", "", 401, challenge},
		// Unknown paths and path tricks need the token too: the guard is an allowlist.
		{"GET", "/nope", "", 401, challenge},
		{"GET", "/nope", good, 404, ""},
		{"GET", "/metrics/../debug/pprof/", "", 401, challenge},
		{"GET", "//debug/pprof/", "", 401, challenge},
		{"GET", "/v1%2fstats/top", "", 401, challenge},
	} {
		got := call(t, c.method, base+c.path, c.auth)
		if got.code != c.code || got.challenge != c.challenge {
			t.Errorf("%s %s (Authorization %q): %d %q, want %d %q", c.method, c.path, c.auth, got.code, got.challenge, c.code, c.challenge)
		}
	}
}

func TestAdminProtectMetrics(t *testing.T) {
	base := startTokenAdmin(t, AdminConfig{Token: testToken, ProtectMetrics: true}, nil)
	if got := call(t, "GET", base+"/metrics", ""); got.code != 401 {
		t.Errorf("/metrics without token and protect_metrics: %d", got.code)
	}
	if got := call(t, "GET", base+"/metrics", "Bearer "+testToken); got.code != 200 {
		t.Errorf("/metrics with token: %d", got.code)
	}
	if got := call(t, "GET", base+"/healthz", ""); got.code != 200 {
		t.Errorf("/healthz stays open for probes: %d", got.code)
	}
}

func TestAdminWithoutTokenStaysOpenOnLoopback(t *testing.T) {
	base := startTokenAdmin(t, AdminConfig{}, nil)
	if got := call(t, "POST", base+"/v1/reload", ""); got.code != 200 {
		t.Errorf("loopback listener without a token: /v1/reload %d, want 200 as before", got.code)
	}
}

func TestAdminTokenFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	if err := os.WriteFile(path, []byte("  "+testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := AdminConfig{Listen: "0.0.0.0:9153", TokenFile: path}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("token_file on a network address: %v", err)
	}
	base := startTokenAdmin(t, AdminConfig{TokenFile: path}, nil)
	if got := call(t, "POST", base+"/v1/reload", "Bearer "+testToken); got.code != 200 {
		t.Errorf("token from the file (whitespace trimmed): %d", got.code)
	}
	if got := call(t, "POST", base+"/v1/reload", ""); got.code != 401 {
		t.Errorf("no token: %d", got.code)
	}
}

func TestAdminAuthConfigErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("hunter2\n"), 0o600)
	for _, c := range []struct {
		name string
		cfg  AdminConfig
		key  string
		says string
	}{
		{"every interface", AdminConfig{Listen: ":9153"}, "admin.listen", "set admin.token"},
		{"IPv4 wildcard", AdminConfig{Listen: "0.0.0.0:9153"}, "admin.listen", "reachable from the network"},
		{"IPv6 wildcard", AdminConfig{Listen: "[::]:9153"}, "admin.listen", "listen on 127.0.0.1"},
		{"LAN address", AdminConfig{Listen: "192.0.2.10:9153"}, "admin.listen", "admin.token_file"},
		{"both", AdminConfig{Listen: "127.0.0.1:0", Token: testToken, TokenFile: empty}, "admin.token_file", "one place"},
		{"short token", AdminConfig{Listen: "0.0.0.0:9153", Token: "hunter2"}, "admin.token", "at least 16"},
		{"spaces", AdminConfig{Listen: "127.0.0.1:0", Token: "a token with spaces inside"}, "admin.token", "visible ASCII"},
		{"missing file", AdminConfig{Listen: "127.0.0.1:0", TokenFile: filepath.Join(dir, "nope")}, "admin.token_file", "no such file"},
		{"empty file", AdminConfig{Listen: "127.0.0.1:0", TokenFile: empty}, "admin.token_file", "is empty"},
		{"short file", AdminConfig{Listen: "127.0.0.1:0", TokenFile: short}, "admin.token_file", "at least 16"},
		{"endless file", AdminConfig{Listen: "127.0.0.1:0", TokenFile: "/dev/zero"}, "admin.token_file", "longer than 4096 bytes"},
		{"protect without token", AdminConfig{Listen: "127.0.0.1:0", ProtectMetrics: true}, "admin.protect_metrics", "needs admin.token"},
	} {
		err := c.cfg.Validate()
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Key() != c.key || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want key %s saying %q", c.name, err, c.key, c.says)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "spaces inside") {
			t.Errorf("%s: the error shows the token: %v", c.name, err)
		}
	}
	for _, ok := range []AdminConfig{
		{Listen: "127.0.0.1:9153"}, {Listen: "127.0.0.2:0"}, {Listen: "[::1]:9153"}, {Listen: "localhost:9153"},
		{Listen: "0.0.0.0:9153", Token: testToken}, {Listen: "[::]:9153", Token: testToken, ProtectMetrics: true},
		{Listen: "", Token: "short"}, // admin off: nothing to protect
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
}

// TestAdminStartRefusesOpenNetworkListener: a config that skipped Validate
// still cannot serve the API to the network without a token.
func TestAdminStartRefusesOpenNetworkListener(t *testing.T) {
	a := NewAdmin(AdminConfig{Listen: "0.0.0.0:0"}, prometheus.NewRegistry(), nil, nil)
	err := a.Start()
	if err == nil || !strings.Contains(err.Error(), "admin.token") || a.Addr() != nil {
		t.Fatalf("Start on 0.0.0.0 without a token: %v (addr %v), want a refusal and nothing bound", err, a.Addr())
	}
}

func TestAdminRefusalsLoggedBounded(t *testing.T) {
	buf := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(buf, nil))
	base := startTokenAdmin(t, AdminConfig{Token: testToken}, log)
	for range 20 {
		call(t, "POST", base+"/v1/reload", "Bearer wrong-token-of-some-length")
	}
	out := buf.String()
	if n := strings.Count(out, "admin request refused"); n != 1 {
		t.Errorf("20 refusals in a burst logged %d times, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "reason=\"wrong token\"") || strings.Contains(out, "wrong-token-of-some-length") {
		t.Errorf("log line should give the reason and never the token:\n%s", out)
	}
}
