package resolver

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dnsward/dnsward/metrics"
)

// TestFastPathMatchesFullPipeline answers the same cached queries through
// the wire fast path and through the full pipeline and requires identical
// messages, for several query shapes.
func TestFastPathMatchesFullPipeline(t *testing.T) {
	up := startUpstream(t, testZone...)
	clk := newClock()
	srv := startResolver(t, Config{Cache: CacheConfig{MaxEntries: 100}}, Options{Now: clk.now}, up.addr)
	from := netip.MustParseAddrPort("127.0.0.1:5000")
	for _, tc := range []struct {
		name  string
		qtype uint16
		edns  bool
		do    bool
		cd    bool
	}{
		{"a.example.", dns.TypeA, false, false, false},
		{"A.Example.", dns.TypeAAAA, true, false, false},
		{"alias.EXAMPLE.", dns.TypeA, true, true, false},
		{"mail.example.", dns.TypeMX, true, false, true},
		{"missing.example.", dns.TypeA, true, false, false}, // cached NXDOMAIN
	} {
		req := new(dns.Msg).SetQuestion(tc.name, tc.qtype)
		req.CheckingDisabled = tc.cd
		if tc.edns {
			req.SetEdns0(1400, tc.do)
		}
		slow := serveWith(srv.Resolver, req) // fills the cache
		clk.advance(7e9)
		slow = serveWith(srv.Resolver, req)
		pkt, _ := req.Pack()
		var s fastScratch
		out, ok := srv.fastUDP(pkt, from, &s)
		if !ok {
			t.Fatalf("%s %s: fast path not taken for a cached answer", tc.name, dns.TypeToString[tc.qtype])
		}
		fast := new(dns.Msg)
		if err := fast.Unpack(out); err != nil {
			t.Fatalf("%s: fast answer does not unpack: %v", tc.name, err)
		}
		// Names compressed against the question take the client's case in
		// the fast answer; DNS compares names case-insensitively, so do we.
		if fast.Question[0].Name != tc.name || strings.ToLower(fast.String()) != strings.ToLower(slow.String()) {
			t.Errorf("%s %s: fast and full answers differ:\nfast:\n%s\nfull:\n%s", tc.name, dns.TypeToString[tc.qtype], fast, slow)
		}
	}
}

func serveWith(r *Resolver, req *dns.Msg) *dns.Msg {
	w := &recordingWriter{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}}
	r.ServeDNS(w, req)
	// Round-trip through wire form, as a client would see it.
	b, _ := w.msgs[0].Pack()
	m := new(dns.Msg)
	_ = m.Unpack(b)
	return m
}

func TestFastPathDeclinesWhatItCannotAnswer(t *testing.T) {
	up := startUpstream(t, append(testZone, bigTXT("big.example.", 1000),
		"video.example. 300 IN CNAME v16.tiktokcdn.com.", "v16.tiktokcdn.com. 300 IN A 192.0.2.16")...)
	pol := &suffixPolicy{block: map[string]string{"tiktok.com": "tiktok", "tiktokcdn.com": "tiktok"}}
	srv := startResolver(t, Config{Cache: CacheConfig{MaxEntries: 100}}, Options{Policy: pol}, up.addr)
	from := netip.MustParseAddrPort("127.0.0.1:5000")
	for _, name := range []string{"big.example.", "video.example."} {
		serveWith(srv.Resolver, new(dns.Msg).SetQuestion(name, dns.TypeTXT))
		serveWith(srv.Resolver, new(dns.Msg).SetQuestion(name, dns.TypeA))
	}
	for _, tc := range []struct {
		why string
		req *dns.Msg
	}{
		{"not cached", new(dns.Msg).SetQuestion("other.example.", dns.TypeA)},
		{"needs truncation", new(dns.Msg).SetQuestion("big.example.", dns.TypeTXT)},
		{"cached CNAME into a blocked name", new(dns.Msg).SetQuestion("video.example.", dns.TypeA)},
		{"ANY", new(dns.Msg).SetQuestion("a.example.", dns.TypeANY)},
	} {
		pkt, _ := tc.req.Pack()
		var s fastScratch
		if _, ok := srv.fastUDP(pkt, from, &s); ok {
			t.Errorf("%s: fast path answered", tc.why)
		}
	}
	// Odd packets: EDNS version 1, trailing bytes, escaped characters.
	v1 := new(dns.Msg).SetQuestion("a.example.", dns.TypeA)
	v1.SetEdns0(1232, false)
	v1.IsEdns0().SetVersion(1)
	pkt, _ := v1.Pack()
	trailing := append(append([]byte{}, pkt...), 0)
	escaped, _ := new(dns.Msg).SetQuestion(`a\.b.example.`, dns.TypeA).Pack()
	for _, p := range [][]byte{pkt, trailing, escaped, pkt[:20]} {
		var s fastScratch
		if _, ok := srv.fastUDP(p, from, &s); ok {
			t.Errorf("fast path answered an odd packet %x", p)
		}
	}
}

