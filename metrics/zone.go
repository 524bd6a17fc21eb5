package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ZoneState is an RPZ zone a list takes by transfer, as last reported.
type ZoneState struct {
	Serial  uint32
	Loaded  bool // false: no copy yet, Serial means nothing
	Records int
	// LastRefresh is when the primary last answered a refresh (SOA check
	// or transfer); zero when it never has.
	LastRefresh time.Time
	Expired     bool
	// Transfer attempts since start, cumulative.
	AXFROK, AXFRFailed, IXFROK, IXFRFailed uint64
}

// PrimaryZoneState is a zone dnsward serves as an RPZ primary.
type PrimaryZoneState struct {
	Group   string // the group whose policy it publishes (bounded by config)
	Serial  uint32
	Records int
	// Transfers served since start, cumulative.
	AXFR, IXFR, IXFRFull uint64
}

var (
	zoneTransfersDesc = prometheus.NewDesc("dnsward_zone_transfers_total",
		"Zone transfers of RPZ lists (axfr:// sources), by list, type (axfr, ixfr) and outcome (success, failure).",
		[]string{"list", "type", "outcome"}, nil)
	zoneSerialDesc = prometheus.NewDesc("dnsward_zone_serial",
		"SOA serial of the zone copy a list enforces.", []string{"list"}, nil)
	zoneRecordsDesc = prometheus.NewDesc("dnsward_zone_records",
		"Records in the zone copy a list enforces, SOA included.", []string{"list"}, nil)
	zoneSinceDesc = prometheus.NewDesc("dnsward_zone_seconds_since_refresh",
		"Seconds since the list's primary last answered a refresh (SOA check or transfer).", []string{"list"}, nil)
	zoneExpiredDesc = prometheus.NewDesc("dnsward_zone_expired",
		"1 when the zone's SOA expire passed without contact with its primary (see on_expire), else 0.", []string{"list"}, nil)
	primarySerialDesc = prometheus.NewDesc("dnsward_rpz_primary_serial",
		"SOA serial of an RPZ zone dnsward serves, by the group it publishes.", []string{"group"}, nil)
	primaryRecordsDesc = prometheus.NewDesc("dnsward_rpz_primary_records",
		"Records of an RPZ zone dnsward serves, by group.", []string{"group"}, nil)
	primaryTransfersDesc = prometheus.NewDesc("dnsward_rpz_primary_transfers_total",
		"Transfers an RPZ zone dnsward serves sent, by group and type (axfr, ixfr, ixfr_full: IXFR answered with the whole zone).",
		[]string{"group", "type"}, nil)
)

// zoneCollector reports zone state at scrape time, so the seconds since
// the last refresh are current.
type zoneCollector struct {
	labels *labelSet
	now    func() time.Time

	mu      sync.Mutex
	zones   map[string]ZoneState // by list label
	primary func() []PrimaryZoneState
}

func newZoneCollector(labels *labelSet) *zoneCollector {
	return &zoneCollector{labels: labels, now: time.Now, zones: map[string]ZoneState{}}
}

// ZoneUpdated records the state of a list's zone.
func (r *Recorder) ZoneUpdated(list string, z ZoneState) {
	c := r.zones
	c.mu.Lock()
	defer c.mu.Unlock()
	c.zones[c.labels.label(list)] = z
}

// SetPrimaryZonesFunc makes the RPZ primary's zones part of every scrape.
func (r *Recorder) SetPrimaryZonesFunc(f func() []PrimaryZoneState) {
	c := r.zones
	c.mu.Lock()
	defer c.mu.Unlock()
	c.primary = f
}

func (c *zoneCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{zoneTransfersDesc, zoneSerialDesc, zoneRecordsDesc, zoneSinceDesc,
		zoneExpiredDesc, primarySerialDesc, primaryRecordsDesc, primaryTransfersDesc} {
		ch <- d
	}
}

func (c *zoneCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	zones := make(map[string]ZoneState, len(c.zones))
	for k, v := range c.zones {
		zones[k] = v
	}
	primary := c.primary
	c.mu.Unlock()
	now := c.now()
	for list, z := range zones {
		for _, t := range []struct {
			kind, outcome string
			n             uint64
		}{{"axfr", "success", z.AXFROK}, {"axfr", "failure", z.AXFRFailed}, {"ixfr", "success", z.IXFROK}, {"ixfr", "failure", z.IXFRFailed}} {
			ch <- prometheus.MustNewConstMetric(zoneTransfersDesc, prometheus.CounterValue, float64(t.n), list, t.kind, t.outcome)
		}
		ch <- prometheus.MustNewConstMetric(zoneExpiredDesc, prometheus.GaugeValue, boolValue(z.Expired), list)
		if z.Loaded {
			ch <- prometheus.MustNewConstMetric(zoneSerialDesc, prometheus.GaugeValue, float64(z.Serial), list)
			ch <- prometheus.MustNewConstMetric(zoneRecordsDesc, prometheus.GaugeValue, float64(z.Records), list)
		}
		if !z.LastRefresh.IsZero() {
			ch <- prometheus.MustNewConstMetric(zoneSinceDesc, prometheus.GaugeValue, now.Sub(z.LastRefresh).Seconds(), list)
		}
	}
	if primary == nil {
		return
	}
	for _, p := range primary() {
		g := c.labels.label(p.Group)
		ch <- prometheus.MustNewConstMetric(primarySerialDesc, prometheus.GaugeValue, float64(p.Serial), g)
		ch <- prometheus.MustNewConstMetric(primaryRecordsDesc, prometheus.GaugeValue, float64(p.Records), g)
		for _, t := range []struct {
			kind string
			n    uint64
		}{{"axfr", p.AXFR}, {"ixfr", p.IXFR}, {"ixfr_full", p.IXFRFull}} {
			ch <- prometheus.MustNewConstMetric(primaryTransfersDesc, prometheus.CounterValue, float64(t.n), g, t.kind)
		}
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
