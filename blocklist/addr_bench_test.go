package blocklist

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// syntheticCIDRs is n networks: IPv4 /24s spread over 1.0.0.0-126.255.255.0
// and every tenth an IPv6 /48, the shape of a threat-intel network feed.
func syntheticCIDRs(n int) string {
	var b strings.Builder
	for i := range n {
		h := uint32(i) * 2654435761
		if i%10 == 9 {
			fmt.Fprintf(&b, "2a0%x:%x:%x::/48\n", h>>28, h>>12&0xffff, h&0xfff)
			continue
		}
		fmt.Fprintf(&b, "%d.%d.%d.0/24\n", 1+h>>24%126, h>>16&255, h>>8&255)
	}
	return b.String()
}

// benchAddrEngine blocks builtin:bytedance-networks plus 100,000 synthetic
// networks for one group.
func benchAddrEngine(b *testing.B) *Engine {
	b.Helper()
	dir := b.TempDir()
	tempFile(b, dir, "feed.cidrs", syntheticCIDRs(100_000))
	cfg := Config{
		Lists: map[string]ListConfig{
			"bytedance-networks": {Sources: []string{"builtin:bytedance-networks"}},
			"feed":               {Sources: []string{"feed.cidrs"}},
			"tiktok":             {Sources: []string{"builtin:tiktok"}},
		},
		Groups: []GroupConfig{
			{Name: "guests", Clients: []string{"192.168.0.0/16"}},
			{Name: "staff", Clients: []string{"10.0.0.0/8"}, Block: []string{"tiktok", "bytedance-networks", "feed"}},
		},
	}
	return newEngine(b, cfg, Options{BaseDir: dir})
}

// BenchmarkDecideAddr is the response-IP check of one address, with the
// group lookup, against ~100k networks.
func BenchmarkDecideAddr(b *testing.B) {
	e := benchAddrEngine(b)
	client := addr("10.1.1.1")
	for _, tc := range []struct{ name, a string }{
		{"hit-v4", "71.18.3.4"}, {"miss-v4", "203.0.113.9"},
		{"hit-v6", "2605:340:f020::1"}, {"miss-v6", "2001:db8::1"},
	} {
		a := addr(tc.a)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e.DecideAddr(client, a)
			}
		})
	}
}

// missAnswer is what a cache miss for a CDN-hosted name typically brings
// back: a CNAME chain and four addresses.
func missAnswer() []dns.RR {
	var rrs []dns.RR
	for _, s := range []string{
		"www.example.com. 300 IN CNAME www.example.com.cdn.example.net.",
		"www.example.com.cdn.example.net. 60 IN CNAME e1234.a.cdn.example.net.",
		"e1234.a.cdn.example.net. 20 IN A 203.0.113.10",
		"e1234.a.cdn.example.net. 20 IN A 203.0.113.11",
		"e1234.a.cdn.example.net. 20 IN A 198.51.100.12",
		"e1234.a.cdn.example.net. 20 IN A 198.51.100.13",
	} {
		rr, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		rrs = append(rrs, rr)
	}
	return rrs
}

// checkAnswer is how the resolver is meant to use the API on one answer.
func checkAnswer(e *Engine, client netip.Addr, rrs []dns.RR) Verdict {
	if !e.HasAddrRules() {
		return Verdict{}
	}
	p := e.AddrPolicy(Identity{Client: client})
	if !p.Active() {
		return Verdict{}
	}
	var monitored Verdict
	for _, rr := range rrs {
		var ip net.IP
		switch r := rr.(type) {
		case *dns.A:
			ip = r.A
		case *dns.AAAA:
			ip = r.AAAA
		default:
			continue
		}
		a, _ := netip.AddrFromSlice(ip)
		switch v := p.Decide(a); v.Action {
		case Block:
			return v
		case Monitor:
			if monitored.Action != Monitor {
				monitored = v
			}
		}
	}
	return monitored
}

// BenchmarkCheckAnswer is the response-IP cost per miss-sized answer
// (two CNAMEs, four A records): with networks listed, for a group without
// network lists, and with no network list configured at all (the cached
// path's cost when the feature is unused).
func BenchmarkCheckAnswer(b *testing.B) {
	rrs := missAnswer()
	e := benchAddrEngine(b)
	off := newEngine(b, DefaultConfig(), Options{})
	for _, tc := range []struct {
		name   string
		e      *Engine
		client string
	}{
		{"networks-listed", e, "10.1.1.1"},
		{"group-without-networks", e, "192.168.1.1"},
		{"no-network-lists", off, "10.1.1.1"},
	} {
		client := addr(tc.client)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				checkAnswer(tc.e, client, rrs)
			}
		})
	}
}

// BenchmarkBuildAddrIndex100k: build time and heap per network.
func BenchmarkBuildAddrIndex100k(b *testing.B) {
	p, err := Parse(strings.NewReader(syntheticCIDRs(100_000)))
	if err != nil {
		b.Fatal(err)
	}
	lists := [][]Rule{p.Rules}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var ix *AddrIndex
	start := time.Now()
	b.ResetTimer()
	for range b.N {
		if ix, err = BuildAddrIndex(lists); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	elapsed := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(lists)
	b.ReportMetric(elapsed.Seconds()/float64(b.N), "s/build")
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(ix.Len()), "heap-bytes/network")
	b.ReportMetric(float64(ix.Len()), "networks")
}

func TestCheckAnswerHelper(t *testing.T) {
	e := addrEngine(t)
	rrs := missAnswer()
	if v := checkAnswer(e, addr("10.1.1.1"), rrs); v.Action != Allow {
		t.Errorf("clean answer: %+v", v)
	}
	bad, _ := dns.NewRR("e1234.a.cdn.example.net. 20 IN A 71.18.3.4")
	if v := checkAnswer(e, addr("10.1.1.1"), append(rrs, bad)); v.Action != Block || v.Rule != "71.18.0.0/21" {
		t.Errorf("answer into ByteDance space: %+v", v)
	}
	if v := checkAnswer(e, addr("10.99.1.1"), append(rrs, bad)); v.Action != Monitor {
		t.Errorf("pilot group: %+v", v)
	}
	client := addr("10.1.1.1")
	if n := testing.AllocsPerRun(100, func() { checkAnswer(e, client, rrs) }); n != 0 {
		t.Errorf("checking an answer allocates %.1f times", n)
	}
}
