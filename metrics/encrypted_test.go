package metrics

import (
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestTransportAndTLSMetrics(t *testing.T) {
	r, reg := newTestRecorder(t, Options{})
	_, base := startAdmin(t, reg, nil, nil)
	mfs, _ := scrape(t, base)
	if _, ok := mfs["dnsward_tls_certificate_expiry_seconds"]; ok {
		t.Error("certificate expiry exported before any certificate is set")
	}
	for _, tr := range transportLabels {
		if v := value(t, mfs, "dnsward_transport_queries_total", L{"transport": tr, "outcome": "cached"}); v != 0 {
			t.Errorf("%s starts at %v", tr, v)
		}
	}

	client := netip.MustParseAddr("192.0.2.1")
	for _, proto := range []string{"udp", "https", "https", "quic", "carrier-pigeon"} {
		r.Query(&QueryEvent{Time: time.Now(), Client: client, Proto: proto, QName: "example.org.", QType: dns.TypeA, Outcome: OutcomeCached})
	}
	r.Query(&QueryEvent{Time: time.Now(), Client: client, Proto: "tls", QName: "example.org.", QType: dns.TypeA, Outcome: OutcomeRefused})
	r.TLSHandshakeError("https")
	r.TLSHandshakeError("udp") // no handshake there: ignored
	r.ProxyRejected("untrusted")
	r.ProxyRejected("something new")
	notAfter := time.Now().Add(10 * 24 * time.Hour)
	r.SetCertificateNotAfter(func() time.Time { return notAfter })

	mfs, _ = scrape(t, base)
	for _, c := range []struct {
		name   string
		labels L
		want   float64
	}{
		{"dnsward_transport_queries_total", L{"transport": "https", "outcome": "cached"}, 2},
		{"dnsward_transport_queries_total", L{"transport": "udp", "outcome": "cached"}, 1},
		{"dnsward_transport_queries_total", L{"transport": "quic", "outcome": "cached"}, 1},
		{"dnsward_transport_queries_total", L{"transport": "other", "outcome": "cached"}, 1},
		{"dnsward_transport_queries_total", L{"transport": "tls", "outcome": "refused"}, 1},
		{"dnsward_tls_handshake_errors_total", L{"transport": "https"}, 1},
		{"dnsward_tls_handshake_errors_total", L{"transport": "tls"}, 0},
		{"dnsward_proxy_protocol_rejected_total", L{"reason": "untrusted"}, 1},
		{"dnsward_proxy_protocol_rejected_total", L{"reason": "other"}, 1},
		{"dnsward_proxy_protocol_rejected_total", L{"reason": "missing"}, 0},
	} {
		if got := value(t, mfs, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if n := len(mfs["dnsward_transport_queries_total"].GetMetric()); n != numTransports*int(numOutcomes) {
		t.Errorf("%d transport series, want %d (bounded)", n, numTransports*int(numOutcomes))
	}
	left := value(t, mfs, "dnsward_tls_certificate_expiry_seconds", L{})
	if want := (10 * 24 * time.Hour).Seconds(); left > want || left < want-60 {
		t.Errorf("expiry %v s, want about %v", left, want)
	}
}

func TestAuditNamesTokenAndTransport(t *testing.T) {
	path := t.TempDir() + "/audit.log"
	audit, err := NewAuditLog(AuditConfig{Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := newTestRecorder(t, Options{Audit: audit})
	r.Query(&QueryEvent{Time: time.Now(), Client: netip.MustParseAddr("198.51.100.7"), Proto: "https", Group: "gov-devices",
		TokenID: "1a2b3c4d", QName: "www.tiktok.com.", QType: dns.TypeA, Rcode: dns.RcodeNameError, Outcome: OutcomeBlocked,
		List: "tiktok", Rule: "tiktok.com", Answer: "nxdomain"})
	if err := audit.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	if len(lines) != 1 || lines[0]["token"] != "1a2b3c4d" || lines[0]["transport"] != "https" || lines[0]["group"] != "gov-devices" {
		t.Errorf("audit lines %v", lines)
	}
}
