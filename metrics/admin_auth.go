package metrics

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// minTokenLen keeps guessable tokens out: 16 characters of `openssl rand
// -hex 32` output is 64 bits, far beyond what an HTTP brute force reaches.
const minTokenLen = 16

// refusalLogEvery bounds how often refused requests are logged, so a
// scanner hammering the admin port cannot flood the log.
const refusalLogEvery = 10 * time.Second

// validateAuth checks the token settings against the listen host: an admin
// API reachable from the network must not be open to it.
func (c AdminConfig) validateAuth(host string) error {
	if c.Token != "" && c.TokenFile != "" {
		return configErr("admin.token_file", c.TokenFile, "admin.token is set too; give the token in one place")
	}
	tok, err := c.loadToken()
	if err != nil {
		return err
	}
	if tok == "" && c.ProtectMetrics {
		return configErr("admin.protect_metrics", "", "needs admin.token or admin.token_file")
	}
	if tok == "" && !isLoopbackHost(host) {
		return configErr("admin.listen", c.Listen, "is reachable from the network, and without admin.token "+
			"anyone there could reload the config, read explain and list data, and profile the process; "+
			"set admin.token (or admin.token_file), or listen on 127.0.0.1")
	}
	return nil
}

// loadToken returns the configured token ("" when none), reading TokenFile
// if that is where it lives. The token itself never appears in errors.
func (c AdminConfig) loadToken() (string, error) {
	key, tok := "admin.token", c.Token
	if c.TokenFile != "" {
		data, err := readSmallFile(c.TokenFile, maxTokenFile)
		if err != nil {
			return "", configErr("admin.token_file", c.TokenFile, "cannot be read: "+pathlessError(err))
		}
		key, tok = "admin.token_file", strings.TrimSpace(string(data))
		if tok == "" {
			return "", configErr("admin.token_file", c.TokenFile, "is empty")
		}
	}
	if tok == "" {
		return "", nil
	}
	if len(tok) < minTokenLen {
		return "", configErr(key, "", fmt.Sprintf("the token has %d characters; use at least %d, e.g. the output of `openssl rand -hex 32`", len(tok), minTokenLen))
	}
	for _, r := range tok {
		if r <= ' ' || r > '~' {
			return "", configErr(key, "", "the token may hold only visible ASCII characters (no spaces), as it travels in an HTTP header")
		}
	}
	return tok, nil
}

// maxTokenFile bounds what is read of admin.token_file, so a path such as
// /dev/zero cannot hang start-up.
const maxTokenFile = 4 << 10

// readSmallFile reads at most limit bytes of path; a longer file is an error.
func readSmallFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("longer than %d bytes; it should hold only the token", limit)
	}
	return data, nil
}

// pathlessError drops the path os errors repeat, as the ConfigError names it.
func pathlessError(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

// isLoopbackHost reports whether a listen host binds loopback only. ""
// (every interface) and unspecified addresses do not.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// bearerAuth requires "Authorization: Bearer TOKEN" on every path except
// the open ones. It is an allowlist so that an endpoint added later is
// protected without anyone remembering to say so.
type bearerAuth struct {
	sum     [sha256.Size]byte // of the token: equal lengths for the comparison
	open    map[string]bool
	next    http.Handler
	log     *slog.Logger
	lastLog atomic.Int64 // unix nanoseconds of the last refusal logged
	refused atomic.Int64 // refusals since then
}

func newBearerAuth(token string, protectMetrics bool, next http.Handler, log *slog.Logger) *bearerAuth {
	open := map[string]bool{"/healthz": true, "/readyz": true, "/metrics": !protectMetrics}
	return &bearerAuth{sum: sha256.Sum256([]byte(token)), open: open, next: next, log: log}
}

func (b *bearerAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if b.open[r.URL.Path] {
		b.next.ServeHTTP(w, r)
		return
	}
	given, ok := bearerToken(r.Header.Get("Authorization"))
	if ok {
		sum := sha256.Sum256([]byte(given))
		if subtle.ConstantTimeCompare(sum[:], b.sum[:]) == 1 {
			b.next.ServeHTTP(w, r)
			return
		}
	}
	b.logRefusal(r, ok)
	challenge := `Bearer realm="dnsward admin"`
	if ok {
		challenge += `, error="invalid_token"` // RFC 6750 §3.1
	}
	w.Header().Set("WWW-Authenticate", challenge)
	writeText(w, http.StatusUnauthorized, "unauthorized: send the admin token as \"Authorization: Bearer TOKEN\" (admin.token)")
}

// bearerToken extracts the credentials of a Bearer Authorization header;
// the scheme is case-insensitive (RFC 9110 §11.1).
func bearerToken(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func (b *bearerAuth) logRefusal(r *http.Request, hadToken bool) {
	n := b.refused.Add(1)
	now := time.Now().UnixNano()
	last := b.lastLog.Load()
	if now-last < int64(refusalLogEvery) || !b.lastLog.CompareAndSwap(last, now) {
		return
	}
	b.refused.Add(-n)
	reason := "no bearer token"
	if hadToken {
		reason = "wrong token"
	}
	b.log.Warn("admin request refused", "reason", reason, "remote", r.RemoteAddr,
		"method", r.Method, "path", r.URL.Path, "refused_since_last_log", n)
}
