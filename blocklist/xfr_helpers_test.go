package blocklist

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnstest"
)

// testPrimary is a small authoritative server for one RPZ zone on
// loopback, with every version it served, so it answers AXFR, IXFR (from
// any older version) and SOA queries, optionally requiring TSIG.
type testPrimary struct {
	t    testing.TB
	zone string
	addr string // host:port, UDP and TCP

	mu        sync.Mutex
	versions  []zoneVersion // oldest first
	refuseIX  bool          // answer IXFR with REFUSED
	fullIX    bool          // answer IXFR with the whole zone
	soaOnlyIX bool          // answer IXFR with only the current SOA
	requests  map[uint16]int
	keyName   string
	expire    uint32
	udp, tcp  *dns.Server
	stoppedMu sync.Once
}

type zoneVersion struct {
	serial uint32
	names  []string // blocked owner names, relative
}

const testKeyName = dnstest.TSIGKeyFQDN
const testSecret = dnstest.TSIGSecret

func startTestPrimary(t testing.TB, zone string, key bool, names ...string) *testPrimary {
	t.Helper()
	p := &testPrimary{t: t, zone: dns.Fqdn(zone), requests: map[uint16]int{}, expire: 3600}
	p.versions = []zoneVersion{{serial: 1, names: names}}
	secrets := map[string]string(nil)
	if key {
		p.keyName = testKeyName
		secrets = map[string]string{testKeyName: testSecret}
	}
	pc, ln := dnstest.ListenUDPAndTCP(t) // a port free for both, or TCP's bind can fail
	p.addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(p.serve)
	p.udp = &dns.Server{PacketConn: pc, Handler: h, TsigSecret: secrets}
	p.tcp = &dns.Server{Listener: ln, Handler: h, TsigSecret: secrets}
	go p.udp.ActivateAndServe()
	go p.tcp.ActivateAndServe()
	t.Cleanup(p.stop)
	return p
}

func (p *testPrimary) stop() {
	p.stoppedMu.Do(func() {
		p.udp.Shutdown()
		p.tcp.Shutdown()
	})
}

func (p *testPrimary) source() string {
	return "axfr://" + p.addr + "/" + strings.TrimSuffix(p.zone, ".")
}

func (p *testPrimary) addrPort() netip.AddrPort { return netip.MustParseAddrPort(p.addr) }

// publish adds a version with names and returns its serial.
func (p *testPrimary) publish(names ...string) uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	v := zoneVersion{serial: p.versions[len(p.versions)-1].serial + 1, names: names}
	p.versions = append(p.versions, v)
	return v.serial
}

func (p *testPrimary) set(f func(p *testPrimary)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

func (p *testPrimary) count(qtype uint16) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests[qtype]
}

func (p *testPrimary) soa(serial uint32) *dns.SOA {
	return &dns.SOA{Hdr: dns.RR_Header{Name: p.zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
		Ns: "ns." + p.zone, Mbox: "admin." + p.zone, Serial: serial, Refresh: 3600, Retry: 1, Expire: p.expire, Minttl: 60}
}

func (p *testPrimary) records(names []string) []dns.RR {
	ns := &dns.NS{Hdr: dns.RR_Header{Name: p.zone, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 60}, Ns: "localhost."}
	rrs := []dns.RR{ns}
	for _, n := range names {
		rrs = append(rrs, &dns.CNAME{Hdr: dns.RR_Header{Name: n + "." + p.zone, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 60}, Target: "."})
	}
	return rrs
}

func (p *testPrimary) serve(w dns.ResponseWriter, r *dns.Msg) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := r.Question[0]
	p.requests[q.Qtype]++
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if p.keyName != "" {
		t := r.IsTsig()
		if t == nil || w.TsigStatus() != nil {
			m.SetRcode(r, dns.RcodeNotAuth)
			if t != nil {
				m.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
				m.Extra[0].(*dns.TSIG).Error = dns.RcodeBadSig
			}
			w.WriteMsg(m)
			return
		}
		m.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
	}
	cur := p.versions[len(p.versions)-1]
	switch q.Qtype {
	case dns.TypeSOA:
		m.Answer = []dns.RR{p.soa(cur.serial)}
		w.WriteMsg(m)
	case dns.TypeAXFR:
		p.sendXFR(w, r, p.full(cur))
	case dns.TypeIXFR:
		p.answerIXFR(w, r, m, cur)
	default:
		m.SetRcode(r, dns.RcodeRefused)
		w.WriteMsg(m)
	}
}

