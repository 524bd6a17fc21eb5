package blocklist

import (
	"net/netip"

	"github.com/miekg/dns"
)

// Decide is the hot path: which group the client is in and what that
// group's lists say about qname. It takes no locks and allocates nothing;
// the Verdict's strings and Local point into the current snapshot (see
// Verdict for their lifetime).
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
	s.verdict(&v, &block, &allow, &monitor, s.index)
	return v, gi, cp
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
	return e.AddrPolicy(client).Decide(addr)
}

// AddrPolicy is one client's response-IP policy, bound to the snapshot
// current when it was made, so every address of one answer is judged by
// the same policy. It is a small value; keep it only for one answer.
type AddrPolicy struct {
	s     *snapshot
	group int // -1: no group, or a group whose lists have no networks
}

// AddrPolicy looks up the client's group for checking an answer's
// addresses. It allocates nothing.
func (e *Engine) AddrPolicy(client netip.Addr) AddrPolicy {
	s := e.snap.Load()
	if !s.addrPolicy {
		return AddrPolicy{s: s, group: -1}
	}
	gi, _ := s.groups.lookup(client)
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
