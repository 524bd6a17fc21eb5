package resolver

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/resolver/upstream"
)

func benchResolver(b *testing.B, pol Policy) *Resolver {
	up := startUpstreamF(b, testZone...)
	fwd, err := upstream.New(upstream.Config{Servers: []string{up.addr}, Strategy: "failover", Timeout: time.Second}, upstream.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { fwd.Close() })
	opts := Options{Config: DefaultConfig(), Upstream: fwd}
	if pol != nil {
		opts.Policy = pol
	}
	r, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// BenchmarkHandlerCached is the full handler path for a cache hit, without
// sockets: what each cached query costs in CPU and allocations.
func BenchmarkHandlerCached(b *testing.B) {
	r := benchResolver(b, nil)
	req := new(dns.Msg).SetQuestion("a.example.", dns.TypeA)
	w := &recordingWriter{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}}
	r.ServeDNS(w, req) // warm the cache
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w.msgs = w.msgs[:0]
		r.ServeDNS(w, req)
	}
}

// BenchmarkHandlerBlocked is the handler path for a blocked name.
func BenchmarkHandlerBlocked(b *testing.B) {
	r := benchResolver(b, &suffixPolicy{block: map[string]string{"tiktok.com": "tiktok"}})
	req := new(dns.Msg).SetQuestion("www.tiktok.com.", dns.TypeA)
	w := &recordingWriter{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}}
	b.ReportAllocs()
	for b.Loop() {
		w.msgs = w.msgs[:0]
		r.ServeDNS(w, req)
	}
}

// BenchmarkUDPCachedRoundTrip measures one cached query over a real
// loopback UDP socket, client included.
func BenchmarkUDPCachedRoundTrip(b *testing.B) {
	up := startUpstreamF(b, testZone...)
	fwd, err := upstream.New(upstream.Config{Servers: []string{up.addr}, Strategy: "failover", Timeout: time.Second}, upstream.Options{})
	if err != nil {
		b.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Listen = []string{"127.0.0.1:0"}
	r, err := New(Options{Config: cfg, Upstream: fwd})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Start(); err != nil {
		b.Fatal(err)
	}
	conn, err := dns.Dial("udp", r.Addrs()[0].String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	req := new(dns.Msg).SetQuestion("a.example.", dns.TypeA)
	b.ReportAllocs()
	for b.Loop() {
		if err := conn.WriteMsg(req); err != nil {
			b.Fatal(err)
		}
		if _, err := conn.ReadMsg(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFastPathCached is the UDP loop's work for one cache hit,
// without the socket calls.
func BenchmarkFastPathCached(b *testing.B) {
	r := benchResolver(b, &suffixPolicy{block: map[string]string{"tiktok.com": "tiktok"}})
	req := new(dns.Msg).SetQuestion("a.example.", dns.TypeA)
	req.SetEdns0(1232, false)
	w := &recordingWriter{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}}
	r.ServeDNS(w, req)
	benchFastPath(b, r, req)
}

// BenchmarkFastPathBlocked is the UDP loop's work for one blocked name
// (policy decision plus the wire-built answer with EDE).
func BenchmarkFastPathBlocked(b *testing.B) {
	r := benchResolver(b, &suffixPolicy{block: map[string]string{"tiktok.com": "tiktok"}})
	req := new(dns.Msg).SetQuestion("www.tiktok.com.", dns.TypeA)
	req.SetEdns0(1232, false)
	benchFastPath(b, r, req)
}

func benchFastPath(b *testing.B, r *Resolver, req *dns.Msg) {
	pkt, _ := req.Pack()
	from := netip.MustParseAddrPort("127.0.0.1:5000")
	var s fastScratch
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := r.fastUDP(pkt, from, &s); !ok {
			b.Fatal("fast path not taken")
		}
	}
}
