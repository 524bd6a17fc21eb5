package resolver

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCertPoll is how often CertStore.Run looks at the certificate files.
const DefaultCertPoll = 10 * time.Second

// CertStore serves the certificate of tls.cert_file/key_file and swaps in
// a new pair when the files change, without a restart. ACME clients
// replace the files every 60-90 days, by rename or by rewriting them in
// place, one file after the other: a pair that does not load (a key that
// does not match yet, a half-written PEM, an expired or wrong-name
// certificate) is logged once and the last good pair stays in service.
type CertStore struct {
	cfg TLSConfig
	log *slog.Logger
	cur atomic.Pointer[loadedCert]

	mu       sync.Mutex        // serialises Reload; guards the fields below
	lastSeen [sha256.Size]byte // digest of the files of the pair in service
	lastErr  string            // the last reload error, logged once
}

type loadedCert struct {
	cert       *tls.Certificate
	leaf       *x509.Certificate
	serverName string
}

// NewCertStore loads the pair once. Errors are *ConfigError values at
// tls.cert_file, tls.key_file or tls.server_name, so the caller can name
// the line of the config file.
func NewCertStore(cfg TLSConfig, log *slog.Logger) (*CertStore, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &CertStore{cfg: cfg, log: log}
	lc, digest, err := s.load()
	if err != nil {
		return nil, err
	}
	if left := time.Until(lc.leaf.NotAfter); left < 14*24*time.Hour {
		log.Warn("tls: certificate expires soon or has expired; renew it (the new files are picked up without a restart)",
			"cert_file", cfg.CertFile, "not_after", lc.leaf.NotAfter, "left", left.Round(time.Minute))
	}
	s.cur.Store(lc)
	s.lastSeen = digest
	return s, nil
}

// load reads and checks both files; the digest covers their contents.
func (s *CertStore) load() (*loadedCert, [sha256.Size]byte, error) {
	certPEM, err := os.ReadFile(s.cfg.CertFile)
	if err != nil {
		return nil, [32]byte{}, errAt("tls.cert_file", "%v", err)
	}
	keyPEM, err := os.ReadFile(s.cfg.KeyFile)
	if err != nil {
		return nil, [32]byte{}, errAt("tls.key_file", "%v", err)
	}
	digest := sha256.Sum256(append(append(certPEM, 0), keyPEM...))
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, digest, errAt("tls.key_file", "%s and %s do not load as a certificate and its key: %v", s.cfg.CertFile, s.cfg.KeyFile, err)
	}
	leaf := pair.Leaf // set by X509KeyPair since Go 1.23
	if leaf == nil {
		return nil, digest, errAt("tls.cert_file", "%s: no certificate", s.cfg.CertFile)
	}
	name, err := serverNameFor(s.cfg.ServerName, leaf)
	if err != nil {
		return nil, digest, err
	}
	return &loadedCert{cert: &pair, leaf: leaf, serverName: name}, digest, nil
}

// serverNameFor is the configured name, checked against the certificate,
// or the certificate's first non-wildcard DNS name.
func serverNameFor(configured string, leaf *x509.Certificate) (string, error) {
	if configured != "" {
		if err := leaf.VerifyHostname(configured); err != nil {
			return "", errAt("tls.server_name", "the certificate does not cover %q (it names %s): clients would reject it",
				configured, certNames(leaf))
		}
		return strings.ToLower(configured), nil
	}
	for _, n := range leaf.DNSNames {
		if !strings.HasPrefix(n, "*.") {
			return strings.ToLower(n), nil
		}
	}
	return "", errAt("tls.server_name", "the certificate names no DNS host to default to (it names %s); set tls.server_name", certNames(leaf))
}

func certNames(leaf *x509.Certificate) string {
	names := append([]string(nil), leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return "no DNS names or IP addresses"
	}
	return strings.Join(names, ", ")
}

// Reload reads the files now and swaps in the new pair if they changed
// and load. It reports whether the served certificate changed; an error
// means the files changed but the last good pair stays (logged once per
// distinct error, so a poll every few seconds does not flood the log).
func (s *CertStore) Reload() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lc, digest, err := s.load()
	if err == nil && digest == s.lastSeen {
		s.lastErr = ""
		return false, nil
	}
	if err == nil {
		err = s.acceptable(lc)
	}
	if err != nil {
		if msg := err.Error(); msg != s.lastErr {
			s.lastErr = msg
			s.log.Error("tls: new certificate files not loaded; still serving the previous certificate",
				"error", err, "serving_not_after", s.cur.Load().leaf.NotAfter)
		}
		return false, err
	}
	s.lastSeen, s.lastErr = digest, ""
	s.cur.Store(lc)
	s.log.Info("tls: certificate reloaded", "server_name", lc.serverName, "not_after", lc.leaf.NotAfter,
		"serial", lc.leaf.SerialNumber.Text(16))
	return true, nil
}

// acceptable refuses to replace a valid certificate with an expired one.
func (s *CertStore) acceptable(lc *loadedCert) error {
	now := time.Now()
	if old := s.cur.Load(); now.After(lc.leaf.NotAfter) && now.Before(old.leaf.NotAfter) {
		return errAt("tls.cert_file", "%s expired at %s", s.cfg.CertFile, lc.leaf.NotAfter.Format(time.RFC3339))
	}
	return nil
}

// Run polls the files every interval (DefaultCertPoll if <= 0) until ctx
// is done. Polling contents, not watching inodes, sees every way of
// replacing them: rename into place, rewrite, a symlink switched over.
func (s *CertStore) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = DefaultCertPoll
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = s.Reload() // errors are logged by Reload
		}
	}
}

// GetCertificate is for tls.Config: the current pair, whatever the SNI
// (device tokens make every name under server_name valid).
func (s *CertStore) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cur.Load().cert, nil
}

// ServerName is tls.server_name, or the certificate's first DNS name.
func (s *CertStore) ServerName() string { return s.cur.Load().serverName }

// NotAfter is when the served certificate expires.
func (s *CertStore) NotAfter() time.Time { return s.cur.Load().leaf.NotAfter }

// ExpiresIn is the time left until NotAfter (negative once expired).
func (s *CertStore) ExpiresIn(now time.Time) time.Duration { return s.NotAfter().Sub(now) }

// CoversTokenNames reports whether the certificate is valid for
// {token}.{server_name}, as device tokens in DoT/DoQ server names need
// (a wildcard *.server_name). Without it only DoH paths can carry tokens.
func (s *CertStore) CoversTokenNames() bool {
	lc := s.cur.Load()
	return lc.leaf.VerifyHostname("0123456789abcdef0123."+lc.serverName) == nil
}

// ServerTLSConfig is the tls.Config of a listener speaking alpn: TLS 1.2
// or newer, the current certificate on every handshake.
func (s *CertStore) ServerTLSConfig(alpn ...string) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.GetCertificate,
		NextProtos:     alpn,
	}
}

// String names the files, for logs.
func (s *CertStore) String() string {
	return fmt.Sprintf("certificate %s (key %s) for %s", s.cfg.CertFile, s.cfg.KeyFile, s.ServerName())
}
