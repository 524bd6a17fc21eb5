package blocklist

import (
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/net/idna"
)

// Explanation says why a name (or an answer address) is blocked or allowed
// for a client: the group and why it applies, what each of the group's
// lists says, and the decision. It is JSON for GET /v1/explain.
type Explanation struct {
	Client   string `json:"client"`
	Identity string `json:"identity"` // what chose the group: "client 10.1.2.3" or "token 1a2b3c4d"
	// Name is the name as looked up (lower case, punycode, no trailing
	// dot), or the address when Type is "address".
	Name        string      `json:"name"`
	Type        string      `json:"type"` // "name", or "address": an A/AAAA address in an answer
	Group       string      `json:"group,omitempty"`
	GroupReason string      `json:"group_reason"`
	Lists       []ListMatch `json:"lists,omitempty"`  // the group's lists: block, then allow, then monitor
	Action      string      `json:"action"`           // "allow", "block", "monitor" or "refuse"
	Answer      string      `json:"answer,omitempty"` // an RPZ action other than the configured answer: nxdomain, nodata, drop, tcp-only, local-data
	LocalData   string      `json:"local_data,omitempty"`
	List        string      `json:"list,omitempty"` // the list that decided, if any
	Rule        *RuleRef    `json:"rule,omitempty"` // the rule that decided, if any
	Reason      string      `json:"reason"`         // one line for humans
	Verdict     Verdict     `json:"-"`              // what Decide (or DecideAddr) returns for the same query
}

// ListMatch is what one of the group's lists says about the name.
type ListMatch struct {
	List    string `json:"list"`
	Role    string `json:"role"` // how the group uses the list: block, allow or monitor
	Matched bool   `json:"matched"`
	// Match is the list's most specific rule covering the name in its role.
	Match *RuleRef `json:"match,omitempty"`
	// Exception is an exception rule inside a block or monitor list
	// (adblock "@@", RPZ passthru) that covers the name.
	Exception *RuleRef `json:"exception,omitempty"`
	Decided   bool     `json:"decided"` // this list decided the answer
}

// RuleRef locates a rule: its text and where it came from.
type RuleRef struct {
	Rule   string `json:"rule"`             // e.g. "tiktok.com", "*.tiktok.com", "71.18.0.0/21"
	Covers string `json:"covers,omitempty"` // for names: "the name and below", "only this name" or "names below"
	Source string `json:"source,omitempty"` // e.g. "builtin:tiktok"
	Line   int    `json:"line,omitempty"`
}

// lookupFunc asks an index about the explained name or address.
type lookupFunc func(Masks) (block, allow, monitor Hit)

// Explain describes the decision Decide makes for client and qname, or,
// when query is an IP address, the one DecideAddr makes for an answer
// holding that address. It is for people, not the query path: it allocates
// and re-parses the matching lists' content to find source lines.
func (e *Engine) Explain(client netip.Addr, query string) Explanation {
	return e.ExplainFor(Identity{Client: client}, query)
}

// ExplainFor is Explain for a query that may carry a device token, naming
// the identity (token id or client address) that chose the group.
func (e *Engine) ExplainFor(id Identity, query string) Explanation {
	s := e.snap.Load()
	x := Explanation{Client: id.Client.String(), Type: "name"}
	var lookup lookupFunc
	c := s.chooseGroup(id)
	if a, err := netip.ParseAddr(strings.TrimSpace(query)); err == nil {
		a = a.Unmap()
		x.Name, x.Type = a.String(), "address"
		x.Verdict = AddrPolicy{s: s, group: c.group}.Decide(a)
		if c.group >= 0 {
			x.Verdict.Group = s.groups.groups[c.group].name
		}
		lookup = func(m Masks) (Hit, Hit, Hit) { return s.addrs.Lookup(a, m) }
	} else {
		x.Name = explainName(query)
		x.Verdict, _ = s.decide(id, x.Name)
		lookup = func(m Masks) (Hit, Hit, Hit) { return s.index.Lookup(x.Name, m) }
	}
	x.Identity, x.GroupReason = s.identityReason(id, c)
	if c.refused {
		x.Action, x.Reason = actionName(Refuse), "refused: "+x.GroupReason
		return x
	}
	s.explain(&x, c.group, lookup)
	return x
}

