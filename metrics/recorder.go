package metrics

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Options configures a Recorder.
type Options struct {
	Version string       // dnsward_build_info{version}
	Logger  *slog.Logger // nil: discard
	Audit   *AuditLog    // nil: no audit log
	Dnstap  *Dnstap      // nil: no dnstap output
	// TopWindow is how far back the top blocked names/clients reach
	// (default 1h, 1m..7d); TopCapacity the entries kept per time slot (default 1000).
	TopWindow   time.Duration
	TopCapacity int
}

// Recorder turns resolver events into Prometheus series, the top-blocked
// counter, the audit log and dnstap. Its methods are safe for concurrent use.
type Recorder struct {
	log    *slog.Logger
	audit  *AuditLog
	dnstap *Dnstap
	top    *TopCounter

	queries   *prometheus.CounterVec
	blocked   *prometheus.CounterVec
	monitored *prometheus.CounterVec
	upstreams *upstreamMetrics
	lists     *listMetrics
	enc       *encryptedMetrics
	zones     *zoneCollector

	groups     *seriesMap[*groupSeries]
	listLabels *labelSet
	responses  [numRcodeSlots]prometheus.Counter
	duration   [numOutcomes]prometheus.Observer

	cacheHits, cacheMisses, cacheEvictions prometheus.Counter
	guard                                  *guardMetrics
	cacheEntries                           atomic.Pointer[func() int]
	udpDrops                               atomic.Pointer[func() uint64]
}

// groupSeries holds the children of one group label, resolved once.
type groupSeries struct {
	queries [numQtypeLabels][numOutcomes]prometheus.Counter
	lists   *seriesMap[*listSeries]
}

type listSeries struct {
	blocked, monitored prometheus.Counter
}

// durationBuckets span 50µs (a cache hit) to 5s (a slow upstream).
var durationBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

// New builds a Recorder and registers its collectors, plus the Go and
// process collectors, on reg. A nil reg uses a private registry (useful in
// tests of other packages). The top counter's goroutine is started with
// r.Top().Start(ctx).
func New(reg prometheus.Registerer, opts Options) (*Recorder, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	top, err := NewTopCounter(opts.TopWindow, opts.TopCapacity)
	if err != nil {
		return nil, err
	}
	r := &Recorder{log: opts.Logger, audit: opts.Audit, dnstap: opts.Dnstap, top: top, listLabels: newLabelSet(maxLabelValues)}
	r.queries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dnsward_queries_total", Help: "Client queries answered, by client group, query type and outcome.",
	}, []string{"group", "qtype", "outcome"})
	r.blocked = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dnsward_blocked_total", Help: "Queries blocked by policy, by client group and list.",
	}, []string{"group", "list"})
	r.monitored = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dnsward_monitored_total", Help: "Queries a monitor-mode list would have blocked, by client group and list.",
	}, []string{"group", "list"})
	responses := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dnsward_responses_total", Help: "Responses sent to clients, by response code.",
	}, []string{"rcode"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "dnsward_request_duration_seconds", Help: "Time from query arrival to response written, by outcome.",
		Buckets: durationBuckets,
	}, []string{"outcome"})
	r.cacheHits = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "dnsward_cache_hits_total", Help: "Cache lookups that found a fresh answer."})
	r.cacheMisses = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "dnsward_cache_misses_total", Help: "Cache lookups that found no fresh answer."})
	r.cacheEvictions = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "dnsward_cache_evictions_total", Help: "Cache entries evicted to stay within max_entries."})
	cacheEntries := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "dnsward_cache_entries", Help: "Entries currently in the answer cache.",
	}, r.cacheEntryCount)
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "dnsward_build_info", Help: "Always 1; labels carry the dnsward version and the Go version it was built with.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(opts.Version, runtime.Version()).Set(1)
	auditDropped := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "dnsward_audit_dropped_total", Help: "Audit log entries lost because the buffer was full or the write failed.",
	}, func() float64 { return float64(r.audit.Dropped()) })
	topDropped := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "dnsward_top_dropped_total", Help: "Blocked queries not counted in the top names/clients because its buffer was full.",
	}, func() float64 { return float64(top.Dropped()) })
	dnstapDropped := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "dnsward_dnstap_dropped_total", Help: "dnstap messages not sent because the buffer was full, the reader was unreachable or a write failed.",
	}, func() float64 { return float64(r.dnstap.Dropped()) })
	udpDrops := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "dnsward_udp_receive_drops_total",
		Help: "Queries the kernel dropped because a UDP listener's receive buffer was full (udp.receive_buffer_mb); Linux only.",
	}, r.udpDropCount)
	r.upstreams = newUpstreamMetrics()
	r.lists = newListMetrics()
	r.enc = newEncryptedMetrics()
	r.guard = newGuardMetrics()
	r.zones = newZoneCollector(r.listLabels)

	cs := []prometheus.Collector{r.queries, r.blocked, r.monitored, responses, duration,
		r.cacheHits, r.cacheMisses, r.cacheEvictions, cacheEntries, buildInfo, auditDropped, topDropped, dnstapDropped, udpDrops,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}
	cs = append(cs, r.upstreams.collectors()...)
	cs = append(cs, r.lists.collectors()...)
	cs = append(cs, r.enc.collectors()...)
	cs = append(cs, r.guard.collected...)
	cs = append(cs, r.zones)
	var errs []error
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("metrics: registering collectors: %w", err)
	}

	for i := range r.responses {
		r.responses[i] = responses.WithLabelValues(rcodeLabel(i))
	}
	for o := range r.duration {
		r.duration[o] = duration.WithLabelValues(Outcome(o).String())
	}
	r.groups = newSeriesMap(maxLabelValues, r.newGroupSeries)
	return r, nil
}

