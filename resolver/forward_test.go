package resolver

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dnsward/dnsward/internal/dnstest"
	"github.com/dnsward/dnsward/metrics"
	"github.com/dnsward/dnsward/resolver/upstream"
)

// countingZone answers every A query with one address and counts them.
func countingZone(t *testing.T, n *atomic.Int64) string {
	addr, _ := dnstest.Serve(t, dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		if req.Question[0].Name != "." {
			n.Add(1)
		}
		m := new(dns.Msg).SetReply(req)
		m.Answer = []dns.RR{dnstest.RR(t, req.Question[0].Name+" 300 IN A 192.0.2.1")}
		_ = w.WriteMsg(m)
	}))
	return addr
}

func forwarder(t *testing.T, cfg upstream.Config, obs upstream.Observer) *upstream.Forwarder {
	t.Helper()
	f, err := upstream.New(cfg, upstream.Options{Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// round_robin over a UDP and a TCP upstream spreads cache misses over both.
func TestRoundRobinSpreadsMissesOverUDPAndTCPUpstreams(t *testing.T) {
	var viaUDP, viaTCP atomic.Int64
	fwd := forwarder(t, upstream.Config{Servers: []string{"udp://" + countingZone(t, &viaUDP), "tcp://" + countingZone(t, &viaTCP)},
		Strategy: upstream.StrategyRoundRobin, Timeout: time.Second}, nil)
	srv := startResolver(t, Config{Cache: CacheConfig{MaxEntries: 1000}}, Options{Upstream: fwd})
	waitReady(t, srv.Resolver) // the readiness probe takes a turn too
	for i := range 20 {
		ask(t, "udp", srv.addr, fmt.Sprintf("n%d.example.", i), dns.TypeA, false)
	}
	if u, c := viaUDP.Load(), viaTCP.Load(); u != 10 || c != 10 {
		t.Fatalf("20 misses went %d to the UDP upstream and %d to the TCP one; want 10 each", u, c)
	}
}

// A hanging upstream costs a cache miss one upstream timeout, not two.
func TestHangingUpstreamCostsOneTimeout(t *testing.T) {
	fwd := forwarder(t, upstream.Config{Servers: []string{dnstest.Blackhole(t)}, Timeout: 400 * time.Millisecond}, nil)
	srv := startResolver(t, Config{Cache: CacheConfig{MaxEntries: 100}}, Options{Upstream: fwd})
	start := time.Now()
	resp := ask(t, "udp", srv.addr, "a.example.", dns.TypeA, false)
	if elapsed := time.Since(start); resp.Rcode != dns.RcodeServerFailure || elapsed > 750*time.Millisecond {
		t.Fatalf("rcode %s after %v; want SERVFAIL after one 400ms timeout", dns.RcodeToString[resp.Rcode], elapsed)
	}
}

func newRecorder(t *testing.T) (*metrics.Recorder, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	rec, err := metrics.New(reg, metrics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rec, reg
}

// Every query is one cache lookup: a hit or a miss, counted once, on
// every path (YXDOMAIN, which is not cached, included).
func TestCacheLookupsCountedOncePerQuery(t *testing.T) {
	up := startUpstream(t, testZone...)
	up.setRcode("dname.example.", dns.RcodeYXDomain)
	rec, reg := newRecorder(t)
	srv := startResolver(t, Config{Cache: CacheConfig{MaxEntries: 100}}, Options{Metrics: rec}, up.addr)
	for _, name := range []string{"a.example.", "a.example.", "dname.example.", "dname.example.", "missing.example."} {
		for _, network := range []string{"udp", "tcp"} {
			ask(t, network, srv.addr, name, dns.TypeA, false)
		}
	}
	hits := testutil.ToFloat64(counter(t, reg, "dnsward_cache_hits_total"))
	misses := testutil.ToFloat64(counter(t, reg, "dnsward_cache_misses_total"))
	// a: miss then 3 hits; dname (YXDOMAIN, never cached): 4 misses; missing (NXDOMAIN): miss then hit.
	if hits != 4 || misses != 6 {
		t.Fatalf("cache hits %v, misses %v for 10 queries; want 4 and 6", hits, misses)
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			c := prometheus.NewCounter(prometheus.CounterOpts{Name: name})
			c.Add(mf.GetMetric()[0].GetCounter().GetValue())
			return c
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

// A reply that is not usable (FORMERR from the upstream, garbage) counts
// against the upstream, whatever path the query took.
func TestUnusualUpstreamRepliesCountAgainstTheUpstream(t *testing.T) {
	var asked atomic.Int64 // FORMERR's queries; garbage's may be resent (no reply came)
	bad, _ := dnstest.Serve(t, dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		if strings.HasPrefix(req.Question[0].Name, "formerr") {
			asked.Add(1)
		}
		switch {
		case req.Question[0].Name == ".": // the readiness probe
			_ = w.WriteMsg(new(dns.Msg).SetReply(req))
			return
		case strings.HasPrefix(req.Question[0].Name, "garbage"):
			_, _ = w.Write([]byte{0xde, 0xad})
			return
		}
		_ = w.WriteMsg(new(dns.Msg).SetRcode(req, dns.RcodeFormatError))
	}))
	obs := &upstreamResults{}
	fwd := forwarder(t, upstream.Config{Servers: []string{bad}, Timeout: 300 * time.Millisecond}, obs)
	srv := startResolver(t, Config{Cache: CacheConfig{MaxEntries: 100}}, Options{Upstream: fwd})
	for _, name := range []string{"formerr.example.", "garbage.example."} {
		if resp := ask(t, "udp", srv.addr, name, dns.TypeA, false); resp.Rcode != dns.RcodeServerFailure {
			t.Errorf("%s: rcode %s, want SERVFAIL", name, dns.RcodeToString[resp.Rcode])
		}
	}
	// FORMERR, and a timeout in which only garbage arrived: both bad responses.
	if got := obs.count(bad + " bad_response"); got != 2 || asked.Load() != 1 {
		t.Errorf("FORMERR query asked %d times, %d bad_response results; want it asked once and each query counted once; results %v",
			asked.Load(), got, obs.all())
	}
}

// An access.allow entry in IPv4-mapped form matches IPv4 clients.
func TestMappedAccessPrefixMatchesIPv4Clients(t *testing.T) {
	up := startUpstream(t, testZone...)
	srv := startResolver(t, Config{Access: AccessConfig{Allow: []string{"::ffff:127.0.0.0/104"}}}, Options{}, up.addr)
	if resp := ask(t, "udp", srv.addr, "a.example.", dns.TypeA, false); resp.Rcode != dns.RcodeSuccess {
		t.Fatalf("client 127.0.0.1 under ::ffff:127.0.0.0/104: rcode %s", dns.RcodeToString[resp.Rcode])
	}
}

// upstreamResults is an upstream.Observer that keeps every result.
type upstreamResults struct {
	mu      sync.Mutex
	results []string
}

func (o *upstreamResults) UpstreamResult(name, outcome string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.results = append(o.results, name+" "+outcome)
}

func (o *upstreamResults) UpstreamUp(string, bool) {}
func (o *upstreamResults) UpstreamResend(string)   {}

func (o *upstreamResults) all() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.results)
}

func (o *upstreamResults) count(entry string) int {
	n := 0
	for _, r := range o.all() {
		if r == entry {
			n++
		}
	}
	return n
}

func waitReady(t *testing.T, r *Resolver) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); r.Ready() != nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", r.Ready())
		}
	}
}

