package blocklist

import (
	"strings"

	"github.com/miekg/dns"
)

// Action is what policy decides for one name (or answer address) and client.
type Action uint8

const (
	Allow   Action = iota // resolve normally
	Block                 // answer as Verdict.Answer says
	Monitor               // resolve normally, but count and audit as "would block"
	Refuse                // answer REFUSED: an unknown device token under unknown_token: refuse
)

// RuleAnswer is how a blocking rule wants the query answered. Lists other
// than RPZ always give AnswerDefault; RPZ actions give the others.
type RuleAnswer uint8

const (
	AnswerDefault  RuleAnswer = iota // the configured blocking answer (blocking.answer)
	AnswerNXDomain                   // RPZ "CNAME .": NXDOMAIN
	AnswerNoData                     // RPZ "CNAME *.": NOERROR, no records
	AnswerDrop                       // RPZ "CNAME rpz-drop.": send no reply at all
	// AnswerTCPOnly is RPZ "CNAME rpz-tcp-only.": over UDP reply with TC=1
	// and no records, so the client retries over TCP; over TCP resolve
	// normally (it stops spoofed-source UDP floods, not the name).
	AnswerTCPOnly
	// AnswerLocal is RPZ local data: answer with Verdict.Local (see
	// LocalAnswer), e.g. "CNAME walled.garden." or "A 192.0.2.80".
	AnswerLocal
	numAnswers
)

var answerNames = [numAnswers]string{"default", "nxdomain", "nodata", "drop", "tcp-only", "local-data"}

// String names the answer as audit logs and explain print it.
func (a RuleAnswer) String() string {
	if a < numAnswers {
		return answerNames[a]
	}
	return "unknown"
}

// Verdict is the policy decision for one query name or one answer address.
// It is returned by value and allocates nothing: its strings and its Local
// slice point into the policy snapshot that made it, which is immutable and
// stays alive as long as the Verdict does (the garbage collector keeps it),
// even after a reload has replaced it. Never modify Local or its records.
type Verdict struct {
	Action Action
	Answer RuleAnswer // for Block (and Monitor, what would have been answered)
	Group  string     // the client's group
	List   string     // the list whose rule decided (block, monitor, or allow exception)
	// Rule is the deciding rule as the list spells it: "tiktok.com",
	// "*.tiktok.com", or for an answer address its network, "71.18.0.0/21".
	Rule string
	// Local is the rule's local data when Answer is AnswerLocal: one CNAME,
	// or the records of one or more types, sorted by type. The owner names
	// are the trigger's; use LocalAnswer to get records to send.
	Local []dns.RR
	// By says which identity chose the group; TokenID names the device
	// token (TokenID form, never the token) when By is ByToken.
	By      IdentityKind
	TokenID string
}

// LocalAnswer returns the records to answer a query for qname and qtype
// with, when Answer is AnswerLocal: copies of the local data (so the caller
// may change them) with qname as owner, as RPZ does for wildcard triggers
// too. A CNAME is returned whatever the qtype, for the resolver to follow;
// a qtype the data has no records of gives nil, which the resolver answers
// as NODATA. It allocates, so call it only on the blocked path.
func (v *Verdict) LocalAnswer(qname string, qtype uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range v.Local {
		t := rr.Header().Rrtype
		if t != qtype && t != dns.TypeCNAME && qtype != dns.TypeANY {
			continue
		}
		c := dns.Copy(rr)
		c.Header().Name = dns.Fqdn(qname)
		out = append(out, c)
	}
	return out
}

// localRecordsText renders local data for explain: "A 192.0.2.80, TXT ...".
func localRecordsText(rrs []dns.RR) string {
	parts := make([]string, len(rrs))
	for i, rr := range rrs {
		h := rr.Header()
		rdata := strings.TrimPrefix(rr.String(), h.String())
		parts[i] = dns.TypeToString[h.Rrtype] + " " + rdata
	}
	return strings.Join(parts, ", ")
}
