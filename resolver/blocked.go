package resolver

import (
	"errors"
	"net"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/metrics"
)

var errServFail = errors.New("upstream answered SERVFAIL")

// blockedAnswers is the parsed blocking config, ready for the query path.
type blockedAnswers struct {
	mode       string
	ttl        uint32
	ipv4, ipv6 net.IP
}

func newBlockedAnswers(c BlockingConfig) blockedAnswers {
	b := blockedAnswers{mode: c.Answer, ttl: uint32(c.TTL.Seconds())}
	if a, err := netip.ParseAddr(c.Sinkhole.IPv4); err == nil {
		b.ipv4 = a.AsSlice()
	}
	if a, err := netip.ParseAddr(c.Sinkhole.IPv6); err == nil {
		b.ipv6 = a.AsSlice()
	}
	return b
}

// blocked synthesizes the policy answer for req and records why. Every
// qtype gets an answer: A/AAAA the sinkhole or null address where the mode
// has one, everything else NODATA.
func (r *Resolver) blocked(req *dns.Msg, d Decision, live *settings, ev *metrics.QueryEvent) (*dns.Msg, []dns.EDNS0) {
	b := live.blocking
	mode := b.mode
	if d.Answer != "" {
		mode = d.Answer
	}
	ev.Outcome, ev.Group, ev.List, ev.Rule, ev.Answer = metrics.OutcomeBlocked, d.Group, d.List, d.Rule, mode
	ev.Monitored = false

	q := req.Question[0]
	m := new(dns.Msg).SetReply(req)
	m.Authoritative = false
	switch mode {
	case AnswerRefused:
		m.Rcode = dns.RcodeRefused
	case AnswerNXDomain:
		m.Rcode = dns.RcodeNameError
	case AnswerNullIP:
		m.Answer = addressAnswer(q, b.ttl, net.IPv4zero.To4(), net.IPv6zero)
	case AnswerSinkhole:
		m.Answer = addressAnswer(q, b.ttl, b.ipv4, b.ipv6)
	}
	if m.Rcode != dns.RcodeRefused && len(m.Answer) == 0 {
		m.Ns = []dns.RR{blockedSOA(q.Name, b.ttl)}
	}
	ede := &dns.EDNS0_EDE{
		InfoCode:  dns.ExtendedErrorCodeBlocked,
		ExtraText: "blocked by list " + d.List + " (rule " + d.Rule + ") for group " + d.Group,
	}
	return m, []dns.EDNS0{ede}
}

func addressAnswer(q dns.Question, ttl uint32, v4, v6 net.IP) []dns.RR {
	hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: ttl}
	switch {
	case q.Qtype == dns.TypeA && v4 != nil:
		hdr.Rrtype = dns.TypeA
		return []dns.RR{&dns.A{Hdr: hdr, A: v4}}
	case q.Qtype == dns.TypeAAAA && v6 != nil:
		hdr.Rrtype = dns.TypeAAAA
		return []dns.RR{&dns.AAAA{Hdr: hdr, AAAA: v6}}
	}
	return nil
}

// blockedSOA lets clients cache the negative answer for the block TTL
// (RFC 2308), so a policy change reaches them within that time.
func blockedSOA(name string, ttl uint32) dns.RR {
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns:      "blocked.dnsward.",
		Mbox:    "hostmaster.blocked.dnsward.",
		Serial:  1,
		Refresh: 3600, Retry: 600, Expire: 86400,
		Minttl: ttl,
	}
}

// inspectChain checks every CNAME target in an answer against this
// client's policy: a chain that passes through a blocked name is blocked
// too (CNAME cloaking). Monitor matches are noted on the event.
func (r *Resolver) inspectChain(ev *metrics.QueryEvent, resp *dns.Msg) (Decision, bool) {
	for _, rr := range resp.Answer {
		c, ok := rr.(*dns.CNAME)
		if !ok {
			continue
		}
		d := r.policy.Decide(ev.Client, c.Target)
		switch d.Action {
		case ActionBlock:
			return d, true
		case ActionMonitor:
			if !ev.Monitored {
				ev.Monitored, ev.List, ev.Rule = true, d.List, d.Rule
			}
		}
	}
	return Decision{}, false
}

// allowed reports whether client may query; the zero Addr (unknown
// transport) is refused.
func allowed(access []netip.Prefix, client netip.Addr) bool {
	for _, p := range access {
		if p.Contains(client) {
			return true
		}
	}
	return false
}
