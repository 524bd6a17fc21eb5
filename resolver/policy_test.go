package resolver

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// suffixPolicy blocks names under the given suffixes for every client
// except those listed in guests. The real engine is tested end to end in
// cmd/dnsward; this keeps the resolver's own tests about DNS.
type suffixPolicy struct {
	block    map[string]string // suffix → list
	monitor  map[string]string
	guests   map[netip.Addr]bool
	answer   string
	local    []dns.RR       // with answer AnswerLocal: the rule's records
	networks []netip.Prefix // answers holding these addresses are blocked
}

func (p *suffixPolicy) GroupOf(Client) string { return "test" }

// DecideAddrs blocks answers holding an address in p.networks.
func (p *suffixPolicy) DecideAddrs(c Client, addrs []netip.Addr) Decision {
	for _, a := range addrs {
		for _, n := range p.networks {
			if n.Contains(a) {
				return Decision{Action: ActionBlock, Group: "test", List: "networks", Rule: n.String()}
			}
		}
	}
	return Decision{}
}

func (p *suffixPolicy) Decide(c Client, qname string) Decision {
	client := c.Addr
	if p.guests[client] {
		return Decision{Group: "guests"}
	}
	name := strings.TrimSuffix(strings.ToLower(qname), ".")
	for {
		if list, ok := p.block[name]; ok {
			return Decision{Action: ActionBlock, Group: "gov", List: list, Rule: name, Answer: p.answer, Local: p.local}
		}
		if list, ok := p.monitor[name]; ok {
			return Decision{Action: ActionMonitor, Group: "gov", List: list, Rule: name}
		}
		i := strings.IndexByte(name, '.')
		if i < 0 {
			return Decision{Group: "gov"}
		}
		name = name[i+1:]
	}
}

func TestBlockedAnswerModes(t *testing.T) {
	up := startUpstream(t, "www.tiktok.com. 300 IN A 192.0.2.9", "www.tiktok.com. 300 IN MX 10 mx.tiktok.com.")
	pol := &suffixPolicy{block: map[string]string{"tiktok.com": "tiktok"}}
	for _, tc := range []struct {
		mode      string
		qtype     uint16
		wantRcode int
		wantAddr  string
	}{
		{AnswerNXDomain, dns.TypeA, dns.RcodeNameError, ""},
		{AnswerNoData, dns.TypeA, dns.RcodeSuccess, ""},
		{AnswerNullIP, dns.TypeA, dns.RcodeSuccess, "0.0.0.0"},
		{AnswerNullIP, dns.TypeAAAA, dns.RcodeSuccess, "::"},
		{AnswerNullIP, dns.TypeMX, dns.RcodeSuccess, ""},
		{AnswerSinkhole, dns.TypeA, dns.RcodeSuccess, "10.0.0.53"},
		{AnswerSinkhole, dns.TypeAAAA, dns.RcodeSuccess, "fd00::53"},
		{AnswerRefused, dns.TypeA, dns.RcodeRefused, ""},
	} {
		cfg := Config{Blocking: BlockingConfig{Answer: tc.mode, TTL: 60e9, Sinkhole: SinkholeConfig{IPv4: "10.0.0.53", IPv6: "fd00::53"}}}
		srv := startResolver(t, cfg, Options{Policy: pol}, up.addr)
		resp := ask(t, "udp", srv.addr, "WWW.TikTok.COM.", tc.qtype, true)
		label := tc.mode + "/" + dns.TypeToString[tc.qtype]
		if resp.Rcode != tc.wantRcode {
			t.Fatalf("%s: rcode %s, want %s", label, dns.RcodeToString[resp.Rcode], dns.RcodeToString[tc.wantRcode])
		}
		if resp.Question[0].Name != "WWW.TikTok.COM." {
			t.Errorf("%s: question not echoed as asked: %s", label, resp.Question[0].Name)
		}
		switch {
		case tc.wantAddr != "":
			if len(resp.Answer) != 1 || !strings.HasSuffix(resp.Answer[0].String(), "\t"+tc.wantAddr) || resp.Answer[0].Header().Ttl != 60 {
				t.Errorf("%s: answer %v, want %s with TTL 60", label, resp.Answer, tc.wantAddr)
			}
		case tc.mode != AnswerRefused:
			if len(resp.Answer) != 0 || len(resp.Ns) != 1 || resp.Ns[0].Header().Ttl != 60 {
				t.Errorf("%s: want no answer and an SOA with TTL 60, got %v / %v", label, resp.Answer, resp.Ns)
			}
		}
		if text := edeText(resp); !strings.Contains(text, "tiktok") || !strings.Contains(text, "gov") {
			t.Errorf("%s: EDE 15 missing or without list and group: %q", label, text)
		}
	}
	if up.queries.Load() != 0 {
		t.Fatalf("blocked names reached the upstream %d times", up.queries.Load())
	}
}

