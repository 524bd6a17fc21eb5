package blocklist

import "net/netip"

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
// the strings in the Verdict point into the current snapshot.
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
	switch {
	case allow.Found: // exceptions beat everything
		v.List, v.Rule = s.lists[allow.List].name, allow.Rule
	case block.Found:
		v.Action, v.Answer = Block, block.Answer
		v.List, v.Rule = s.lists[block.List].name, block.Rule
	case monitor.Found:
		v.Action, v.Answer = Monitor, monitor.Answer
		v.List, v.Rule = s.lists[monitor.List].name, monitor.Rule
	}
	return v
}
