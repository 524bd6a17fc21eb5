package metrics

import "github.com/prometheus/client_golang/prometheus"

// guardMetrics count what the resolver's protections did: queries turned
// away because too many wait on upstreams, records scrubbed from upstream
// replies, and cache entries refreshed ahead of expiry.
type guardMetrics struct {
	overload  prometheus.Counter
	scrubbed  [3]prometheus.Counter // answer, authority, additional
	prefetch  prometheus.Counter
	scrubVec  *prometheus.CounterVec
	collected []prometheus.Collector
}

func newGuardMetrics() *guardMetrics {
	g := &guardMetrics{
		overload: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dnsward_upstream_overload_total",
			Help: "Queries answered SERVFAIL at once because upstream.max_inflight queries were already waiting on upstreams."}),
		prefetch: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dnsward_cache_prefetches_total", Help: "Cache entries refreshed from upstream before they expired (cache.prefetch)."}),
		scrubVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dnsward_upstream_records_scrubbed_total",
			Help: "Records removed from upstream replies because they do not belong to the question, by section."},
			[]string{"section"}),
	}
	for i, s := range []string{"answer", "authority", "additional"} {
		g.scrubbed[i] = g.scrubVec.WithLabelValues(s)
	}
	g.collected = []prometheus.Collector{g.overload, g.prefetch, g.scrubVec}
	return g
}

// Overloaded counts a query refused because upstream.max_inflight queries wait.
func (r *Recorder) Overloaded() {
	if r != nil {
		r.guard.overload.Inc()
	}
}

// Scrubbed counts records removed from one upstream reply.
func (r *Recorder) Scrubbed(answer, authority, additional int) {
	if r == nil {
		return
	}
	for i, n := range [3]int{answer, authority, additional} {
		if n > 0 {
			r.guard.scrubbed[i].Add(float64(n))
		}
	}
}

// Prefetched counts a cache entry refreshed before it expired.
func (r *Recorder) Prefetched() {
	if r != nil {
		r.guard.prefetch.Inc()
	}
}
