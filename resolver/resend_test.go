package resolver

import (
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dnsward/dnsward/internal/dnstest"
	"github.com/dnsward/dnsward/resolver/upstream"
)

// A cache miss whose query to the only upstream is lost gets its answer
// from a resend (the UDP read loop's lane does the resending), not
// SERVFAIL after the timeout; dnsward_upstream_resends_total shows it.
func TestLostUpstreamQueryIsAnsweredFromAResend(t *testing.T) {
	var copies atomic.Int64
	addr, _ := dnstest.Serve(t, dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		if req.Question[0].Name == "lost.example." && copies.Add(1) == 1 {
			return // the first copy is lost
		}
		m := new(dns.Msg).SetReply(req)
		if req.Question[0].Name != "." {
			m.Answer = []dns.RR{dnstest.RR(t, req.Question[0].Name+" 300 IN A 192.0.2.1")}
		}
		_ = w.WriteMsg(m)
	}))
	rec, reg := newRecorder(t)
	fwd := forwarder(t, upstream.Config{Servers: []string{"udp://" + addr}}, rec)
	srv := startResolver(t, Config{Cache: CacheConfig{MaxEntries: 100}}, Options{Upstream: fwd, Metrics: rec})
	waitReady(t, srv.Resolver)

	resp := ask(t, "udp", srv.addr, "lost.example.", dns.TypeA, false)
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
		t.Fatalf("got %s with %d answers; want the upstream's answer to the resent query", dns.RcodeToString[resp.Rcode], len(resp.Answer))
	}
	if n := copies.Load(); n != 2 {
		t.Fatalf("the upstream saw %d copies; want 2", n)
	}
	if got := testutil.ToFloat64(counter(t, reg, "dnsward_upstream_resends_total")); got != 1 {
		t.Fatalf("dnsward_upstream_resends_total = %v; want 1", got)
	}
}
