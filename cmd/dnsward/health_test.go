package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnstest"
)

// runHealth runs `dnsward health ARGS` in-process.
func runHealth(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(append([]string{"health"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestHealthPassesOnARunningResolver asks a real dnsward for /healthz and
// resolves a blocked name through its DNS listener, as the container's
// HEALTHCHECK does: the blocked answer needs no upstream.
func TestHealthPassesOnARunningResolver(t *testing.T) {
	up := startZoneServer(t, nil)
	dir := t.TempDir()
	a := startApp(t, writeConfig(t, dir, up.addr, `lists:
  tiktok: { sources: ["builtin:tiktok"] }
groups:
  - { name: everyone, clients: ["127.0.0.0/8"], block: [tiktok] }
`))
	adminAddr := a.admin.Addr().String()

	code, out, errOut := runHealth("-admin", adminAddr)
	if code != 0 || !strings.Contains(out, "/healthz ok") {
		t.Fatalf("admin only: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = runHealth("-admin", adminAddr, "-dns", a.dnsAddr(), "-probe", "www.tiktok.com")
	if code != 0 || !strings.Contains(out, "www.tiktok.com NXDOMAIN") {
		t.Fatalf("with probe: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = runHealth("-admin", "", "-dns", a.dnsAddr(), "-probe", "example.org")
	if code != 0 || !strings.Contains(out, "example.org NOERROR") {
		t.Fatalf("probe only, forwarded name: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestHealthFailsWithOneLine covers each way a check fails: exit 1 and a
// single line on stderr that says what was asked and what went wrong.
func TestHealthFailsWithOneLine(t *testing.T) {
	closedPort := closedLoopbackAddr(t)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(failing.Close)
	servfail, _ := dnstest.Serve(t, rcodeHandler(dns.RcodeServerFailure))
	refused, _ := dnstest.Serve(t, rcodeHandler(dns.RcodeRefused))
	silent := silentUDP(t)

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"admin down", []string{"-admin", closedPort}, "connection refused"},
		{"admin says 503", []string{"-admin", strings.TrimPrefix(failing.URL, "http://")}, "HTTP 503 shutting down"},
		{"servfail", []string{"-admin", "", "-dns", servfail, "-probe", "example.org"}, "SERVFAIL"},
		{"refused", []string{"-admin", "", "-dns", refused, "-probe", "example.org"}, "REFUSED (is the probe's source address in access.allow?)"},
		{"no answer", []string{"-admin", "", "-dns", silent, "-probe", "example.org", "-timeout", "300ms"}, "no answer (timeout)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			code, out, errOut := runHealth(tc.args...)
			if code != 1 || out != "" {
				t.Fatalf("exit %d, stdout %q; want exit 1 and no stdout", code, out)
			}
			if !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
				t.Fatalf("stderr %q; want one line containing %q", errOut, tc.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %s", d)
			}
		})
	}
}

func TestHealthRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-admin", ""},               // nothing to check
		{"-probe", "bad..name"},      // not a domain name
		{"-timeout", "0s"},           // no time allowed
		{"extra"},                    // stray argument
		{"-no-such-flag"},            // unknown flag
		{"-timeout", "soon"},         // not a duration
		{"-admin", "", "-probe", ""}, // still nothing to check
	} {
		if code, _, errOut := runHealth(args...); code != 2 || errOut == "" {
			t.Errorf("health %v: exit %d, stderr %q; want exit 2 with a message", args, code, errOut)
		}
	}
}

func rcodeHandler(rcode int) dns.HandlerFunc {
	return func(w dns.ResponseWriter, req *dns.Msg) {
		_ = w.WriteMsg(new(dns.Msg).SetRcode(req, rcode))
	}
}

// closedLoopbackAddr is a loopback TCP address nothing listens on.
func closedLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// silentUDP is a loopback UDP socket that reads queries and never answers.
func silentUDP(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}
