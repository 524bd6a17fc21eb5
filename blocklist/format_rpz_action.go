package blocklist

import (
	"strings"

	"github.com/miekg/dns"
)

// apex is the zone origin that triggers are relative to: the SOA owner,
// else the first $ORIGIN, else the root (absolute names).
func (p *rpzParser) apex() string {
	switch {
	case p.zone != "":
		return p.zone
	case p.firstOrigin != "":
		return p.firstOrigin
	}
	return "."
}

// rpzAction is what one record asks for.
type rpzAction struct {
	kind   RuleKind
	answer RuleAnswer
	record dns.RR // local data
}

// classify turns one RPZ record into a rule, with RPZ's meaning (as BIND
// and Unbound implement it): a QNAME trigger "name" covers exactly that
// name and "*.name" the names below it; "N.x.x.x.x.rpz-ip" is a
// response-IP trigger for a network.
func (p *rpzParser) classify(line int, text []byte, rr dns.RR) {
	h := rr.Header()
	owner := dns.CanonicalName(h.Name)
	if h.Rrtype == dns.TypeSOA {
		if p.zone == "" {
			p.zone = owner
		}
		return
	}
	apex := p.apex()
	if owner == apex {
		return // the zone's own NS and other apex records
	}
	if !dns.IsSubDomain(apex, owner) {
		p.c.reject(line, text, "owner "+owner+" is outside the zone "+apex)
		return
	}
	trigger := strings.TrimSuffix(owner[:len(owner)-len(apex)], ".")
	if reason := unsupportedTrigger(trigger); reason != "" {
		p.c.reject(line, text, reason)
		return
	}
	act, reason := actionOf(rr, trigger)
	if reason == "" {
		reason = p.sameOwner(owner, act)
	}
	if reason != "" {
		p.c.reject(line, text, reason)
		return
	}
	r := parsedRule{kind: act.kind, answer: act.answer, record: act.record, line: line}
	if trigger == "rpz-ip" || strings.HasSuffix(trigger, ".rpz-ip") {
		ip := strings.TrimSuffix(strings.TrimSuffix(trigger, "rpz-ip"), ".")
		if r.prefix, reason = rpzIPNetwork(ip); reason != "" {
			p.c.reject(line, text, reason)
			return
		}
		p.c.sink.rule(r)
		return
	}
	name, below, reason := p.c.name.ruleName([]byte(trigger))
	if reason != "" {
		p.c.reject(line, text, reason+": "+trigger)
		return
	}
	r.name, r.scope = name, ScopeExact
	if below {
		r.scope = ScopeBelow
	}
	p.c.sink.rule(r)
}

// sameOwner refuses a second action for the owner of the previous record:
// a trigger has one CNAME action or a set of local-data records. (A
// repeat further away is kept out by the index: a list's first rule for a
// name decides.)
func (p *rpzParser) sameOwner(owner string, act rpzAction) string {
	prevOwner, prevData := p.lastOwner, p.lastData
	p.lastOwner = owner
	p.lastData = act.record != nil && act.record.Header().Rrtype != dns.TypeCNAME
	if owner != prevOwner || prevData && p.lastData {
		return ""
	}
	p.lastData = prevData // keep judging later records against the first action
	return "a second action for " + owner + ": a trigger has one CNAME action or only local-data records"
}

// unsupportedTrigger names the RPZ trigger types dnsward does not apply.
func unsupportedTrigger(trigger string) string {
	last := trigger[strings.LastIndexByte(trigger, '.')+1:]
	switch last {
	case "rpz-client-ip":
		return "client IP trigger (rpz-client-ip) is not supported: use groups to give clients their own policy"
	case "rpz-nsdname":
		return "name server name trigger (rpz-nsdname) is not supported"
	case "rpz-nsip":
		return "name server IP trigger (rpz-nsip) is not supported"
	}
	if last == "rpz-ip" && strings.HasPrefix(trigger, "*.") {
		return "wildcard rpz-ip trigger: an IP trigger names one network"
	}
	return ""
}

// actionOf maps a record to its RPZ action.
func actionOf(rr dns.RR, trigger string) (rpzAction, string) {
	cname, ok := rr.(*dns.CNAME)
	if !ok {
		return localData(rr)
	}
	if cname.Target == "" {
		return rpzAction{}, "CNAME without a target"
	}
	switch target := dns.CanonicalName(cname.Target); {
	case target == ".":
		return rpzAction{answer: AnswerNXDomain}, ""
	case target == "*.":
		return rpzAction{answer: AnswerNoData}, ""
	case target == "rpz-passthru.", target == trigger+".": // a CNAME to itself is the old PASSTHRU form
		return rpzAction{kind: KindPassthru}, ""
	case target == "rpz-drop.":
		return rpzAction{answer: AnswerDrop}, ""
	case target == "rpz-tcp-only.":
		return rpzAction{answer: AnswerTCPOnly}, ""
	case strings.HasPrefix(target, "rpz-"):
		return rpzAction{}, "unknown RPZ action CNAME " + target + " (known: ., *., rpz-passthru., rpz-drop., rpz-tcp-only.)"
	case strings.HasPrefix(target, "*."):
		return rpzAction{}, "CNAME to a wildcard target (" + target + ") is not supported"
	}
	return rpzAction{answer: AnswerLocal, record: rr}, ""
}

// localData accepts any record type a query can be answered with; zone
// structure and DNSSEC records are not policy.
func localData(rr dns.RR) (rpzAction, string) {
	switch t := rr.Header().Rrtype; t {
	case dns.TypeNS, dns.TypeDNAME, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3,
		dns.TypeNSEC3PARAM, dns.TypeDNSKEY, dns.TypeDS, dns.TypeZONEMD:
		return rpzAction{}, dns.TypeToString[t] + " record below the apex is not an RPZ action or local data"
	}
	return rpzAction{answer: AnswerLocal, record: rr}, ""
}
