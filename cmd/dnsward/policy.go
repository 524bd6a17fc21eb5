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

var ruleAnswers = [...]string{
	blocklist.AnswerDefault:  "",
	blocklist.AnswerNXDomain: resolver.AnswerNXDomain,
	blocklist.AnswerNoData:   resolver.AnswerNoData,
}

func (p policyAdapter) Decide(client netip.Addr, qname string) resolver.Decision {
	v := p.e.Decide(client, qname)
	d := resolver.Decision{Group: v.Group, List: v.List, Rule: v.Rule}
	switch v.Action {
	case blocklist.Block:
		d.Action = resolver.ActionBlock
	case blocklist.Monitor:
		d.Action = resolver.ActionMonitor
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
