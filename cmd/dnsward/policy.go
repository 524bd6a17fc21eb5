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

// ruleAnswers maps RPZ actions to the answers resolver.Decision knows.
//
// TODO(lead): the resolver does not yet answer AnswerDrop (no reply),
// AnswerTCPOnly (TC=1 over UDP, resolve over TCP) or AnswerLocal (answer
// Verdict.LocalAnswer, following a CNAME); until it does they map to the
// closest answer it has: drop to REFUSED (no data, nothing cached by the
// client), local data to the configured blocking answer. TCP-only maps to
// allow in Decide below, since over TCP it resolves normally.
var ruleAnswers = [...]string{
	blocklist.AnswerDefault:  "",
	blocklist.AnswerNXDomain: resolver.AnswerNXDomain,
	blocklist.AnswerNoData:   resolver.AnswerNoData,
	blocklist.AnswerDrop:     resolver.AnswerRefused,
	blocklist.AnswerTCPOnly:  "",
	blocklist.AnswerLocal:    "",
}

func (p policyAdapter) Decide(client netip.Addr, qname string) resolver.Decision {
	v := p.e.Decide(client, qname)
	d := resolver.Decision{Group: v.Group, List: v.List, Rule: v.Rule}
	switch {
	case v.Action == blocklist.Block && v.Answer == blocklist.AnswerTCPOnly:
		// TODO(lead): answer TC=1 over UDP; allowed until then.
	case v.Action == blocklist.Block:
		d.Action = resolver.ActionBlock
	case v.Action == blocklist.Monitor:
		d.Action = resolver.ActionMonitor
	}
	if int(v.Answer) < len(ruleAnswers) {
		d.Answer = ruleAnswers[v.Answer]
	}
	return d
}

func recordList(rec *metrics.Recorder, s blocklist.ListStatus) {
	rec.ListUpdated(s.Name, s.Rules, s.Rejected, s.OK, s.LastReload)
}