func (r *Recorder) newGroupSeries(name string) *groupSeries {
	label := validLabel(name)
	g := &groupSeries{}
	for q := range g.queries {
		for o := range g.queries[q] {
			g.queries[q][o] = r.queries.WithLabelValues(label, qtypeLabels[q], Outcome(o).String())
		}
	}
	g.lists = newSeriesMap(maxLabelValues, func(list string) *listSeries {
		l := r.listLabels.label(list)
		return &listSeries{
			blocked:   r.blocked.WithLabelValues(label, l),
			monitored: r.monitored.WithLabelValues(label, l),
		}
	})
	return g
}

// Query records one answered client query. It is on the hot path: no lock
// and no allocation once the event's group and list have been seen (with
// dnstap on, one allocation copies the wire messages).
func (r *Recorder) Query(ev *QueryEvent) {
	o := ev.Outcome
	if o >= numOutcomes {
		o = OutcomeError
	}
	g := r.groups.get(ev.Group)
	g.queries[qtypeIndex(ev.QType)][o].Inc()
	r.responses[rcodeIndex(ev.Rcode)].Inc()
	r.enc.byTransport[transportIndex(ev.Proto)][o].Inc()
	r.duration[o].Observe(ev.Duration.Seconds())

	blocked := o == OutcomeBlocked
	if blocked || ev.Monitored {
		l := g.lists.get(ev.List)
		if blocked {
			l.blocked.Inc()
		} else {
			l.monitored.Inc()
		}
		r.top.Observe(ev.QName, ev.Client, !blocked, ev.Time)
	}
	if r.audit != nil && (blocked || ev.Monitored || r.audit.all) {
		r.audit.Record(ev)
	}
	if r.dnstap != nil {
		r.dnstap.record(ev)
	}
}

// WantsWire reports whether Query uses the events' wire-format messages
// and addresses (dnstap is on), so the resolver packs them only then.
func (r *Recorder) WantsWire() bool { return r != nil && r.dnstap != nil }

// CacheHit counts a cache lookup that found a fresh answer.
func (r *Recorder) CacheHit() { r.cacheHits.Inc() }

// CacheMiss counts a cache lookup that found nothing usable.
func (r *Recorder) CacheMiss() { r.cacheMisses.Inc() }

// CacheEvictions counts n entries evicted from the cache.
func (r *Recorder) CacheEvictions(n int) {
	if n > 0 {
		r.cacheEvictions.Add(float64(n))
	}
}

// SetCacheEntriesFunc sets the function read at scrape time for dnsward_cache_entries.
func (r *Recorder) SetCacheEntriesFunc(f func() int) {
	if f == nil {
		r.cacheEntries.Store(nil)
		return
	}
	r.cacheEntries.Store(&f)
}

func (r *Recorder) cacheEntryCount() float64 {
	if f := r.cacheEntries.Load(); f != nil {
		return float64((*f)())
	}
	return 0
}

// Top returns the counter of most-blocked names and clients.
func (r *Recorder) Top() *TopCounter { return r.top }

// SetUDPDropsFunc sets the function read at scrape time for
// dnsward_udp_receive_drops_total.
func (r *Recorder) SetUDPDropsFunc(f func() uint64) {
	if r != nil {
		r.udpDrops.Store(&f)
	}
}

func (r *Recorder) udpDropCount() float64 {
	if f := r.udpDrops.Load(); f != nil {
		return float64((*f)())
	}
	return 0
}
