package main

import (
	"net/netip"

	"github.com/dnsward/dnsward/blocklist"
	"github.com/dnsward/dnsward/metrics"
	"github.com/dnsward/dnsward/resolver"
)

// policyAdapter lets the resolver ask the blocklist engine without either
// package importing the other.
type policyAdapter struct{ e *blocklist.Engine }

// ruleAnswers maps the answers RPZ rules ask for to the resolver's modes.
var ruleAnswers = [...]string{
	blocklist.AnswerDefault:  "",
	blocklist.AnswerNXDomain: resolver.AnswerNXDomain,
	blocklist.AnswerNoData:   resolver.AnswerNoData,
	blocklist.AnswerDrop:     resolver.AnswerDrop,
	blocklist.AnswerTCPOnly:  resolver.AnswerTCPOnly,
	blocklist.AnswerLocal:    resolver.AnswerLocal,
}

func identity(c resolver.Client) blocklist.Identity {
	return blocklist.Identity{Client: c.Addr, Token: c.Token}
}

func (p policyAdapter) GroupOf(c resolver.Client) string { return p.e.GroupOf(identity(c)) }

func (p policyAdapter) Decide(c resolver.Client, qname string) resolver.Decision {
	return decision(p.e.DecideFor(identity(c), qname))
}

// DecideAddrs judges an answer's addresses: the first blocked one
// decides, else the first monitored one; allowed when the client's group
// has no network lists (one atomic load when none has).
func (p policyAdapter) DecideAddrs(c resolver.Client, addrs []netip.Addr) resolver.Decision {
	if len(addrs) == 0 || !p.e.HasAddrRules() {
		return resolver.Decision{}
	}
	ap := p.e.AddrPolicy(identity(c))
	if !ap.Active() {
		return resolver.Decision{}
	}
	var monitored *blocklist.Verdict
	for _, a := range addrs {
		switch v := ap.Decide(a); v.Action {
		case blocklist.Block:
			return decision(v)
		case blocklist.Monitor:
			if monitored == nil {
				monitored = &v
			}
		}
	}
	if monitored != nil {
		return decision(*monitored)
	}
	return resolver.Decision{}
}

func decision(v blocklist.Verdict) resolver.Decision {
	d := resolver.Decision{Group: v.Group, List: v.List, Rule: v.Rule, TokenID: v.TokenID, Local: v.Local}
	switch v.Action {
	case blocklist.Block:
		d.Action = resolver.ActionBlock
	case blocklist.Monitor:
		d.Action = resolver.ActionMonitor
	case blocklist.Refuse:
		d.Action = resolver.ActionRefuse
	}
	if int(v.Answer) < len(ruleAnswers) {
		d.Answer = ruleAnswers[v.Answer]
	}
	return d
}

func recordList(rec *metrics.Recorder, s blocklist.ListStatus) {
	rec.ListUpdated(s.Name, s.Rules, s.Rejected, s.OK, s.LastReload)
	recordZone(rec, s)
}
