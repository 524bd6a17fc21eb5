package main

import (
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

func (p policyAdapter) GroupOf(c resolver.Client) string {
	return p.e.GroupOf(blocklist.Identity{Client: c.Addr, Token: c.Token})
}

func (p policyAdapter) Decide(c resolver.Client, qname string) resolver.Decision {
	v := p.e.DecideFor(blocklist.Identity{Client: c.Addr, Token: c.Token}, qname)
	d := resolver.Decision{Group: v.Group, List: v.List, Rule: v.Rule, TokenID: v.TokenID}
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
}
