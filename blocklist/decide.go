package blocklist

import "net/netip"

// Decide is the hot path: which group the client is in and what that
// group's lists say about qname. It takes no locks and allocates nothing;
// the strings in the Verdict point into the current snapshot.
func (e *Engine) Decide(client netip.Addr, qname string) Verdict {
	v, _, _ := e.snap.Load().decide(client, qname)
	return v
}

// decide also returns the group index (-1: none) and the matching client
// prefix (nil: default group or none), for Explain.
func (s *snapshot) decide(client netip.Addr, qname string) (Verdict, int, *clientPrefix) {
	gi, cp := s.groups.lookup(client)
	if gi < 0 {
		return Verdict{Action: Allow}, gi, cp
	}
	g := &s.groups.groups[gi]
	v := Verdict{Action: Allow, Group: g.name}
	if g.masks == (Masks{}) {
		return v, gi, cp
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
	return v, gi, cp
}
