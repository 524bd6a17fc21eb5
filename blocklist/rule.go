package blocklist

import (
	"net/netip"

	"github.com/miekg/dns"
)

// RuleKind says whether a rule blocks or excepts what it covers.
type RuleKind uint8

const (
	KindBlock RuleKind = iota
	// KindAllow is an exception (adblock "@@||name^"): it beats every block
	// rule, however specific.
	KindAllow
	// KindPassthru is RPZ's "rpz-passthru.": it allows what it covers unless
	// the same list has a more specific rule, as in BIND and Unbound, so
	// "*.example CNAME rpz-passthru." with "bad.example CNAME ." still
	// blocks bad.example.
	KindPassthru
)

// Scope says which names a name rule covers.
type Scope uint8

const (
	// ScopeSubtree covers the name and every name below it: a plain, hosts,
	// adblock or dnsmasq entry "name".
	ScopeSubtree Scope = iota
	// ScopeBelow covers the names below the name, not the name itself:
	// "*.name" in any format.
	ScopeBelow
	// ScopeExact covers exactly the name: an RPZ trigger "name".
	ScopeExact
)

// Rule is one parsed list entry: a name rule, or a response-IP rule when
// Prefix is valid (Name is then empty).
type Rule struct {
	Name   string       // lower-case, punycode, no trailing dot
	Prefix netip.Prefix // network of a response-IP rule; IPv4 as IPv4, masked
	Scope  Scope
	Kind   RuleKind
	Answer RuleAnswer // RPZ action, else AnswerDefault
	// Record is one record of RPZ local data (Answer == AnswerLocal); a
	// trigger with several records gives several rules.
	Record dns.RR
	Line   int // 1-based line in the source
}

// IsAddr reports a response-IP rule.
func (r *Rule) IsAddr() bool { return r.Prefix.IsValid() }

// Rejected is a line that could not be used, kept for reporting.
type Rejected struct {
	Line   int
	Text   string // the line, cut to a readable length
	Reason string
}
