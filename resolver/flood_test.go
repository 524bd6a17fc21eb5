package resolver

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"
)

// A random-subdomain flood ("water torture": unique names, each asked
// once) through dnsward over UDP does not evict the working set: with
// cache.max_entries 2000, a 100-name hot set asked ten times, then 20k
// unique names, at least 90 of the hot names are still answered from the
// cache (the upstream is not asked again), and the cache stays bounded.
func TestRandomSubdomainFloodKeepsTheHotSet(t *testing.T) {
	var zone []string
	for i := range 100 {
		zone = append(zone, fmt.Sprintf("hot%d.example. 3600 IN A 192.0.2.1", i))
	}
	up := startUpstream(t, zone...)
	srv := startResolver(t, Config{Cache: CacheConfig{MaxEntries: 2000}}, Options{}, up.addr)
	c := &dns.Client{Net: "udp"}
	conn, err := c.Dial(srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	exchange := func(name string) *dns.Msg {
		m := new(dns.Msg).SetQuestion(name, dns.TypeA)
		if err := conn.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
		r, err := conn.ReadMsg()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return r
	}
	for range 10 { // hot: each name asked ten times
		for i := range 100 {
			exchange(fmt.Sprintf("hot%d.example.", i))
		}
	}
	for i := range 20000 {
		exchange(fmt.Sprintf("x%d.flood.example.", i))
	}
	before := up.queries.Load()
	for i := range 100 {
		exchange(fmt.Sprintf("hot%d.example.", i))
	}
	asked := int(up.queries.Load() - before)
	t.Logf("hot names answered from the cache after the flood: %d/100", 100-asked)
	if cached := 100 - asked; cached < 90 {
		t.Errorf("after 20k unique names, %d of the 100 hot names were answered from the cache; want at least 90", cached)
	}
	if n := srv.cache.len(); n > 2000 {
		t.Errorf("cache holds %d entries, want at most cache.max_entries (2000)", n)
	}
}