func (p *testPrimary) full(v zoneVersion) []dns.RR {
	return append(append([]dns.RR{p.soa(v.serial)}, p.records(v.names)...), p.soa(v.serial))
}

func (p *testPrimary) answerIXFR(w dns.ResponseWriter, r, m *dns.Msg, cur zoneVersion) {
	have := r.Ns[0].(*dns.SOA).Serial
	from := -1
	for i, v := range p.versions {
		if v.serial == have {
			from = i
		}
	}
	switch {
	case p.refuseIX:
		m.SetRcode(r, dns.RcodeRefused)
		w.WriteMsg(m)
	case have == cur.serial || p.soaOnlyIX:
		m.Answer = []dns.RR{p.soa(cur.serial)}
		w.WriteMsg(m)
	case p.fullIX || from < 0:
		p.sendXFR(w, r, p.full(cur))
	default:
		rrs := []dns.RR{p.soa(cur.serial)}
		for i := from; i+1 < len(p.versions); i++ {
			old, next := p.versions[i], p.versions[i+1]
			rrs = append(rrs, p.soa(old.serial))
			rrs = append(rrs, p.records(minus(old.names, next.names))[1:]...)
			rrs = append(rrs, p.soa(next.serial))
			rrs = append(rrs, p.records(minus(next.names, old.names))[1:]...)
		}
		p.sendXFR(w, r, append(rrs, p.soa(cur.serial)))
	}
}

// sendXFR sends rrs in messages of at most 100 records, signed as the
// request was.
func (p *testPrimary) sendXFR(w dns.ResponseWriter, r *dns.Msg, rrs []dns.RR) {
	ch := make(chan *dns.Envelope)
	tr := new(dns.Transfer)
	done := make(chan error, 1)
	go func() { done <- tr.Out(w, r, ch) }()
	for len(rrs) > 0 {
		n := min(len(rrs), 100)
		ch <- &dns.Envelope{RR: rrs[:n]}
		rrs = rrs[n:]
	}
	close(ch)
	if err := <-done; err != nil {
		p.t.Logf("test primary: transfer out: %v", err)
	}
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		found := false
		for _, y := range b {
			found = found || x == y
		}
		if !found {
			out = append(out, x)
		}
	}
	return out
}

// xfrConfig is a policy with one list fed by the zone, blocked for everyone.
func xfrConfig(src string, key bool) Config {
	cfg := Config{
		Lists:        map[string]ListConfig{"rpz": {Sources: []string{src}}},
		Groups:       []GroupConfig{{Name: "all", Clients: []string{"0.0.0.0/0"}, Block: []string{"rpz"}}},
		DefaultGroup: "all",
	}
	if key {
		cfg.TSIGKeys = map[string]TSIGKeyConfig{strings.TrimSuffix(testKeyName, "."): {Algorithm: "hmac-sha256", Secret: testSecret}}
		l := cfg.Lists["rpz"]
		l.TSIG = strings.TrimSuffix(testKeyName, ".")
		cfg.Lists["rpz"] = l
	}
	return cfg
}

func zoneOf(t testing.TB, e *Engine, list string) ZoneStatus {
	t.Helper()
	for _, ls := range e.Lists() {
		if ls.Name != list {
			continue
		}
		for _, s := range ls.Sources {
			if s.Zone != nil {
				return *s.Zone
			}
		}
	}
	t.Fatalf("list %q has no zone source", list)
	return ZoneStatus{}
}

// waitUntil polls cond every 10 ms for up to d.
func waitUntil(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < d {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", d, what)
	return 0
}

var _ = fmt.Sprintf
