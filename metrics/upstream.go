package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Upstream outcomes, the bounded values of dnsward_upstream_requests_total{outcome}.
// Anything else is recorded as "error".
var upstreamOutcomes = [...]string{"success", "servfail", "error", "timeout", "bad_response"}

const upstreamOutcomeError = 2

func upstreamOutcomeIndex(outcome string) int {
	for i, o := range upstreamOutcomes {
		if o == outcome {
			return i
		}
	}
	return upstreamOutcomeError
}

type upstreamMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	up       *prometheus.GaugeVec
	resends  *prometheus.CounterVec
	series   *seriesMap[*upstreamSeries]
}

type upstreamSeries struct {
	requests [len(upstreamOutcomes)]prometheus.Counter
	duration prometheus.Observer
	up       prometheus.Gauge
	resends  prometheus.Counter
}

func newUpstreamMetrics() *upstreamMetrics {
	u := &upstreamMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dnsward_upstream_requests_total", Help: "Requests sent to upstream resolvers, by upstream and outcome.",
		}, []string{"upstream", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dnsward_upstream_duration_seconds", Help: "Upstream exchange time, by upstream.", Buckets: durationBuckets,
		}, []string{"upstream"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dnsward_upstream_up", Help: "1 when the upstream is considered healthy, else 0.",
		}, []string{"upstream"}),
		resends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dnsward_upstream_resends_total",
			Help: "UDP queries sent to an upstream again because no reply had come yet (lost datagrams, a slow upstream), by upstream.",
		}, []string{"upstream"}),
	}
	u.series = newSeriesMap(maxLabelValues, func(name string) *upstreamSeries {
		name = validLabel(name)
		s := &upstreamSeries{duration: u.duration.WithLabelValues(name), up: u.up.WithLabelValues(name),
			resends: u.resends.WithLabelValues(name)}
		for i, o := range upstreamOutcomes {
			s.requests[i] = u.requests.WithLabelValues(name, o)
		}
		return s
	})
	return u
}

func (u *upstreamMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{u.requests, u.duration, u.up, u.resends}
}

// UpstreamResult records one exchange with an upstream. outcome is one of
// success, servfail, error, timeout, bad_response; other values count as error.
func (r *Recorder) UpstreamResult(upstream, outcome string, d time.Duration) {
	s := r.upstreams.series.get(upstream)
	s.requests[upstreamOutcomeIndex(outcome)].Inc()
	s.duration.Observe(d.Seconds())
}

// UpstreamUp records the health of an upstream.
func (r *Recorder) UpstreamUp(upstream string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	r.upstreams.series.get(upstream).up.Set(v)
}

// UpstreamResend counts one UDP query sent to the upstream again.
func (r *Recorder) UpstreamResend(upstream string) {
	r.upstreams.series.get(upstream).resends.Inc()
}

type listMetrics struct {
	rules, rejected, lastSuccess *prometheus.GaugeVec
	reloads                      *prometheus.CounterVec
}

func newListMetrics() *listMetrics {
	return &listMetrics{
		rules: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dnsward_list_rules", Help: "Rules loaded from the list in its current version.",
		}, []string{"list"}),
		rejected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dnsward_list_rejected_rules", Help: "Lines of the list's current version that were rejected as invalid.",
		}, []string{"list"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dnsward_list_last_success_timestamp_seconds", Help: "Unix time the content the list serves was last loaded or rebuilt (unchanged refetches do not move it).",
		}, []string{"list"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dnsward_list_reloads_total", Help: "List load attempts, by list and outcome (success or failure).",
		}, []string{"list", "outcome"}),
	}
}

func (l *listMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{l.rules, l.rejected, l.lastSuccess, l.reloads}
}

// ListUpdated records a load attempt of a list. On success (ok) the rule
// counts and the last-success time are set; on failure the last good
// version stays in use, so only the failure is counted.
func (r *Recorder) ListUpdated(list string, rules, rejected int, ok bool, at time.Time) {
	name := r.listLabels.label(list)
	m := r.lists
	// Both outcome series exist from the first attempt so rate() and
	// alerts see 0 rather than an absent series.
	success, failure := m.reloads.WithLabelValues(name, "success"), m.reloads.WithLabelValues(name, "failure")
	if !ok {
		failure.Inc()
		return
	}
	success.Inc()
	m.rules.WithLabelValues(name).Set(float64(rules))
	m.rejected.WithLabelValues(name).Set(float64(rejected))
	m.lastSuccess.WithLabelValues(name).Set(float64(at.UnixNano()) / 1e9)
}
