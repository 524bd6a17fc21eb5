package resolver

import (
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnstest"
	"github.com/dnsward/dnsward/resolver/upstream"
)

// The fault matrix: real upstream servers that misbehave in one way each.
// Whatever they do, dnsward answers within the timeout — stale where it
// has an old answer, SERVFAIL where it has none — serves nothing the
// upstream was not asked for, and recovers by itself.

// faultyUpstream answers fault.example A with 192.0.2.1 (TTL 1) while
// its mode is "ok", and misbehaves in the other modes.
type faultyUpstream struct {
	addr string
	mode atomic.Value // string
	seen atomic.Int64
}

func startFaulty(t *testing.T) *faultyUpstream {
	f := &faultyUpstream{}
	f.mode.Store("ok")
	f.addr, _ = dnstest.Serve(t, dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		if req.Question[0].Name != "." {
			f.seen.Add(1)
		}
		m := new(dns.Msg).SetReply(req)
		m.Answer = []dns.RR{dnstest.RR(t, req.Question[0].Name+" 1 IN A 192.0.2.1")}
		switch f.mode.Load().(string) {
		case "hang":
			return
		case "slow": // just under the 400 ms timeout
			time.Sleep(300 * time.Millisecond)
		case "garbage":
			_, _ = w.Write([]byte("\x12\x34 not dns at all"))
			return
		case "wrong-id":
			m.Id++
		case "wrong-question":
			m.Question[0].Name = "other.example."
			m.Answer = []dns.RR{dnstest.RR(t, "other.example. 300 IN A 6.6.6.6")}
		case "out-of-bailiwick":
			m.Extra = []dns.RR{dnstest.RR(t, "bank.example. 300 IN A 6.6.6.6")}
			m.Ns = []dns.RR{dnstest.RR(t, "evil.test. 300 IN NS ns.evil.test.")}
		}
		_ = w.WriteMsg(m)
	}))
	return f
}

func TestFaultMatrix(t *testing.T) {
	f := startFaulty(t)
	clk := newClock()
	fwd, err := upstream.New(upstream.Config{Servers: []string{f.addr}, Timeout: 400 * time.Millisecond}, upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fwd.Close() })
	srv := startResolver(t, Config{Cache: CacheConfig{MaxEntries: 100, ServeStale: time.Hour}}, Options{Upstream: fwd, Now: clk.now})
	fresh := ask(t, "udp", srv.addr, "fault.example.", dns.TypeA, false)
	if len(fresh.Answer) != 1 {
		t.Fatalf("healthy upstream: %v", fresh)
	}
	for _, tc := range []struct {
		mode  string
		stale bool // the answer is the old one, from the cache; else a new one
	}{
		{"hang", true}, {"garbage", true}, {"wrong-id", true}, {"wrong-question", true},
		{"slow", false}, {"out-of-bailiwick", false},
	} {
		f.mode.Store(tc.mode)
		clk.advance(2 * time.Second) // past the 1 s TTL
		start := time.Now()
		resp := ask(t, "udp", srv.addr, "fault.example.", dns.TypeA, false)
		elapsed := time.Since(start)
		if elapsed > 900*time.Millisecond {
			t.Errorf("%s: answered after %v, want within the timeout", tc.mode, elapsed)
		}
		if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 || !strings.HasSuffix(resp.Answer[0].String(), "192.0.2.1") {
			t.Errorf("%s: %v, want fault.example's address", tc.mode, resp)
			continue
		}
		if ttl := resp.Answer[0].Header().Ttl; (ttl == staleTTL) != tc.stale {
			t.Errorf("%s: TTL %d; stale answer expected: %v", tc.mode, ttl, tc.stale)
		}
		for _, rr := range append(resp.Ns, resp.Extra...) {
			if rr.Header().Rrtype != dns.TypeOPT {
				t.Errorf("%s: the client got %v, which it did not ask for", tc.mode, rr)
			}
		}
	}
	// Nothing the misbehaving upstream slipped in was cached.
	f.mode.Store("hang")
	for _, name := range []string{"other.example.", "bank.example."} {
		if resp := ask(t, "udp", srv.addr, name, dns.TypeA, false); resp.Rcode != dns.RcodeServerFailure {
			t.Errorf("%s: %v, want SERVFAIL (nothing cached for it)", name, resp)
		}
	}
	// A name never answered gets SERVFAIL within the timeout.
	start := time.Now()
	if resp := ask(t, "udp", srv.addr, "never.example.", dns.TypeA, false); resp.Rcode != dns.RcodeServerFailure || time.Since(start) > 900*time.Millisecond {
		t.Errorf("no answer and nothing stale: %v after %v, want SERVFAIL within the timeout", resp, time.Since(start))
	}
	// It recovers by itself once the upstream does.
	f.mode.Store("ok")
	waitUntilAnswered(t, srv.addr, "fault.example.", clk)
}

