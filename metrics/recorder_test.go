package metrics

import (
	"bytes"
	"math"
	"net/netip"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

func newTestRecorder(t testing.TB, opts Options) (*Recorder, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	r, err := New(reg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r, reg
}

// recordSample feeds a known mix of events and calls into r.
func recordSample(r *Recorder, at time.Time) {
	client := netip.MustParseAddr("127.0.0.10")
	for range 3 {
		r.Query(&QueryEvent{Time: at, Duration: 200 * time.Microsecond, Client: client, Group: "gov",
			QName: "www.TikTok.com.", QType: dns.TypeA, Rcode: dns.RcodeNameError, Outcome: OutcomeBlocked,
			List: "tiktok", Rule: "tiktok.com", Answer: "nxdomain"})
	}
	for range 2 {
		r.Query(&QueryEvent{Time: at, Duration: 30 * time.Millisecond, Client: client, QName: "example.org.",
			QType: dns.TypeAAAA, Rcode: dns.RcodeSuccess, Outcome: OutcomeForwarded})
	}
	r.Query(&QueryEvent{Time: at, Duration: time.Millisecond, Client: client, Group: "gov", QName: "byteoversea.com.",
		QType: dns.TypeHTTPS, Rcode: dns.RcodeSuccess, Outcome: OutcomeCached, List: "bytedance-watch", Monitored: true})
	r.Query(&QueryEvent{Time: at, Client: client, Group: "guest", QName: "x.example.", QType: 65280, Rcode: 30,
		Outcome: OutcomeError})
	r.CacheHit()
	r.CacheHit()
	r.CacheMiss()
	r.CacheEvictions(5)
	r.SetCacheEntriesFunc(func() int { return 42 })
	r.UpstreamResult("quad9", "success", 10*time.Millisecond)
	r.UpstreamResult("quad9", "timeout", 2*time.Second)
	r.UpstreamResult("quad9", "no-such-outcome", time.Millisecond)
	r.UpstreamUp("quad9", true)
	r.UpstreamUp("cloudflare", false)
	r.ListUpdated("tiktok", 120, 3, true, time.Unix(1700000000, 500_000_000))
	r.ListUpdated("tiktok", 0, 0, false, time.Unix(1700000100, 0))
}

func TestScrapeValues(t *testing.T) {
	r, reg := newTestRecorder(t, Options{Version: "1.2.3"})
	recordSample(r, time.Now())
	_, base := startAdmin(t, reg, nil, nil)
	mfs, _ := scrape(t, base)

	checks := []struct {
		name   string
		labels L
		want   float64
	}{
		{"dnsward_queries_total", L{"group": "gov", "qtype": "A", "outcome": "blocked"}, 3},
		{"dnsward_queries_total", L{"group": "none", "qtype": "AAAA", "outcome": "forwarded"}, 2},
		{"dnsward_queries_total", L{"group": "gov", "qtype": "HTTPS", "outcome": "cached"}, 1},
		{"dnsward_queries_total", L{"group": "guest", "qtype": "other", "outcome": "error"}, 1},
		{"dnsward_queries_total", L{"group": "gov", "qtype": "MX", "outcome": "stale"}, 0},
		{"dnsward_blocked_total", L{"group": "gov", "list": "tiktok"}, 3},
		{"dnsward_monitored_total", L{"group": "gov", "list": "tiktok"}, 0},
		{"dnsward_monitored_total", L{"group": "gov", "list": "bytedance-watch"}, 1},
		{"dnsward_responses_total", L{"rcode": "NXDOMAIN"}, 3},
		{"dnsward_responses_total", L{"rcode": "NOERROR"}, 3},
		{"dnsward_responses_total", L{"rcode": "other"}, 1},
		{"dnsward_responses_total", L{"rcode": "BADCOOKIE"}, 0},
		{"dnsward_cache_hits_total", nil, 2},
		{"dnsward_cache_misses_total", nil, 1},
		{"dnsward_cache_evictions_total", nil, 5},
		{"dnsward_cache_entries", nil, 42},
		{"dnsward_upstream_requests_total", L{"upstream": "quad9", "outcome": "success"}, 1},
		{"dnsward_upstream_requests_total", L{"upstream": "quad9", "outcome": "timeout"}, 1},
		{"dnsward_upstream_requests_total", L{"upstream": "quad9", "outcome": "error"}, 1},
		{"dnsward_upstream_up", L{"upstream": "quad9"}, 1},
		{"dnsward_upstream_up", L{"upstream": "cloudflare"}, 0},
		{"dnsward_list_rules", L{"list": "tiktok"}, 120},
		{"dnsward_list_rejected_rules", L{"list": "tiktok"}, 3},
		{"dnsward_list_last_success_timestamp_seconds", L{"list": "tiktok"}, 1700000000.5},
		{"dnsward_list_reloads_total", L{"list": "tiktok", "outcome": "success"}, 1},
		{"dnsward_list_reloads_total", L{"list": "tiktok", "outcome": "failure"}, 1},
		{"dnsward_build_info", L{"version": "1.2.3", "goversion": runtime.Version()}, 1},
		{"dnsward_audit_dropped_total", nil, 0},
		{"dnsward_top_dropped_total", nil, 0},
	}
	for _, c := range checks {
		if got := value(t, mfs, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	h, ok := sample(mfs, "dnsward_request_duration_seconds", L{"outcome": "blocked"})
	if !ok || h.GetHistogram().GetSampleCount() != 3 {
		t.Fatalf("request duration {blocked}: %v", h)
	}
	b := h.GetHistogram().GetBucket()
	if math.IsInf(b[len(b)-1].GetUpperBound(), 1) {
		b = b[:len(b)-1]
	}
	if b[0].GetUpperBound() != 0.00005 || b[len(b)-1].GetUpperBound() != 5 {
		t.Errorf("buckets span %v..%v, want 50µs..5s", b[0].GetUpperBound(), b[len(b)-1].GetUpperBound())
	}
	if h, ok := sample(mfs, "dnsward_upstream_duration_seconds", L{"upstream": "quad9"}); !ok || h.GetHistogram().GetSampleCount() != 3 {
		t.Errorf("upstream duration {quad9}: %v", h)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := mfs[name]; !ok {
			t.Errorf("%s missing: Go and process collectors not registered", name)
		}
	}
}

// TestPromtoolCheckMetrics lints a real scrape with promtool; any output fails.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus)")
	}
	r, reg := newTestRecorder(t, Options{Version: "test"})
	recordSample(r, time.Now())
	_, base := startAdmin(t, reg, nil, nil)
	_, body := scrape(t, base)

	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader([]byte(body))
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("promtool check metrics: err=%v\n%s", err, out)
	}
}

func TestNewFailsOnDuplicateRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(reg, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(reg, Options{}); err == nil {
		t.Fatal("second New on the same registry: want a registration error")
	}
	if _, err := New(nil, Options{TopWindow: time.Second}); err == nil {
		t.Fatal("TopWindow 1s: want an error")
	}
}

// TestBoundedCardinality: names and client addresses never become series,
// and a runaway set of group or list names is capped.
func TestBoundedCardinality(t *testing.T) {
	r, reg := newTestRecorder(t, Options{})
	ev := func(i int, o Outcome) *QueryEvent {
		return &QueryEvent{Client: netip.AddrFrom4([4]byte{127, byte(i >> 16), byte(i >> 8), byte(i)}),
			Group: "gov", QName: "n" + strconv.Itoa(i) + ".example.", QType: dns.TypeA, Outcome: o, List: "tiktok"}
	}
	for o := range numOutcomes {
		r.Query(ev(0, o))
	}
	before := countSeries(t, reg)
	for i := range 10_000 {
		r.Query(ev(i, Outcome(i)%numOutcomes))
	}
	if after := countSeries(t, reg); after != before {
		t.Fatalf("series grew from %d to %d with 10,000 distinct names and clients", before, after)
	}

	for i := range 1000 {
		r.Query(&QueryEvent{Group: "g" + strconv.Itoa(i), Outcome: OutcomeBlocked, List: "l" + strconv.Itoa(i)})
		r.ListUpdated("r"+strconv.Itoa(i), 1, 0, true, time.Now())
		r.UpstreamUp("u"+strconv.Itoa(i), true)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	limits := map[string]int{"group": maxLabelValues + 1, "list": maxLabelValues + 1, "upstream": maxLabelValues + 1}
	for _, mf := range mfs {
		seen := map[string]map[string]bool{}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if seen[lp.GetName()] == nil {
					seen[lp.GetName()] = map[string]bool{}
				}
				seen[lp.GetName()][lp.GetValue()] = true
			}
		}
		for label, values := range seen {
			if max, ok := limits[label]; ok && len(values) > max {
				t.Errorf("%s: %d values of label %q, cap is %d", mf.GetName(), len(values), label, max)
			}
		}
	}
}

