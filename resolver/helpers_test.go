package resolver

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnstest"

	"github.com/dnsward/dnsward/resolver/upstream"
)

// testUpstream is a real DNS server on 127.0.0.1 (UDP and TCP, one port)
// that answers from a zone in memory and counts the queries it sees.
type testUpstream struct {
	addr    string
	queries atomic.Int64
	mu      sync.Mutex
	records map[string][]dns.RR // key: lower-case name + "/" + type
	rcodes  map[string]int      // names answered with an rcode (and SOA)
	udpCap  atomic.Int64        // truncate UDP answers above this size (0: 512/EDNS)
	servers []*dns.Server
}

func startUpstream(t *testing.T, zone ...string) *testUpstream {
	return startUpstreamF(t, zone...)
}

// startUpstreamF works for tests, benchmarks and fuzz targets alike.
func startUpstreamF(t testing.TB, zone ...string) *testUpstream {
	t.Helper()
	u := &testUpstream{records: map[string][]dns.RR{}, rcodes: map[string]int{}}
	for _, z := range zone {
		u.add(t, z)
	}
	pc, l := dnstest.ListenUDPAndTCP(t)
	u.addr = pc.LocalAddr().String()
	u.servers = []*dns.Server{{PacketConn: pc, Handler: u}, {Listener: l, Handler: u}}
	for _, s := range u.servers {
		dnstest.Start(t, s)
	}
	return u
}

func (u *testUpstream) stop() {
	for _, s := range u.servers {
		_ = s.Shutdown()
	}
}

func (u *testUpstream) add(t testing.TB, text string) {
	t.Helper()
	rr, err := dns.NewRR(text)
	if err != nil {
		t.Fatalf("bad test record %q: %v", text, err)
	}
	h := rr.Header()
	k := strings.ToLower(h.Name) + "/" + dns.TypeToString[h.Rrtype]
	u.mu.Lock()
	u.records[k] = append(u.records[k], rr)
	u.mu.Unlock()
}

// setRcode makes name answer with rcode plus an SOA whose minimum is soaMin.
func (u *testUpstream) setRcode(name string, rcode int) {
	u.mu.Lock()
	u.rcodes[strings.ToLower(dns.Fqdn(name))] = rcode
	u.mu.Unlock()
}

func (u *testUpstream) hasName(name string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	for k := range u.records {
		if strings.HasPrefix(k, name+"/") {
			return true
		}
	}
	return false
}

func (u *testUpstream) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	q := req.Question[0]
	if q.Name != "." { // the resolver's readiness probe is not client traffic
		u.queries.Add(1)
	}
	m := new(dns.Msg).SetReply(req)
	name := strings.ToLower(q.Name)
	u.mu.Lock()
	rcode, hasRcode := u.rcodes[name]
	m.Answer = append(m.Answer, u.records[name+"/"+dns.TypeToString[q.Qtype]]...)
	if len(m.Answer) == 0 && q.Qtype != dns.TypeCNAME {
		if c := u.records[name+"/CNAME"]; len(c) > 0 {
			m.Answer = append(m.Answer, c...)
			target := strings.ToLower(c[0].(*dns.CNAME).Target)
			m.Answer = append(m.Answer, u.records[target+"/"+dns.TypeToString[q.Qtype]]...)
		}
	}
	u.mu.Unlock()
	switch {
	case hasRcode:
		m.Rcode = rcode
		m.Answer = nil
		soa, _ := dns.NewRR("example. 300 IN SOA ns.example. host.example. 1 3600 600 86400 30")
		m.Ns = []dns.RR{soa}
	case len(m.Answer) == 0:
		if !u.hasName(name) {
			m.Rcode = dns.RcodeNameError
		}
		soa, _ := dns.NewRR("example. 300 IN SOA ns.example. host.example. 1 3600 600 86400 30")
		m.Ns = []dns.RR{soa}
	}
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), opt.Do())
	}
	if w.LocalAddr().Network() == "udp" {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		if c := int(u.udpCap.Load()); c > 0 {
			size = min(size, c)
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

// clock is a settable time source, so TTL tests need no sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type testServer struct {
	*Resolver
	addr string
}

// startResolver runs a resolver on 127.0.0.1:0 forwarding to upstreams.
func startResolver(t *testing.T, cfg Config, opts Options, upstreams ...string) *testServer {
	t.Helper()
	r := newTestResolver(t, cfg, opts, upstreams...)
	startUntilCleanup(t, r)
	return &testServer{Resolver: r, addr: r.Addrs()[0].String()}
}

// startUntilCleanup starts r and shuts it down when the test ends.
func startUntilCleanup(tb testing.TB, r *Resolver) {
	tb.Helper()
	if err := r.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.Shutdown(ctx)
	})
}

// newTestResolver is startResolver's resolver, not started.
func newTestResolver(t *testing.T, cfg Config, opts Options, upstreams ...string) *Resolver {
	t.Helper()
	if cfg.Listen == nil {
		cfg.Listen = []string{"127.0.0.1:0"}
	}
	if cfg.Access.Allow == nil {
		cfg.Access.Allow = DefaultAccessAllow
	}
	if cfg.Blocking.Answer == "" {
		cfg.Blocking = DefaultConfig().Blocking
	}
	if cfg.RateLimit.IPv6Prefix == 0 {
		cfg.RateLimit = DefaultRateLimitConfig()
	}
	if cfg.TCP.MaxConnections == 0 {
		cfg.TCP = DefaultConfig().TCP
	}
	if cfg.Cache.MaxTTL == 0 {
		c := DefaultConfig().Cache
		c.MaxEntries, c.Prefetch = cfg.Cache.MaxEntries, cfg.Cache.Prefetch
		cfg.Cache = c
	}
	if opts.Upstream == nil {
		opts.Upstream = newTestForwarder(t, upstreams...)
	}
	opts.Config = cfg
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// ask sends one real query over net ("udp" or "tcp") and fails the test
// on a transport error.
func ask(t *testing.T, net, addr, name string, qtype uint16, edns bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg).SetQuestion(name, qtype)
	if edns {
		m.SetEdns0(4096, false)
	}
	c := &dns.Client{Net: net, Timeout: 3 * time.Second, UDPSize: 65535}
	resp, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("query %s %s over %s: %v", name, dns.TypeToString[qtype], net, err)
	}
	if resp.Id != m.Id {
		t.Fatalf("response ID %d, query ID %d", resp.Id, m.Id)
	}
	return resp
}

// askFrom sends a UDP query from a chosen loopback source address, to act
// as a different client.
func askFrom(t *testing.T, src, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: "udp", Timeout: 3 * time.Second,
		Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(src)}}}
	resp, _, err := c.Exchange(new(dns.Msg).SetQuestion(name, qtype), addr)
	if err != nil {
		t.Fatalf("query from %s: %v", src, err)
	}
	return resp
}

func newTestForwarder(t testing.TB, upstreams ...string) *upstream.Forwarder {
	t.Helper()
	fwd, err := upstream.New(upstream.Config{Servers: upstreams, Strategy: "failover", Timeout: 500 * time.Millisecond}, upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fwd.Close() })
	return fwd
}

func shutdown(t testing.TB, r *Resolver) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}