// With cache.prefetch, a name asked for in the last tenth of its TTL is
// refreshed in the background: the refresh reaches the upstream before
// expiry, and no client waits for an upstream after the first.
func TestPrefetchRefreshesBeforeExpiry(t *testing.T) {
	up := startUpstream(t, "hot.example. 100 IN A 192.0.2.7")
	clk := newClock()
	rec, reg := newRecorder(t)
	srv := startResolver(t, Config{Cache: CacheConfig{MaxEntries: 100, Prefetch: true}}, Options{Now: clk.now, Metrics: rec}, up.addr)
	ask(t, "udp", srv.addr, "hot.example.", dns.TypeA, false) // the one miss
	clk.advance(50 * time.Second)
	ask(t, "udp", srv.addr, "hot.example.", dns.TypeA, false) // mid-TTL: a plain hit
	if n := up.queries.Load(); n != 1 {
		t.Fatalf("%d upstream queries before the last tenth of the TTL, want 1", n)
	}
	clk.advance(45 * time.Second) // 95 s of 100
	if m := ask(t, "udp", srv.addr, "hot.example.", dns.TypeA, false); len(m.Answer) != 1 || m.Answer[0].Header().Ttl != 5 {
		t.Fatalf("answer near expiry: %v, want the cached one with 5 s left", m.Answer)
	}
	for deadline := time.Now().Add(3 * time.Second); up.queries.Load() < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no prefetch reached the upstream")
		}
	}
	clk.advance(10 * time.Second) // past the first answer's expiry
	if m := ask(t, "udp", srv.addr, "hot.example.", dns.TypeA, false); len(m.Answer) != 1 || m.Answer[0].Header().Ttl < 90 {
		t.Fatalf("answer after the old expiry: %v, want the refreshed one", m.Answer)
	}
	if n := up.queries.Load(); n != 2 {
		t.Errorf("%d upstream queries, want 2 (the miss and one prefetch)", n)
	}
	if got := testutil.ToFloat64(counter(t, reg, "dnsward_cache_prefetches_total")); got != 1 {
		t.Errorf("prefetches counted %v, want 1", got)
	}
}
