package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// transportLabels is the bounded set of the transport label: how a client
// query reached dnsward. Anything else counts as "other".
var transportLabels = [...]string{"udp", "tcp", "tls", "https", "quic", otherLabel}

const numTransports = len(transportLabels)

func transportIndex(proto string) int {
	for i, t := range transportLabels[:numTransports-1] {
		if proto == t {
			return i
		}
	}
	return numTransports - 1
}

// handshakeTransports are the transports with a TLS handshake.
var handshakeTransports = [...]string{"tls", "https", "quic"}

// ProxyRejectReasons are the label values of
// dnsward_proxy_protocol_rejected_total{reason}; others count as "other".
var ProxyRejectReasons = [...]string{"untrusted", "missing", "malformed", "oversized", "timeout", otherLabel}

// encryptedMetrics are the series of the encrypted listeners and the
// PROXY protocol. Their children are made up front, so every series is
// exported (as 0) from the first scrape and panels and alerts have data.
type encryptedMetrics struct {
	queries     *prometheus.CounterVec
	byTransport [numTransports][numOutcomes]prometheus.Counter
	handshake   *prometheus.CounterVec
	proxy       *prometheus.CounterVec
	expiry      *certExpiry
}

func newEncryptedMetrics() *encryptedMetrics {
	m := &encryptedMetrics{expiry: &certExpiry{}}
	m.queries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dnsward_transport_queries_total",
		Help: "Client queries answered, by transport (udp, tcp, tls, https, quic) and outcome.",
	}, []string{"transport", "outcome"})
	m.handshake = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dnsward_tls_handshake_errors_total",
		Help: "TLS handshakes of client connections that failed or timed out, by transport.",
	}, []string{"transport"})
	m.proxy = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dnsward_proxy_protocol_rejected_total",
		Help: "Client connections closed over their PROXY protocol header, by reason (untrusted sender, missing, malformed, oversized, timeout).",
	}, []string{"reason"})
	for t := range m.byTransport {
		for o := range m.byTransport[t] {
			m.byTransport[t][o] = m.queries.WithLabelValues(transportLabels[t], Outcome(o).String())
		}
	}
	for _, t := range handshakeTransports {
		m.handshake.WithLabelValues(t)
	}
	for _, r := range ProxyRejectReasons {
		m.proxy.WithLabelValues(r)
	}
	return m
}

func (m *encryptedMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.queries, m.handshake, m.proxy, m.expiry}
}

// TLSHandshakeError counts one failed client handshake on transport
// ("tls", "https" or "quic"; anything else is ignored).
func (r *Recorder) TLSHandshakeError(transport string) {
	if r == nil {
		return
	}
	for _, t := range handshakeTransports {
		if t == transport {
			r.enc.handshake.WithLabelValues(t).Inc()
			return
		}
	}
}

// ProxyRejected counts one connection closed over its PROXY header.
func (r *Recorder) ProxyRejected(reason string) {
	if r == nil {
		return
	}
	for _, known := range ProxyRejectReasons {
		if known == reason {
			r.enc.proxy.WithLabelValues(reason).Inc()
			return
		}
	}
	r.enc.proxy.WithLabelValues(otherLabel).Inc()
}

// SetCertificateNotAfter sets the function read at scrape time for
// dnsward_tls_certificate_expiry_seconds: the serving certificate's
// NotAfter (it changes when the certificate is reloaded). Until it is
// set, the gauge is not exported: without TLS there is nothing to expire.
func (r *Recorder) SetCertificateNotAfter(notAfter func() time.Time) {
	if r != nil {
		r.enc.expiry.notAfter.Store(&notAfter)
	}
}

// certExpiry exports seconds until the certificate's NotAfter, computed
// at scrape time so it counts down between reloads.
type certExpiry struct {
	notAfter atomic.Pointer[func() time.Time]
}

var certExpiryDesc = prometheus.NewDesc("dnsward_tls_certificate_expiry_seconds",
	"Seconds until the serving TLS certificate (tls.cert_file) expires; negative once it has.", nil, nil)

func (c *certExpiry) Describe(ch chan<- *prometheus.Desc) { ch <- certExpiryDesc }

func (c *certExpiry) Collect(ch chan<- prometheus.Metric) {
	f := c.notAfter.Load()
	if f == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(certExpiryDesc, prometheus.GaugeValue, time.Until((*f)()).Seconds())
}
