package blocklist

import (
	"net/netip"

	"github.com/miekg/dns"
)

// Identity is who asks: the client address and, for encrypted transports,
// the device token the query carried ("" when none).
type Identity struct {
	Client netip.Addr
	Token  string
}

// IdentityKind says which part of the Identity chose the group.
type IdentityKind uint8

const (
	ByAddress      IdentityKind = iota // the client address (a group's clients, or default_group)
	ByToken                            // a token listed in a group's tokens
	ByUnknownToken                     // a token no group lists: address policy, or Refuse
)

// Decide is the hot path: which group the client is in and what that
// group's lists say about qname. It takes no locks and allocates nothing;
// the Verdict's strings and Local point into the current snapshot (see
// Verdict for their lifetime).
func (e *Engine) Decide(client netip.Addr, qname string) Verdict {
	v, _ := e.snap.Load().decide(Identity{Client: client}, qname)
	return v
}

// DecideFor is Decide for a query that may carry a device token: a known
// token picks its group whatever the address; an unknown one gets the
// address's policy or Refuse (Config.UnknownToken). It allocates nothing.
func (e *Engine) DecideFor(id Identity, qname string) Verdict {
	v, _ := e.snap.Load().decide(id, qname)
	return v
}

// groupChoice is how a query's group was chosen, for Explain.
type groupChoice struct {
	group   int           // -1: none
	prefix  *clientPrefix // the matching client prefix, if the address chose
	token   *tokenEntry   // the matching token, if a token chose
	by      IdentityKind
	refused bool // unknown token under unknown_token: refuse
}

func (s *snapshot) chooseGroup(id Identity) groupChoice {
	c := groupChoice{}
	if id.Token != "" {
		if te := s.tokens.lookup(id.Token); te != nil {
			return groupChoice{group: te.group, token: te, by: ByToken}
		}
		c.by = ByUnknownToken
		if s.cfg.refusesUnknownTokens() {
			c.group, c.refused = -1, true
			return c
		}
	}
	c.group, c.prefix = s.groups.lookup(id.Client)
	return c
}

// decide also returns how the group was chosen, for Explain.
func (s *snapshot) decide(id Identity, qname string) (Verdict, groupChoice) {
	c := s.chooseGroup(id)
	if c.refused {
		return Verdict{Action: Refuse, By: c.by}, c
	}
	v := s.decideInGroup(c.group, qname)
	v.By = c.by
	if c.token != nil {
		v.TokenID = c.token.id
	}
	return v, c
}

// decideInGroup asks group gi's lists about qname (gi -1: no policy).
func (s *snapshot) decideInGroup(gi int, qname string) Verdict {
	if gi < 0 {
		return Verdict{Action: Allow}
	}
	g := &s.groups.groups[gi]
	v := Verdict{Action: Allow, Group: g.name}
	if g.masks == (Masks{}) {
		return v
	}
	block, allow, monitor := s.index.Lookup(qname, g.masks)
	s.verdict(&v, &block, &allow, &monitor, s.index)
	return v
}

// localSource is the index a hit came from, for its local data.
type localSource interface{ LocalData(Hit) []dns.RR }

// verdict applies the precedence across lists: an exception (allow list,
// in-list exception or standing passthru) beats block, block beats monitor.
func (s *snapshot) verdict(v *Verdict, block, allow, monitor *Hit, src localSource) {
	var h *Hit
	switch {
	case allow.Found:
		v.List, v.Rule = s.lists[allow.List].name, allow.Rule
		return
	case block.Found:
		v.Action, h = Block, block
	case monitor.Found:
		v.Action, h = Monitor, monitor
	default:
		return
	}
	v.Answer, v.List, v.Rule = h.Answer, s.lists[h.List].name, h.Rule
	if h.Answer == AnswerLocal {
		v.Local = src.LocalData(*h)
	}
}

// HasAddrRules reports whether any group uses a list with response-IP
// rules (CIDR lists, RPZ rpz-ip triggers). When it is false, which is one
// atomic load, the resolver can skip checking answer addresses entirely,
// so the cached path costs what it did before response-IP policy existed.
func (e *Engine) HasAddrRules() bool { return e.snap.Load().addrPolicy }

// DecideAddr is what the client's group's lists say about one address in
// an answer (an A or AAAA record's data), with the same allow, block and
// monitor precedence as Decide; Verdict.Rule is the matching network,
// e.g. "71.18.0.0/21". IPv4-mapped IPv6 addresses are matched as IPv4. It
// allocates nothing; the Verdict's strings and Local point into the
// snapshot, as for Decide (see Verdict). For an answer with several
// addresses, AddrPolicy looks the group up once.
func (e *Engine) DecideAddr(client, addr netip.Addr) Verdict {
	return e.AddrPolicy(Identity{Client: client}).Decide(addr)
}

// AddrPolicy is one client's response-IP policy, bound to the snapshot
// current when it was made, so every address of one answer is judged by
// the same policy. It is a small value; keep it only for one answer.
type AddrPolicy struct {
	s     *snapshot
	group int // -1: no group, or a group whose lists have no networks
}

// AddrPolicy looks up the group of id (its token, else its address) for
// checking an answer's addresses. It allocates nothing.
func (e *Engine) AddrPolicy(id Identity) AddrPolicy {
	s := e.snap.Load()
	if !s.addrPolicy {
		return AddrPolicy{s: s, group: -1}
	}
	gi := s.chooseGroup(id).group
	if gi >= 0 {
		m := s.groups.groups[gi].masks
		if (m.Block|m.Allow|m.Monitor)&s.addrs.Lists() == 0 {
			gi = -1
		}
	}
	return AddrPolicy{s: s, group: gi}
}

// Active reports whether any of the client's lists has networks; when it
// is false every address is allowed and checking them is wasted work.
func (p AddrPolicy) Active() bool { return p.group >= 0 }

// Decide judges one answer address; see Engine.DecideAddr.
func (p AddrPolicy) Decide(addr netip.Addr) Verdict {
	if p.group < 0 {
		return Verdict{Action: Allow}
	}
	g := &p.s.groups.groups[p.group]
	block, allow, monitor := p.s.addrs.Lookup(addr, g.masks)
	v := Verdict{Action: Allow, Group: g.name}
	p.s.verdict(&v, &block, &allow, &monitor, p.s.addrs)
	return v
}