// explain fills in the group, the per-list matches and the reason.
func (s *snapshot) explain(x *Explanation, gi int, lookup lookupFunc) {
	v := x.Verdict
	x.Action = actionName(v.Action)
	if v.Action != Allow && v.Answer != AnswerDefault {
		x.Answer = v.Answer.String()
	}
	if len(v.Local) > 0 {
		x.LocalData = localRecordsText(v.Local)
	}
	if gi < 0 {
		x.Reason = "allowed: " + x.GroupReason
		return
	}
	g := &s.groups.groups[gi]
	x.Group = g.name
	lines := newRuleLocator(s)
	for _, role := range []struct {
		name string
		bits []int
	}{{"block", g.block}, {"allow", g.allow}, {"monitor", g.monitor}} {
		for _, b := range role.bits {
			m := s.matchList(lines, role.name, b, lookup)
			m.Decided = v.List == m.List && m.Matched
			if m.Decided {
				x.List = m.List
				x.Rule = m.Match
				if v.Action == Allow && role.name != "allow" {
					x.Rule = m.Exception
				}
			}
			x.Lists = append(x.Lists, m)
		}
	}
	x.Reason = reasonLine(v, x.Rule, len(x.Lists), x.Type)
}

// matchList asks the index about one list alone.
func (s *snapshot) matchList(lines *ruleLocator, role string, bit int, lookup lookupFunc) ListMatch {
	m := ListMatch{List: s.lists[bit].name, Role: role}
	var masks Masks
	switch role {
	case "block":
		masks.Block = 1 << bit
	case "allow":
		masks.Allow = 1 << bit
	default:
		masks.Monitor = 1 << bit
	}
	block, allow, monitor := lookup(masks)
	hit := block
	switch role {
	case "allow":
		hit = allow
	case "monitor":
		hit = monitor
	}
	if hit.Found {
		m.Matched = true
		m.Match = lines.find(bit, hit, role, false)
	}
	if role != "allow" && allow.Found {
		m.Matched = true
		m.Exception = lines.find(bit, allow, role, true)
	}
	return m
}

// identityReason names the identity that chose the group and says why.
func (s *snapshot) identityReason(id Identity, c groupChoice) (identity, reason string) {
	if id.Token == "" {
		return "client " + id.Client.String(), s.groupReason(id.Client, c.group, c.prefix)
	}
	identity = "token " + TokenID(id.Token)
	switch {
	case c.token != nil:
		return identity, fmt.Sprintf("%s is listed at %s, so group %s applies whatever the client address", identity, c.token.key, s.groups.groups[c.group].name)
	case c.refused:
		return identity, fmt.Sprintf("%s is not listed in any group's tokens, and unknown_token is %q, so the query is refused", identity, UnknownTokenRefuse)
	}
	return "client " + id.Client.String(), fmt.Sprintf("%s is not listed in any group's tokens, so the client address decides (unknown_token: %s): %s",
		identity, UnknownTokenAddress, s.groupReason(id.Client, c.group, c.prefix))
}

func (s *snapshot) groupReason(client netip.Addr, gi int, cp *clientPrefix) string {
	switch {
	case cp != nil:
		return fmt.Sprintf("client %s is in %s (%s)", client, cp.prefix, cp.key)
	case gi >= 0:
		return fmt.Sprintf("client %s matches no group's clients; default_group %q applies", client, s.groups.groups[gi].name)
	case len(s.groups.groups) == 0:
		return "no groups are configured, so blocking is off"
	default:
		return fmt.Sprintf("client %s matches no group's clients and there is no default_group, so no policy applies", client)
	}
}

