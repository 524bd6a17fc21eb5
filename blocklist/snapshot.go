package blocklist

import (
	"fmt"
	"slices"
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
	groups groupTable
	lists  []listSnap // by bit number
	built  time.Time
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

// build parses every source's last good content (reusing fresh parses),
// applies the guard, indexes the lists and compiles the groups. It runs off
// the query path with Engine.mu held; the per-source rule slices are garbage
// once the index is built, so steady-state memory is the packed content
// plus the index.
func (e *Engine) build(cfg Config, srcs map[string]*source, fresh map[string]*Parsed) (*snapshot, error) {
	start := time.Now()
	rulesOf := func(s *source) []Rule {
		if p := fresh[s.spec]; p != nil {
			delete(fresh, s.spec) // its rules are filtered in place below; parse again if needed twice
			return p.Rules
		}
		p, err := s.content.parse()
		if err != nil { // cannot happen: the content parsed when it was accepted
			e.log.Error("blocklist: last good content no longer parses", "source", s.display, "error", err)
		}
		return p.Rules
	}

	var neverBlock []string
	for _, spec := range cfg.Guard.NeverBlock {
		for _, r := range rulesOf(srcs[spec]) {
			neverBlock = append(neverBlock, r.Name)
		}
	}
	guard := NewGuard(neverBlock)

	unguarded := allowOnlySources(cfg)
	names := sortedListNames(cfg.Lists)
	bits := make(map[string]int, len(names))
	kept := make(map[string][]Rule) // per source after the guard; a source may serve several lists
	lists := make([][]Rule, len(names))
	snaps := make([]listSnap, len(names))
	for i, name := range names {
		bits[name] = i
		snaps[i].name = name
		for _, spec := range cfg.Lists[name].Sources {
			s := srcs[spec]
			rules, ok := kept[spec]
			if !ok {
				rules = rulesOf(s)
				if !unguarded[spec] {
					rules = guardRules(guard, s, rules)
				} else {
					s.guardRej, s.guardRejN, s.indexed = nil, 0, len(rules)
				}
				rules = slices.Clip(rules)
				kept[spec] = rules
			}
			if lists[i] == nil {
				lists[i] = rules // clipped: a later append copies instead of writing into a shared array
			} else {
				lists[i] = append(lists[i], rules...)
			}
			snaps[i].sources = append(snaps[i].sources, sourceSnap{display: s.display, content: s.content})
		}
	}
	ix, err := BuildIndex(lists)
	if err != nil {
		return nil, fmt.Errorf("building index: %w", err)
	}
	total := 0
	for _, l := range lists {
		total += len(l)
	}
	e.log.Info("blocklist index built", "lists", len(names), "rules", total, "took", time.Since(start))
	return &snapshot{cfg: cfg, index: ix, groups: compileGroups(cfg, bits), lists: snaps, built: time.Now()}, nil
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

// guardRules drops, in place, block rules the guard refuses and records them
// on the source for its status.
func guardRules(g *Guard, s *source, rules []Rule) []Rule {
	s.guardRej, s.guardRejN = nil, 0
	out := rules[:0]
	for _, r := range rules {
		if r.Kind == KindBlock {
			if reason := g.Check(r); reason != "" {
				s.guardRejN++
				if len(s.guardRej) < maxShownRejected {
					s.guardRej = append(s.guardRej, Rejected{Line: r.Line, Text: ruleText(r), Reason: "guard: " + reason})
				}
				continue
			}
		}
		out = append(out, r)
	}
	s.indexed = len(out)
	return out
}

func ruleText(r Rule) string {
	if r.OnlyBelow {
		return "*." + r.Name
	}
	return r.Name
}
