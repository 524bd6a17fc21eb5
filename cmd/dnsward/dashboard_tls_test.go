package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/resolver"
)

// encryptedQueries is how many DoT and how many DoH queries
// encryptedTraffic sends.
const encryptedQueries = 3

// encryptedTraffic sends what the encrypted-DNS panels show: DoT queries
// on one connection, DoH queries (POST and GET), one DoT handshake the
// client abandons because it does not trust the certificate, and one
// PROXY header from a peer outside proxy_protocol.trusted.
func encryptedTraffic(a encryptedApp) error {
	q := new(dns.Msg).SetQuestion("example.org.", dns.TypeA)
	dot := &dns.Client{Net: "tcp-tls", Timeout: 5 * time.Second, TLSConfig: a.tlsConfig("dns.test")}
	conn, err := dot.Dial(a.addr(resolver.TransportTLS))
	if err != nil {
		return fmt.Errorf("DoT: %w", err)
	}
	defer conn.Close()
	for i := range encryptedQueries {
		m, _, err := dot.ExchangeWithConn(q.Copy(), conn)
		if err := wantNoError(fmt.Sprintf("DoT query %d", i), m, err); err != nil {
			return err
		}
		m, err = dohExchange(a, "/dns-query", q, i%2 == 1)
		if err := wantNoError(fmt.Sprintf("DoH query %d", i), m, err); err != nil {
			return err
		}
	}
	untrusting := &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "dns.test", MinVersion: tls.VersionTLS12}
	d := &net.Dialer{Timeout: 5 * time.Second}
	if c, err := tls.DialWithDialer(d, "tcp", a.addr(resolver.TransportTLS), untrusting); err == nil {
		c.Close()
		return errors.New("a client without the test CA completed a DoT handshake")
	}
	if _, err := viaProxy(a, "127.0.0.1", a.addr(resolver.TransportTLS), "10.1.2.3", q, true); err == nil {
		return errors.New("a PROXY header from 127.0.0.1 (not trusted) was accepted")
	}
	return nil
}

func wantNoError(what string, m *dns.Msg, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) == 0 {
		return fmt.Errorf("%s: %s with %d answers, want NOERROR with an answer", what, dns.RcodeToString[m.Rcode], len(m.Answer))
	}
	return nil
}

// checkEncryptedSeries checks, in Prometheus, that encryptedTraffic was
// counted where the panels read it, and that the certificate gauge counts
// down from the 90 days dnstest's certificate is valid for.
func checkEncryptedSeries(t *testing.T, p *promServer) {
	t.Helper()
	for _, c := range []struct {
		expr     string
		min, max float64
	}{
		{`sum(dnsward_transport_queries_total{transport="tls"})`, encryptedQueries, encryptedQueries},
		{`sum(dnsward_transport_queries_total{transport="https"})`, encryptedQueries, encryptedQueries},
		{`sum(rate(dnsward_transport_queries_total{transport=~"tls|https"}[15s]))`, 1e-9, 1e9},
		{`dnsward_tls_handshake_errors_total{transport="tls"}`, 1, 1},
		{`sum(rate(dnsward_tls_handshake_errors_total[15s]))`, 1e-9, 1e9},
		{`dnsward_proxy_protocol_rejected_total{reason="untrusted"}`, 1, 1},
		{`dnsward_tls_certificate_expiry_seconds`, 89 * 86400, 90 * 86400},
	} {
		v, err := p.query(c.expr)
		if err != nil || len(v) != 1 || v[0] < c.min || v[0] > c.max {
			t.Errorf("%s = %v (%v), want one value in [%g, %g]", c.expr, v, err, c.min, c.max)
		}
	}
}