func reasonLine(v Verdict, r *RuleRef, lists int, what string) string {
	where := ""
	if r != nil {
		where = " (rule " + r.Rule
		if r.Source != "" {
			where += fmt.Sprintf(", %s line %d", r.Source, r.Line)
		}
		where += ")"
	}
	answer := ""
	if v.Answer != AnswerDefault {
		answer = ", RPZ action " + v.Answer.String()
	}
	switch {
	case v.Action == Block:
		return fmt.Sprintf("blocked by list %s%s for group %s%s", v.List, where, v.Group, answer)
	case v.Action == Monitor:
		return fmt.Sprintf("would be blocked by list %s%s, which group %s monitors: resolved normally and reported", v.List, where, v.Group)
	case v.List != "":
		return fmt.Sprintf("allowed by the exception in list %s%s for group %s", v.List, where, v.Group)
	case lists == 0:
		return fmt.Sprintf("allowed: group %s uses no lists", v.Group)
	default:
		return fmt.Sprintf("allowed: none of group %s's lists covers the %s", v.Group, what)
	}
}

func actionName(a Action) string {
	switch a {
	case Block:
		return "block"
	case Monitor:
		return "monitor"
	case Refuse:
		return "refuse"
	default:
		return "allow"
	}
}

// explainName canonicalises a name typed by a person: case, trailing dot, IDN.
func explainName(q string) string {
	q = strings.TrimSuffix(strings.TrimSpace(q), ".")
	if ascii, err := idna.Lookup.ToASCII(q); err == nil {
		q = ascii
	}
	return strings.ToLower(q)
}

// ruleLocator finds the source and line of an indexed rule by parsing the
// list's content again (the index keeps no lines). It streams the parse
// rather than keep a []Rule: explaining a match in a 1M-rule list should not
// cost ~60 MB.
type ruleLocator struct {
	s *snapshot
}

func newRuleLocator(s *snapshot) *ruleLocator { return &ruleLocator{s: s} }

// find locates the rule of hit in list bit. Exceptions (KindAllow,
// KindPassthru) are wanted inside block and monitor lists, block-kind
// rules otherwise; in an allow list any rule is an exception.
func (l *ruleLocator) find(bit int, hit Hit, role string, exception bool) *RuleRef {
	ref := &RuleRef{Rule: hit.Rule}
	f := ruleFinder{anyKind: role == "allow", exception: exception}
	if p, err := netip.ParsePrefix(hit.Rule); err == nil {
		f.prefix = p
	} else {
		ref.Covers = scopeText(hit.Scope)
		f.name, f.scope = strings.TrimPrefix(hit.Rule, "*."), hit.Scope
	}
	for _, src := range l.s.lists[bit].sources {
		f.line = 0
		src.content.stream(&f)
		if f.line != 0 {
			ref.Source, ref.Line = src.display, f.line
			return ref
		}
	}
	return ref
}

func scopeText(s Scope) string {
	switch s {
	case ScopeExact:
		return "only this name"
	case ScopeBelow:
		return "names below"
	}
	return "the name and below"
}

// ruleFinder is a parse sink that notes the line of the first rule for
// the wanted name and scope, or network, of the wanted kind.
type ruleFinder struct {
	name      string
	scope     Scope
	prefix    netip.Prefix // wanted instead of a name when valid
	anyKind   bool
	exception bool
	line      int // 0 until found
}

func (f *ruleFinder) rule(r parsedRule) {
	if f.line != 0 || !(f.anyKind || (r.kind != KindBlock) == f.exception) {
		return
	}
	if f.prefix.IsValid() && r.prefix == f.prefix ||
		!f.prefix.IsValid() && r.name != nil && r.scope == f.scope && string(r.name) == f.name {
		f.line = r.line
	}
}