func TestFastPathDoesNotAllocate(t *testing.T) {
	up := startUpstream(t, testZone...)
	rec, err := metrics.New(prometheus.NewRegistry(), metrics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pol := &suffixPolicy{block: map[string]string{"tiktok.com": "tiktok"}}
	srv := startResolver(t, Config{Cache: CacheConfig{MaxEntries: 100}}, Options{Policy: pol, Metrics: rec}, up.addr)
	req := new(dns.Msg).SetQuestion("alias.example.", dns.TypeA)
	req.SetEdns0(1232, false)
	serveWith(srv.Resolver, req)
	pkt, _ := req.Pack()
	from := netip.MustParseAddrPort("127.0.0.1:5000")
	var s fastScratch
	allocs := testing.AllocsPerRun(200, func() {
		if _, ok := srv.fastUDP(pkt, from, &s); !ok {
			t.Fatal("fast path not taken")
		}
	})
	if allocs != 0 {
		t.Fatalf("fast path allocates %.1f times per cached answer", allocs)
	}
	blocked := new(dns.Msg).SetQuestion("www.tiktok.com.", dns.TypeA)
	blocked.SetEdns0(1232, false)
	bpkt, _ := blocked.Pack()
	allocs = testing.AllocsPerRun(200, func() {
		if _, ok := srv.fastUDP(bpkt, from, &s); !ok {
			t.Fatal("fast path not taken for a blocked name")
		}
	})
	if allocs != 0 {
		t.Fatalf("fast path allocates %.1f times per blocked answer", allocs)
	}
}

// TestFastBlockedMatchesFullPipeline checks every answer mode, qtype and
// EDNS shape: the wire-built blocked answer must equal the full one.
func TestFastBlockedMatchesFullPipeline(t *testing.T) {
	up := startUpstream(t)
	from := netip.MustParseAddrPort("127.0.0.1:5000")
	for _, mode := range []string{AnswerNXDomain, AnswerNoData, AnswerNullIP, AnswerSinkhole, AnswerRefused} {
		for _, answer := range []string{"", AnswerNoData} {
			pol := &suffixPolicy{block: map[string]string{"tiktok.com": "tiktok"}, answer: answer}
			cfg := Config{Blocking: BlockingConfig{Answer: mode, TTL: 45e9, Sinkhole: SinkholeConfig{IPv4: "10.0.0.53"}}}
			srv := startResolver(t, cfg, Options{Policy: pol}, up.addr)
			for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeHTTPS} {
				for _, edns := range []bool{false, true} {
					req := new(dns.Msg).SetQuestion("Www.TikTok.com.", qtype)
					req.RecursionDesired = edns // vary the flags too
					if edns {
						req.SetEdns0(1232, qtype == dns.TypeA)
					}
					slow := serveWith(srv.Resolver, req)
					pkt, _ := req.Pack()
					var s fastScratch
					out, ok := srv.fastUDP(pkt, from, &s)
					if !ok {
						t.Fatalf("%s/%s: fast path declined a blocked name", mode, dns.TypeToString[qtype])
					}
					fast := new(dns.Msg)
					if err := fast.Unpack(out); err != nil {
						t.Fatalf("%s/%s: %v", mode, dns.TypeToString[qtype], err)
					}
					if fast.String() != slow.String() {
						t.Errorf("%s (rule answer %q) %s edns=%v:\nfast:\n%s\nfull:\n%s", mode, answer, dns.TypeToString[qtype], edns, fast, slow)
					}
				}
			}
		}
	}
}
