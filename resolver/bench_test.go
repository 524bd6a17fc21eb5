package resolver

import (
	"context"
	"net"
	"net/netip"
	"strconv"
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
	conn := benchClient(b)
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

// BenchmarkUDPMissRoundTrip measures one cache miss over real loopback
// sockets: client, dnsward's read loop, the upstream (a miekg/dns test
// server, most of the cost) and back.
func BenchmarkUDPMissRoundTrip(b *testing.B) {
	conn := benchClient(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if err := conn.WriteMsg(new(dns.Msg).SetQuestion("n"+strconv.Itoa(i)+".example.", dns.TypeA)); err != nil {
			b.Fatal(err)
		}
		if _, err := conn.ReadMsg(); err != nil {
			b.Fatal(err)
		}
	}
}

// benchClient starts a resolver on loopback forwarding to a test upstream
// and returns a UDP client connected to it.
func benchClient(b *testing.B) *dns.Conn {
	up := startUpstreamF(b, testZone...)
	fwd, err := upstream.New(upstream.Config{Servers: []string{up.addr}, Strategy: "failover", Timeout: time.Second}, upstream.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { fwd.Close() })
	cfg := DefaultConfig()
	cfg.Listen = []string{"127.0.0.1:0"}
	r, err := New(Options{Config: cfg, Upstream: fwd})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.Shutdown(ctx)
	})
	conn, err := dns.Dial("udp", r.Addrs()[0].String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return conn
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
