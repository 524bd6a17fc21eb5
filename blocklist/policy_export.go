package blocklist

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// This file lets another server publish a group's compiled policy (the RPZ
// primary in blocklist/rpzprimary): which names it blocks and excepts, and
// when that may have changed.
//
// The index maps each rule name to per-list rule sets (exact, name and
// below, below only), and Index.Lookup is the one decision function. Each
// entry is described by asking Lookup about the name itself and about a
// name just below it ("*.name", which no rule can spell), so whatever
// Lookup decides — exact against wildcard triggers, passthru by
// specificity — the export says the same.

// Effect is what policy does to one owner name of an exported group.
type Effect uint8

const (
	EffectNone     Effect = iota // no rule of the group covers it
	EffectBlock                  // blocked with the configured answer
	EffectNXDomain               // blocked; the rule asks for NXDOMAIN
	EffectNoData                 // blocked; the rule asks for NODATA
	EffectAllow                  // an exception: resolved normally
	EffectDrop                   // the rule asks for no reply (rpz-drop)
	EffectTCPOnly                // the rule asks for TCP (rpz-tcp-only)
)

// PolicyName is one rule name of a group's policy: its effect on the name
// itself and on the names below it that have no rules of their own.
type PolicyName struct {
	Name  string // lower case, no trailing dot; points into the snapshot
	Self  Effect
	Below Effect
}

// GroupPolicy returns the policy of group as rule names, sorted by name,
// and the policy version it was read from (see PolicyVersion). Names that
// no block or allow list of the group covers are left out; monitor lists
// block nothing, so only their exceptions count. It walks the whole index: call
// it when the version changed, not per query.
func (e *Engine) GroupPolicy(group string) ([]PolicyName, uint64, error) {
	version, _ := e.watch.current()
	s := e.snap.Load()
	gi := slices.IndexFunc(s.groups.groups, func(g groupPolicy) bool { return g.name == group })
	if gi < 0 {
		return nil, version, fmt.Errorf("group %q is not defined (defined: %s)", group, quoteList(groupOrder(s.cfg.Groups)))
	}
	// Monitor lists are looked up too: their exceptions allow, as in
	// Decide; their block rules are not exported (effectOf ignores them).
	m := s.groups.groups[gi].masks
	var out []PolicyName
	s.index.eachName(m.Block|m.Allow|m.Monitor, func(name string) {
		pn := PolicyName{Name: name, Self: effectOf(s.index, name, m), Below: effectOf(s.index, "*."+name, m)}
		if pn.Self != EffectNone || pn.Below != EffectNone {
			out = append(out, pn)
		}
	})
	slices.SortFunc(out, func(a, b PolicyName) int { return strings.Compare(a.Name, b.Name) })
	return out, version, nil
}

func effectOf(ix *Index, name string, m Masks) Effect {
	block, allow, _ := ix.Lookup(name, m)
	switch {
	case allow.Found:
		return EffectAllow
	case !block.Found:
		return EffectNone
	case block.Answer == AnswerNXDomain:
		return EffectNXDomain
	case block.Answer == AnswerNoData:
		return EffectNoData
	case block.Answer == AnswerDrop:
		return EffectDrop
	case block.Answer == AnswerTCPOnly:
		return EffectTCPOnly
	}
	return EffectBlock // the configured answer; local data is exported as a block too
}

// eachName calls fn with every indexed name that has a rule in a list of
// lists. The name points into the arena.
func (ix *Index) eachName(lists uint64, fn func(name string)) {
	if ix == nil {
		return
	}
	for i, tag := range ix.tags {
		if tag == 0 {
			continue
		}
		p := &ix.profiles[ix.ids.get(uint64(i))]
		var any uint64
		for _, set := range p.sets {
			any |= set.block | set.allow | set.pass
		}
		if any&lists == 0 {
			continue
		}
		off := int(ix.slots[i])
		l := int(ix.arena[off])
		fn(ix.arena[off-l : off])
	}
}

// PolicyVersion returns a number that grows with every new snapshot (a
// reload, a config change, a list whose content changed) and a channel
// closed when the next one is stored.
func (e *Engine) PolicyVersion() (uint64, <-chan struct{}) { return e.watch.current() }

// policyWatch broadcasts snapshot changes.
type policyWatch struct {
	mu      sync.Mutex
	version uint64
	next    chan struct{}
}

func (w *policyWatch) current() (uint64, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.next == nil {
		w.next = make(chan struct{})
	}
	return w.version, w.next
}

func (w *policyWatch) bump() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.version++
	if w.next != nil {
		close(w.next)
	}
	w.next = make(chan struct{})
}

// storeSnapshot makes snap the one queries read and tells watchers.
func (e *Engine) storeSnapshot(snap *snapshot) {
	e.snap.Store(snap)
	e.watch.bump()
}
