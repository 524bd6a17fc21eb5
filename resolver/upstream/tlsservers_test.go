package upstream

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnstest"
)

// startTLS starts a DoT server with a certificate for dns.test and 127.0.0.1
// and returns its address, accept counter and certificate.
func startTLS(t *testing.T, h dns.Handler) (string, *dnstest.CountingListener, *x509.Certificate) {
	t.Helper()
	cert := testCertificate(t, "dns.test")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &dnstest.CountingListener{Listener: ln}
	tl := tls.NewListener(cl, &tls.Config{Certificates: []tls.Certificate{cert}})
	dnstest.Start(t, &dns.Server{Listener: tl, Handler: h})
	return ln.Addr().String(), cl, cert.Leaf
}

// trust returns a client TLS config whose roots are exactly certs.
func trust(certs ...*x509.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return &tls.Config{RootCAs: pool}
}

func testCertificate(t *testing.T, name string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{name},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// startDoH starts an RFC 8484 server with HTTP/2 and returns its URL, its
// certificate, and the number of HTTP/2 requests seen.
func startDoH(t *testing.T, answer func(*dns.Msg) *dns.Msg) (string, *x509.Certificate, *atomic.Int64) {
	t.Helper()
	var h2 atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 {
			h2.Add(1)
		}
		body, _ := io.ReadAll(r.Body)
		req := new(dns.Msg)
		// RFC 8484: POST, the DNS media type, and ID 0 for HTTP caches.
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != dnsMessageType || req.Unpack(body) != nil || req.Id != 0 {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		out, err := answer(req).Pack()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", dnsMessageType)
		w.Write(out)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL + "/dns-query", srv.Certificate(), &h2
}
