package resolver

import (
	"testing"

	"github.com/miekg/dns"
)

// Cached and blocked answers go out without an allocation, with the
// metrics recorder live, over UDP and TCP alike (the same pipeline).
func TestCachedAndBlockedAnswersDoNotAllocate(t *testing.T) {
	up := startUpstream(t, testZone...)
	rec, _ := newRecorder(t)
	pol := &suffixPolicy{block: map[string]string{"tiktok.com": "tiktok"}}
	srv := startResolver(t, Config{Cache: CacheConfig{MaxEntries: 100}}, Options{Policy: pol, Metrics: rec}, up.addr)
	for _, name := range []string{"alias.example.", "www.tiktok.com.", "missing.example."} {
		req := new(dns.Msg).SetQuestion(name, dns.TypeA)
		req.SetEdns0(1232, false)
		pkt, _ := req.Pack()
		serveWire(t, srv.Resolver, pkt, "127.0.0.1") // fills the cache
		for _, tr := range []Transport{TransportUDP, TransportTCP} {
			s := newScratch()
			allocs := testing.AllocsPerRun(200, func() {
				if out, pending := serveAs(srv.Resolver, pkt, tr, s); pending || out == nil {
					t.Fatalf("%s: not answered at once", name)
				}
			})
			if allocs != 0 {
				t.Errorf("%s over %s: %.1f allocations per answer", name, tr, allocs)
			}
		}
	}
}