func edeText(m *dns.Msg) string {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok && e.InfoCode == dns.ExtendedErrorCodeBlocked {
				return e.ExtraText
			}
		}
	}
	return ""
}

func TestRuleAnswerOverridesMode(t *testing.T) {
	up := startUpstream(t)
	pol := &suffixPolicy{block: map[string]string{"tiktok.com": "rpz"}, answer: AnswerNoData}
	srv := startResolver(t, Config{}, Options{Policy: pol}, up.addr) // mode nxdomain
	if resp := ask(t, "udp", srv.addr, "tiktok.com.", dns.TypeA, false); resp.Rcode != dns.RcodeSuccess {
		t.Fatalf("RPZ NODATA rule answered %s", dns.RcodeToString[resp.Rcode])
	}
}

func TestCNAMECloakingBlockedPerClient(t *testing.T) {
	up := startUpstream(t,
		"video.example.com. 300 IN CNAME v16.tiktokcdn.com.",
		"v16.tiktokcdn.com. 300 IN A 192.0.2.16")
	pol := &suffixPolicy{block: map[string]string{"tiktokcdn.com": "bytedance"},
		guests: map[netip.Addr]bool{netip.MustParseAddr("127.0.0.3"): true}}
	srv := startResolver(t, Config{Cache: CacheConfig{MaxEntries: 100}}, Options{Policy: pol}, up.addr)

	resp := ask(t, "udp", srv.addr, "video.example.com.", dns.TypeA, true)
	if resp.Rcode != dns.RcodeNameError || !strings.Contains(edeText(resp), "bytedance") {
		t.Fatalf("cloaked CNAME not blocked: %v", resp)
	}
	// The same cached answer is served whole to a guest.
	guest := askFrom(t, "127.0.0.3", srv.addr, "video.example.com.", dns.TypeA)
	if guest.Rcode != dns.RcodeSuccess || len(guest.Answer) != 2 {
		t.Fatalf("guest did not get the CNAME chain: %v", guest)
	}
	// And blocked again for the government client from the cache.
	if again := ask(t, "udp", srv.addr, "video.example.com.", dns.TypeA, false); again.Rcode != dns.RcodeNameError {
		t.Fatalf("cached cloaked answer not blocked: %v", again)
	}
	if up.queries.Load() != 1 {
		t.Fatalf("upstream asked %d times, want 1 (shared cache)", up.queries.Load())
	}
}

func TestMonitorResolvesNormally(t *testing.T) {
	up := startUpstream(t, "app.newapp.example. 300 IN A 192.0.2.7")
	pol := &suffixPolicy{monitor: map[string]string{"newapp.example": "newapp"}}
	srv := startResolver(t, Config{}, Options{Policy: pol}, up.addr)
	if resp := ask(t, "udp", srv.addr, "app.newapp.example.", dns.TypeA, false); len(resp.Answer) != 1 {
		t.Fatalf("monitored name did not resolve: %v", resp)
	}
}
