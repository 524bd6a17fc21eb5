package resolver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// testCA issues certificates for the encrypted listeners' tests.
type testCA struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	pemOut []byte
	serial atomic.Int64
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dnsward test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, pemOut: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	ca.serial.Store(100)
	return ca
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issue returns a leaf for names (DNS names or IP addresses) valid until
// notAfter, as PEM, and its serial number.
func (ca *testCA) issue(t testing.TB, notAfter time.Time, names ...string) (certPEM, keyPEM []byte, serial int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial = ca.serial.Add(1)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), serial
}

// writePair writes a fresh leaf into dir as cert.pem and key.pem and
// returns the TLSConfig naming them.
func (ca *testCA) writePair(t testing.TB, dir string, names ...string) (TLSConfig, int64) {
	t.Helper()
	c, k, serial := ca.issue(t, time.Now().Add(90*24*time.Hour), names...)
	cfg := TLSConfig{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}
	writeAtomic(t, cfg.CertFile, c)
	writeAtomic(t, cfg.KeyFile, k)
	return cfg, serial
}

// writeAtomic replaces path the way ACME clients do: write a temporary
// file, then rename it into place.
func writeAtomic(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// testCertStore is a CertStore for dns.test and *.dns.test.
func testCertStore(t testing.TB, ca *testCA) *CertStore {
	t.Helper()
	cfg, _ := ca.writePair(t, t.TempDir(), "dns.test", "*.dns.test", "127.0.0.1")
	s, err := NewCertStore(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// clientTLS trusts the test CA and asks for serverName over alpn.
func clientTLS(ca *testCA, serverName string, alpn ...string) *tls.Config {
	return &tls.Config{RootCAs: ca.pool(), ServerName: serverName, NextProtos: alpn, MinVersion: tls.VersionTLS12}
}

// echoHandler answers every query with one A record (TTL 300) for its
// question, and writes what it saw into the last Query pointer.
type echoHandler struct {
	last atomic.Pointer[Query]
}

func (h *echoHandler) handle(_ context.Context, q Query) []byte {
	h.last.Store(&q)
	req := new(dns.Msg)
	if err := req.Unpack(q.Wire); err != nil || len(req.Question) != 1 {
		return nil
	}
	resp := new(dns.Msg).SetReply(req)
	switch {
	case req.Question[0].Name == "drop.test.":
		return nil
	case req.Question[0].Name == "nx.test.":
		resp.Rcode = dns.RcodeNameError
		soa, _ := dns.NewRR("test. 900 IN SOA ns.test. host.test. 1 7200 900 1209600 120")
		resp.Ns = []dns.RR{soa}
	case req.Question[0].Name == "fail.test.":
		resp.Rcode = dns.RcodeServerFailure
	case req.Question[0].Qtype == dns.TypeA:
		ip := "192.0.2.1"
		if req.Question[0].Name == "web.test." {
			ip = "127.0.0.1"
		}
		rr, _ := dns.NewRR(req.Question[0].Name + " 300 IN A " + ip)
		resp.Answer = []dns.RR{rr}
	case req.Question[0].Qtype == dns.TypeTXT:
		long, _ := dns.NewRR(req.Question[0].Name + " 300 IN TXT \"long ttl\"")
		short, _ := dns.NewRR(req.Question[0].Name + " 42 IN TXT \"short ttl\"")
		resp.Answer = []dns.RR{long, short}
	}
	out, err := resp.Pack()
	if err != nil {
		return nil
	}
	return out
}

func (h *echoHandler) lastQuery(t testing.TB) Query {
	t.Helper()
	q := h.last.Load()
	if q == nil {
		t.Fatal("the handler saw no query")
	}
	return *q
}

// waitFor polls cond every 20ms for up to limit.
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