// TestInvalidUTF8Labels: client_golang panics on invalid UTF-8 label values; they become "other".
func TestInvalidUTF8Labels(t *testing.T) {
	r, reg := newTestRecorder(t, Options{})
	r.Query(&QueryEvent{Group: "\xff", Outcome: OutcomeBlocked, List: "\xfe"})
	r.UpstreamResult("\xfd", "success", 0)
	r.ListUpdated("\xfc", 1, 0, true, time.Now())
	_, base := startAdmin(t, reg, nil, nil)
	mfs, _ := scrape(t, base)
	for name, labels := range map[string]L{
		"dnsward_blocked_total":           {"group": "other", "list": "other"},
		"dnsward_upstream_requests_total": {"upstream": "other", "outcome": "success"},
		"dnsward_list_rules":              {"list": "other"},
	} {
		if got := value(t, mfs, name, labels); got != 1 {
			t.Errorf("%s%v = %v, want 1", name, labels, got)
		}
	}
}

func countSeries(t *testing.T, g prometheus.Gatherer) int {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if len(mf.GetName()) > 8 && mf.GetName()[:8] == "dnsward_" {
			n += len(mf.GetMetric())
		}
	}
	return n
}

func TestQueryAllocs(t *testing.T) {
	r, _ := newTestRecorder(t, Options{})
	forwarded := &QueryEvent{Time: time.Now(), Duration: time.Millisecond, Client: netip.MustParseAddr("127.0.0.1"),
		Group: "gov", QName: "example.org.", QType: dns.TypeA, Outcome: OutcomeForwarded}
	blocked := &QueryEvent{Time: time.Now(), Duration: time.Millisecond, Client: netip.MustParseAddr("127.0.0.1"),
		Group: "gov", QName: "tiktok.com.", QType: dns.TypeA, Rcode: dns.RcodeNameError, Outcome: OutcomeBlocked,
		List: "tiktok", Rule: "tiktok.com"}
	for name, ev := range map[string]*QueryEvent{"forwarded": forwarded, "blocked": blocked} {
		if n := testing.AllocsPerRun(1000, func() { r.Query(ev) }); n != 0 {
			t.Errorf("Query(%s): %v allocations per call, want 0", name, n)
		}
	}
}

