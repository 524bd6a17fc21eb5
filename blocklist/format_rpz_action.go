package blocklist

import (
	"strings"

	"github.com/miekg/dns"
)

// apex is the zone origin that QNAME triggers are relative to: the SOA
// owner, else the first $ORIGIN, else the root (absolute names).
func (p *rpzParser) apex() string {
	switch {
	case p.zone != "":
		return p.zone
	case p.firstOrigin != "":
		return p.firstOrigin
	}
	return "."
}

// classify turns one RPZ record into a rule. Supported are QNAME triggers
// with the NXDOMAIN ("CNAME ."), NODATA ("CNAME *.") and PASSTHRU actions.
// Like every dnsward list, a trigger covers the name and the names below
// it; "*.name" covers only the names below.
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
	qname := strings.TrimSuffix(owner[:len(owner)-len(apex)], ".")
	if reason := unsupportedTrigger(qname); reason != "" {
		p.c.reject(line, text, reason)
		return
	}
	kind, answer, reason := rpzAction(rr, qname)
	if reason != "" {
		p.c.reject(line, text, reason)
		return
	}
	name, below, reason := p.c.name.ruleName([]byte(qname))
	if reason != "" {
		p.c.reject(line, text, reason+": "+qname)
		return
	}
	p.c.add(name, below, kind, answer, line)
}

// unsupportedTrigger names the RPZ trigger types other than QNAME.
func unsupportedTrigger(qname string) string {
	last := qname[strings.LastIndexByte(qname, '.')+1:]
	switch last {
	case "rpz-ip":
		return "response IP trigger (rpz-ip) is not supported"
	case "rpz-client-ip":
		return "client IP trigger (rpz-client-ip) is not supported"
	case "rpz-nsdname":
		return "name server name trigger (rpz-nsdname) is not supported"
	case "rpz-nsip":
		return "name server IP trigger (rpz-nsip) is not supported"
	}
	return ""
}

// rpzAction maps the record to a rule kind and answer.
func rpzAction(rr dns.RR, qname string) (RuleKind, RuleAnswer, string) {
	cname, ok := rr.(*dns.CNAME)
	if !ok {
		return 0, 0, "local data (" + dns.TypeToString[rr.Header().Rrtype] +
			" record) is not supported; use CNAME . (NXDOMAIN), CNAME *. (NODATA) or CNAME rpz-passthru."
	}
	if cname.Target == "" {
		return 0, 0, "CNAME without a target"
	}
	switch target := dns.CanonicalName(cname.Target); target {
	case ".":
		return KindBlock, AnswerNXDomain, ""
	case "*.":
		return KindBlock, AnswerNoData, ""
	case "rpz-passthru.", qname + ".": // a CNAME to itself is the old PASSTHRU form
		return KindAllow, AnswerDefault, ""
	case "rpz-drop.":
		return 0, 0, "rpz-drop action is not supported"
	case "rpz-tcp-only.":
		return 0, 0, "rpz-tcp-only action is not supported"
	default:
		return 0, 0, "local data (CNAME to " + target + ") is not supported"
	}
}
