package resolver

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dnsward/dnsward/metrics"
	"github.com/dnsward/dnsward/resolver/upstream"
)

func benchResolver(b *testing.B, pol Policy) *Resolver {
	up := startUpstreamF(b, testZone...)
	fwd, err := upstream.New(upstream.Config{Servers: []string{up.addr}, Strategy: "failover", Timeout: time.Second}, upstream.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { fwd.Close() })
	rec, err := metrics.New(prometheus.NewRegistry(), metrics.Options{})
	if err != nil {
		b.Fatal(err)
	}
	opts := Options{Config: DefaultConfig(), Upstream: fwd, Metrics: rec}
	if os.Getenv("NOREC") != "" {
		opts.Metrics = nil
	}
	if pol != nil {
		opts.Policy = pol
	}
	r, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// BenchmarkServeCached is the pipeline's work for one cached UDP answer,
// without the socket calls, with the metrics recorder live.
func BenchmarkServeCached(b *testing.B) {
	r := benchResolver(b, &suffixPolicy{block: map[string]string{"tiktok.com": "tiktok"}})
	req := new(dns.Msg).SetQuestion("a.example.", dns.TypeA)
	req.SetEdns0(1232, false)
	benchServe(b, r, req)
}

// BenchmarkServeBlocked is the pipeline's work for one blocked name
// (policy decision plus the wire-built answer with EDE).
func BenchmarkServeBlocked(b *testing.B) {
	r := benchResolver(b, &suffixPolicy{block: map[string]string{"tiktok.com": "tiktok"}})
	req := new(dns.Msg).SetQuestion("www.tiktok.com.", dns.TypeA)
	req.SetEdns0(1232, false)
	benchServe(b, r, req)
}

func benchServe(b *testing.B, r *Resolver, req *dns.Msg) {
	pkt, _ := req.Pack()
	serveWire(b, r, pkt, "127.0.0.1") // warm the cache
	s := newScratch()
	b.ReportAllocs()
	for b.Loop() {
		if out, pending := serveOnce(r, pkt, s); pending || out == nil {
			b.Fatal("not answered at once")
		}
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
	startUntilCleanup(b, r)
	conn, err := dns.Dial("udp", r.Addrs()[0].String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return conn
}