func waitUntilAnswered(t *testing.T, addr, name string, clk *clock) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		clk.advance(2 * time.Second)
		resp := ask(t, "udp", addr, name, dns.TypeA, false)
		if len(resp.Answer) == 1 && resp.Answer[0].Header().Ttl != staleTTL {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no fresh answer 15 s after the upstream recovered: %v", resp)
		}
	}
}

// With two upstreams and the first dead, a dead upstream costs nothing
// once it is known dead: the median answer stays under 100 ms.
func TestDeadFirstUpstreamCostsNothingOnceKnown(t *testing.T) {
	dead := dnstest.Blackhole(t)
	var good faultyUpstream
	good.mode.Store("ok")
	good.addr = startFaulty(t).addr
	for _, strategy := range []string{upstream.StrategyFailover, upstream.StrategyParallelBest} {
		fwd, err := upstream.New(upstream.Config{Servers: []string{dead, good.addr}, Strategy: strategy, Timeout: 500 * time.Millisecond}, upstream.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fwd.Close() })
		srv := startResolver(t, Config{}, Options{Upstream: fwd})
		var took []time.Duration
		for i := range 21 {
			start := time.Now()
			if resp := ask(t, "udp", srv.addr, "n"+string(rune('a'+i))+".example.", dns.TypeA, false); len(resp.Answer) != 1 {
				t.Fatalf("%s: query %d: %v", strategy, i, resp)
			}
			took = append(took, time.Since(start))
		}
		sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
		if median := took[len(took)/2]; median > 100*time.Millisecond {
			t.Errorf("%s: median answer %v with the first upstream dead, want under 100 ms (all: %v)", strategy, median, took)
		}
	}
}

// An upstream that flaps up and down: every answer still comes within the
// timeout, stale while it is down, fresh once it is back.
func TestFlappingUpstream(t *testing.T) {
	f := startFaulty(t)
	clk := newClock()
	fwd, err := upstream.New(upstream.Config{Servers: []string{f.addr}, Timeout: 300 * time.Millisecond}, upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fwd.Close() })
	srv := startResolver(t, Config{Cache: CacheConfig{MaxEntries: 100, ServeStale: time.Hour}}, Options{Upstream: fwd, Now: clk.now})
	ask(t, "udp", srv.addr, "fault.example.", dns.TypeA, false)
	for i := range 6 {
		mode := []string{"hang", "ok"}[i%2]
		f.mode.Store(mode)
		clk.advance(2 * time.Second)
		start := time.Now()
		resp := ask(t, "udp", srv.addr, "fault.example.", dns.TypeA, false)
		if len(resp.Answer) != 1 || time.Since(start) > 800*time.Millisecond {
			t.Fatalf("flap %d (%s): %v after %v", i, mode, resp, time.Since(start))
		}
	}
	f.mode.Store("ok")
	waitUntilAnswered(t, srv.addr, "fault.example.", clk)
}
