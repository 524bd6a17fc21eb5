package resolver

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// handshakeSerial connects to addr and returns the serial of the
// certificate the server presents.
func handshakeSerial(t *testing.T, ca *testCA, addr string) int64 {
	t.Helper()
	d := &net.Dialer{Timeout: 2 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, clientTLS(ca, "dns.test", "dot"))
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// serveTLS accepts handshakes on loopback with cfg until the test ends.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = c.(*tls.Conn).Handshake()
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// TestCertificateReplacedOnDisk: an ACME-style renewal (key, then
// certificate, each renamed into place) is served to new handshakes
// without a restart; the half-done state in between keeps the old pair.
func TestCertificateReplacedOnDisk(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	cfg, first := ca.writePair(t, dir, "dns.test", "*.dns.test")
	var logs bytes.Buffer
	store, err := NewCertStore(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	tc := store.ServerTLSConfig("dot")
	if tc.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion %x", tc.MinVersion)
	}
	addr := serveTLS(t, tc)
	if got := handshakeSerial(t, ca, addr); got != first {
		t.Fatalf("serial %d, want %d", got, first)
	}
	ctx, cancel := context.WithCancel(context.Background())
	running := make(chan struct{})
	go func() { store.Run(ctx, 30*time.Millisecond); close(running) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-running }) } // before reading logs, which Run writes
	defer stop()

	newCert, newKey, second := ca.Issue(t, time.Now().Add(60*24*time.Hour), "dns.test", "*.dns.test")
	writeAtomic(t, cfg.KeyFile, newKey) // the new key beside the old certificate: does not load
	if changed, err := store.Reload(); changed || err == nil {
		t.Fatalf("mismatched pair: changed=%v err=%v", changed, err)
	}
	if got := handshakeSerial(t, ca, addr); got != first {
		t.Fatalf("after a half-done renewal: serial %d, want the old %d", got, first)
	}
	writeAtomic(t, cfg.CertFile, newCert)
	waitFor(t, 5*time.Second, "new certificate served", func() bool { return handshakeSerial(t, ca, addr) == second })
	stop()
	if !strings.Contains(logs.String(), "certificate reloaded") || strings.Count(logs.String(), "not loaded") != 1 {
		t.Errorf("log:\n%s", logs.String())
	}
	if left := store.ExpiresIn(time.Now()); left < 59*24*time.Hour || left > 60*24*time.Hour {
		t.Errorf("ExpiresIn %s, want about 60 days", left)
	}
}

func TestCertificateBadReplacementsKeepLastGood(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	cfg, first := ca.writePair(t, dir, "dns.test")
	store, err := NewCertStore(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(cfg.CertFile)
	for name, replace := range map[string]func(){
		"half-written": func() { writeAtomic(t, cfg.CertFile, good[:len(good)/2]) },
		"removed":      func() { os.Remove(cfg.CertFile) },
		"garbage":      func() { writeAtomic(t, cfg.CertFile, []byte("not a certificate\n")) },
		"expired": func() {
			c, k, _ := ca.Issue(t, time.Now().Add(-time.Hour), "dns.test")
			writeAtomic(t, cfg.CertFile, c)
			writeAtomic(t, cfg.KeyFile, k)
		},
	} {
		replace()
		changed, err := store.Reload()
		if changed || err == nil {
			t.Errorf("%s: changed=%v err=%v; want the last good pair kept", name, changed, err)
		}
		if got := store.cur.Load().leaf.SerialNumber.Int64(); got != first {
			t.Errorf("%s: serving serial %d, want %d", name, got, first)
		}
	}
}

func TestCertificateServerName(t *testing.T) {
	ca := newTestCA(t)
	for _, tt := range []struct {
		names      []string
		configured string
		want, err  string
		tokens     bool
	}{
		{names: []string{"*.dns.test", "dns.test"}, want: "dns.test", tokens: true},
		{names: []string{"DNS.Test"}, want: "dns.test"},
		{names: []string{"dns.test", "*.dns.test"}, configured: "dns.test", want: "dns.test", tokens: true},
		{names: []string{"*.dns.test"}, configured: "abc.dns.test", want: "abc.dns.test"},
		{names: []string{"dns.test"}, configured: "other.test", err: `tls.server_name: the certificate does not cover "other.test" (it names dns.test)`},
		{names: []string{"*.dns.test", "192.0.2.1"}, err: "names no DNS host to default to (it names *.dns.test, 192.0.2.1); set tls.server_name"},
	} {
		cfg, _ := ca.writePair(t, t.TempDir(), tt.names...)
		cfg.ServerName = tt.configured
		s, err := NewCertStore(cfg, slog.New(slog.DiscardHandler))
		if tt.err != "" {
			var ce *ConfigError
			if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.As(err, &ce) || ce.Key() != "tls.server_name" {
				t.Errorf("%v %q: err %v; want %q at tls.server_name", tt.names, tt.configured, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", tt.names, err)
			continue
		}
		if s.ServerName() != tt.want || s.CoversTokenNames() != tt.tokens {
			t.Errorf("%v %q: server name %q tokens %v; want %q %v", tt.names, tt.configured, s.ServerName(), s.CoversTokenNames(), tt.want, tt.tokens)
		}
	}
}

func TestCertStoreConfigErrors(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	cfg, _ := ca.writePair(t, dir, "dns.test")
	other, _ := ca.writePair(t, filepath.Join(t.TempDir()), "dns.test")
	for _, tt := range []struct {
		cfg TLSConfig
		key string
	}{
		{TLSConfig{CertFile: filepath.Join(dir, "missing.pem"), KeyFile: cfg.KeyFile}, "tls.cert_file"},
		{TLSConfig{CertFile: cfg.CertFile, KeyFile: filepath.Join(dir, "missing.pem")}, "tls.key_file"},
		{TLSConfig{CertFile: cfg.CertFile, KeyFile: other.KeyFile}, "tls.key_file"},
	} {
		_, err := NewCertStore(tt.cfg, slog.New(slog.DiscardHandler))
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Key() != tt.key {
			t.Errorf("%+v: %v; want an error at %s", tt.cfg, err, tt.key)
		}
	}
}

func TestEncryptedConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		cfg EncryptedConfig
		key string
	}{
		{EncryptedConfig{}, ""},
		{EncryptedConfig{ListenHTTPS: []string{"0.0.0.0:443"}}, "tls.cert_file"},
		{EncryptedConfig{ListenTLS: []string{"0.0.0.0:853"}, TLS: TLSConfig{CertFile: "c.pem"}}, "tls.key_file"},
		{EncryptedConfig{ListenQUIC: []string{"dns.test:853"}}, "listen_quic[0]"},
		{EncryptedConfig{ListenTLS: []string{":853"}, TLS: TLSConfig{CertFile: "c", KeyFile: "k", ServerName: "https://dns.test/"}}, "tls.server_name"},
		{EncryptedConfig{ListenTLS: []string{":853"}, TLS: TLSConfig{CertFile: "c", KeyFile: "k", ServerName: "dns.test"}}, ""},
		{EncryptedConfig{ProxyProtocol: ProxyConfig{Trusted: []string{"10.0.0.0/8", "lb.test"}}}, "proxy_protocol.trusted[1]"},
	} {
		err := tt.cfg.Validate()
		var ce *ConfigError
		switch {
		case tt.key == "" && err != nil:
			t.Errorf("%+v: %v", tt.cfg, err)
		case tt.key != "" && (!errors.As(err, &ce) || ce.Key() != tt.key):
			t.Errorf("%+v: %v; want an error at %s", tt.cfg, err, tt.key)
		}
	}
}
