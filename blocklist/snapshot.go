package blocklist

import (
	"fmt"
	"runtime"
	"time"
)

// maxShownRejected is how many rejected lines per source status shows.
const maxShownRejected = 5

// snapshot is one immutable state of the policy. Queries load it through an
// atomic pointer; a rebuild makes a new one and the old one is freed when
// the last reader is done with it.
type snapshot struct {
	cfg    Config
	index  *Index
	addrs  *AddrIndex // nil when no list has response-IP rules
	groups groupTable
	tokens tokenTable
	// addrPolicy: some group uses a list with response-IP rules, so answers
	// must be checked (Engine.HasAddrRules).
	addrPolicy bool
	lists      []listSnap // by bit number
	built      time.Time
}

// listSnap keeps, per list, the content its index rules came from, so
// Explain can find a rule's source and line (the index keeps no lines).
type listSnap struct {
	name    string
	sources []sourceSnap
}

type sourceSnap struct {
	display string
	content packedContent // shared with the source; never modified
}

// build streams every source's last good content through the guard into
// one index builder, then compiles the groups. No []Rule or per-rule string
// is made: a source's rules go straight from the parser's buffer into the
// index arena, so a build holds the packed contents, the old snapshot (still
// serving) and the new index, and little else. It runs off the query path
// with Engine.mu held.
func (e *Engine) build(cfg Config, srcs map[string]*source) (*snapshot, error) {
	start := time.Now()
	// The fetch just dropped each changed source's raw text, as big as the
	// index about to be built: collect it first so the index reuses its
	// memory instead of raising the peak.
	runtime.GC()
	var neverBlock []string
	for _, spec := range cfg.Guard.NeverBlock {
		p, err := srcs[spec].content.parse()
		if err != nil { // cannot happen: the content parsed when it was accepted
			e.log.Error("blocklist: last good content no longer parses", "source", srcs[spec].display, "error", err)
		}
		for _, r := range p.Rules {
			neverBlock = append(neverBlock, r.Name)
		}
	}
	guard := NewGuard(neverBlock)

	names := sortedListNames(cfg.Lists)
	if len(names) > maxIndexLists {
		return nil, fmt.Errorf("building index: %d lists: at most %d lists can be indexed together", len(names), maxIndexLists)
	}
	passes := indexPasses(cfg, names)
	lines, size, seen := 0, 0, make(map[string]bool)
	for _, p := range passes {
		if !seen[p.spec] {
			seen[p.spec] = true
			lines += srcs[p.spec].content.lines
			size += srcs[p.spec].content.size
		}
	}
	b, addrs := newIndexBuilder(lines, size+64), newAddrBuilder()
	unguarded := allowOnlySources(cfg)
	for _, p := range passes {
		s := srcs[p.spec]
		sink := &indexSink{b: b, addrs: addrs, bits: p.bits, src: s}
		if !unguarded[p.spec] {
			sink.guard = guard
		}
		s.guardRej, s.guardRejN = nil, 0
		if _, err := s.content.stream(sink); err != nil { // cannot happen, as above
			e.log.Error("blocklist: last good content no longer parses", "source", s.display, "error", err)
		}
		sink.finish()
		if sink.err != nil {
			return nil, fmt.Errorf("building index: %w", sink.err)
		}
		s.indexed = sink.kept
	}
	ix, ax := b.finish(), addrs.finish()

	bits := make(map[string]int, len(names))
	snaps := make([]listSnap, len(names))
	total := 0
	for i, name := range names {
		bits[name] = i
		snaps[i].name = name
		for _, spec := range cfg.Lists[name].Sources {
			s := srcs[spec]
			total += s.indexed
			snaps[i].sources = append(snaps[i].sources, sourceSnap{display: s.display, content: s.content})
		}
	}
	e.log.Info("blocklist index built", "lists", len(names), "rules", total, "networks", ax.Len(), "took", time.Since(start))
	snap := &snapshot{cfg: cfg, index: ix, addrs: ax, groups: compileGroups(cfg, bits), tokens: compileTokens(cfg), lists: snaps, built: time.Now()}
	for _, g := range snap.groups.groups {
		m := g.masks
		snap.addrPolicy = snap.addrPolicy || (m.Block|m.Allow|m.Monitor)&ax.Lists() != 0
	}
	return snap, nil
}

// allowOnlySources returns the sources whose every list is used only to
// allow: an exception list naming apple.com blocks nothing, so the guard
// has no reason to drop it.
func allowOnlySources(cfg Config) map[string]bool {
	blocking := make(map[string]bool)
	allowing := make(map[string]bool)
	for _, g := range cfg.Groups {
		for _, l := range g.Block {
			blocking[l] = true
		}
		for _, l := range g.Monitor {
			blocking[l] = true
		}
		for _, l := range g.Allow {
			allowing[l] = true
		}
	}
	out := make(map[string]bool)
	for name, l := range cfg.Lists {
		for _, spec := range l.Sources {
			if _, seen := out[spec]; !seen {
				out[spec] = true
			}
			out[spec] = out[spec] && allowing[name] && !blocking[name]
		}
	}
	return out
}

// ruleText spells a rule as the index names it: "name", "*.name", or the
// network.
func ruleText(r Rule) string {
	switch {
	case r.IsAddr():
		return r.Prefix.String()
	case r.Scope == ScopeBelow:
		return "*." + r.Name
	}
	return r.Name
}
