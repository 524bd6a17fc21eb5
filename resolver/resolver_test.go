package resolver

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

var testZone = []string{
	"a.example. 300 IN A 192.0.2.1",
	"a.example. 300 IN AAAA 2001:db8::1",
	"alias.example. 300 IN CNAME a.example.",
	"mail.example. 300 IN MX 10 mx.example.",
	"txt.example. 300 IN TXT \"hello world\"",
}

func TestForwardsRecordTypesIntact(t *testing.T) {
	up := startUpstream(t, testZone...)
	srv := startResolver(t, Config{}, Options{}, up.addr)
	for _, proto := range []string{"udp", "tcp"} {
		for _, tc := range []struct {
			name  string
			qtype uint16
			want  []string
		}{
			{"a.example.", dns.TypeA, []string{"192.0.2.1"}},
			{"a.example.", dns.TypeAAAA, []string{"2001:db8::1"}},
			{"alias.example.", dns.TypeA, []string{"a.example.", "192.0.2.1"}},
			{"mail.example.", dns.TypeMX, []string{"10 mx.example."}},
			{"txt.example.", dns.TypeTXT, []string{`"hello world"`}},
		} {
			resp := ask(t, proto, srv.addr, tc.name, tc.qtype, true)
			if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != len(tc.want) {
				t.Fatalf("%s %s/%s: rcode %s, answer %v", proto, tc.name, dns.TypeToString[tc.qtype], dns.RcodeToString[resp.Rcode], resp.Answer)
			}
			for i, rr := range resp.Answer {
				if !strings.HasSuffix(rr.String(), tc.want[i]) {
					t.Errorf("%s %s: answer %d = %q, want suffix %q", proto, tc.name, i, rr, tc.want[i])
				}
			}
			if !resp.RecursionAvailable || !resp.Response {
				t.Errorf("%s %s: RA/QR flags not set", proto, tc.name)
			}
		}
	}
}

func TestCacheHitCountsTTLDownWithoutUpstream(t *testing.T) {
	up := startUpstream(t, testZone...)
	clk := newClock()
	srv := startResolver(t, Config{Cache: CacheConfig{MaxEntries: 100}}, Options{Now: clk.now}, up.addr)

	first := ask(t, "udp", srv.addr, "a.example.", dns.TypeA, false)
	seen := up.queries.Load()
	clk.advance(100 * time.Second)
	second := ask(t, "udp", srv.addr, "A.EXAMPLE.", dns.TypeA, false)
	if up.queries.Load() != seen {
		t.Fatalf("cache hit reached the upstream (%d queries, want %d)", up.queries.Load(), seen)
	}
	if got := second.Answer[0].Header().Ttl; got != first.Answer[0].Header().Ttl-100 {
		t.Fatalf("TTL after 100s = %d, first answer had %d", got, first.Answer[0].Header().Ttl)
	}
	if second.Question[0].Name != "A.EXAMPLE." || second.Answer[0].Header().Name != "A.EXAMPLE." {
		t.Fatalf("question/owner case not echoed: %v / %v", second.Question[0].Name, second.Answer[0].Header().Name)
	}
	if second.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
		t.Fatalf("cached answer changed: %v", second.Answer[0])
	}

	clk.advance(201 * time.Second) // past the 300 s TTL
	ask(t, "udp", srv.addr, "a.example.", dns.TypeA, false)
	if up.queries.Load() != seen+1 {
		t.Fatalf("expired entry was served from cache")
	}
}

func TestNegativeAnswersCachedForSOAMinimum(t *testing.T) {
	up := startUpstream(t, testZone...)
	clk := newClock()
	srv := startResolver(t, Config{Cache: CacheConfig{MaxEntries: 100}}, Options{Now: clk.now}, up.addr)

	for _, name := range []string{"missing.example.", "a.example."} { // NXDOMAIN, then NODATA (no MX)
		qtype := dns.TypeA
		if name == "a.example." {
			qtype = dns.TypeMX
		}
		resp := ask(t, "udp", srv.addr, name, qtype, false)
		before := up.queries.Load()
		clk.advance(29 * time.Second) // SOA minimum is 30 s
		again := ask(t, "udp", srv.addr, name, qtype, false)
		if up.queries.Load() != before {
			t.Fatalf("%s: negative answer not cached", name)
		}
		if again.Rcode != resp.Rcode || len(again.Ns) != 1 || again.Ns[0].Header().Ttl != 1 {
			t.Fatalf("%s: cached negative answer %v, want rcode %d and SOA TTL 1", name, again, resp.Rcode)
		}
		clk.advance(2 * time.Second)
		ask(t, "udp", srv.addr, name, qtype, false)
		if up.queries.Load() != before+1 {
			t.Fatalf("%s: negative answer cached beyond the SOA minimum", name)
		}
	}
}

func TestServfailIsNotCached(t *testing.T) {
	up := startUpstream(t, testZone...)
	up.setRcode("broken.example.", dns.RcodeServerFailure)
	srv := startResolver(t, Config{Cache: CacheConfig{MaxEntries: 100}}, Options{}, up.addr)
	for range 2 {
		if resp := ask(t, "udp", srv.addr, "broken.example.", dns.TypeA, false); resp.Rcode != dns.RcodeServerFailure {
			t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
		}
	}
	if up.queries.Load() < 2 {
		t.Fatalf("SERVFAIL was cached: upstream saw %d queries", up.queries.Load())
	}
}

func TestFailoverWhenFirstUpstreamDown(t *testing.T) {
	dead := startUpstream(t)
	dead.stop()
	up := startUpstream(t, testZone...)
	srv := startResolver(t, Config{}, Options{}, dead.addr, up.addr)
	if resp := ask(t, "udp", srv.addr, "a.example.", dns.TypeA, false); len(resp.Answer) != 1 {
		t.Fatalf("no answer via the second upstream: %v", resp)
	}
}

func TestAllUpstreamsDownGivesServfailInTime(t *testing.T) {
	dead := startUpstream(t)
	dead.stop()
	srv := startResolver(t, Config{}, Options{Timeout: time.Second}, dead.addr)
	start := time.Now()
	resp := ask(t, "udp", srv.addr, "a.example.", dns.TypeA, false)
	if resp.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
	if took := time.Since(start); took > 2900*time.Millisecond {
		t.Fatalf("SERVFAIL took %s, the query budget is 1s", took)
	}
}

func TestServeStaleWhenUpstreamFails(t *testing.T) {
	up := startUpstream(t, testZone...)
	clk := newClock()
	cfg := Config{Cache: CacheConfig{MaxEntries: 100}}
	srv := startResolver(t, cfg, Options{Now: clk.now}, up.addr)
	ask(t, "udp", srv.addr, "a.example.", dns.TypeA, false)
	up.stop()
	clk.advance(400 * time.Second)
	resp := ask(t, "udp", srv.addr, "a.example.", dns.TypeA, false)
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 || resp.Answer[0].Header().Ttl != staleTTL {
		t.Fatalf("stale answer = %v, want the old record with TTL %d", resp, staleTTL)
	}
}