func BenchmarkRecorderQuery(b *testing.B) {
	r, _ := newTestRecorder(b, Options{})
	r.Top().Start(b.Context())
	b.Cleanup(r.Top().Close)
	forwarded := &QueryEvent{Time: time.Now(), Duration: time.Millisecond, Client: netip.MustParseAddr("127.0.0.1"),
		Group: "gov", QName: "example.org.", QType: dns.TypeA, Outcome: OutcomeForwarded}
	blocked := &QueryEvent{Time: time.Now(), Duration: time.Millisecond, Client: netip.MustParseAddr("127.0.0.1"),
		Group: "gov", QName: "tiktok.com.", QType: dns.TypeA, Rcode: dns.RcodeNameError, Outcome: OutcomeBlocked,
		List: "tiktok", Rule: "tiktok.com"}
	b.Run("forwarded", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r.Query(forwarded)
		}
	})
	b.Run("forwarded-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r.Query(forwarded)
			}
		})
	})
	b.Run("blocked", func(b *testing.B) { // also feeds the top counter's queue
		b.ReportAllocs()
		for b.Loop() {
			r.Query(blocked)
		}
	})
}

// TestConcurrentNewGroups races first sightings of groups and lists (run with -race).
func TestConcurrentNewGroups(t *testing.T) {
	r, reg := newTestRecorder(t, Options{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				r.Query(&QueryEvent{Group: "g" + strconv.Itoa(i%20), List: "l" + strconv.Itoa((i+w)%7), Outcome: OutcomeBlocked})
			}
		})
	}
	wg.Wait()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "dnsward_blocked_total" {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	if total != 800 {
		t.Errorf("blocked total %v, want 800 (a count was lost while groups were added)", total)
	}
}
