package resolver

import (
	"context"
	"crypto/tls"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnstest"
)

// testCA is the shared test CA; writePair adds the TLSConfig naming its files.
type testCA struct{ *dnstest.CA }

func newTestCA(t testing.TB) *testCA { return &testCA{dnstest.NewCA(t)} }

func (ca *testCA) writePair(t testing.TB, dir string, names ...string) (TLSConfig, int64) {
	t.Helper()
	cert, key, serial := ca.WritePair(t, dir, names...)
	return TLSConfig{CertFile: cert, KeyFile: key}, serial
}

func writeAtomic(t testing.TB, path string, data []byte) { dnstest.WriteAtomic(t, path, data) }

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
	return &tls.Config{RootCAs: ca.Pool(), ServerName: serverName, NextProtos: alpn, MinVersion: tls.VersionTLS12}
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
