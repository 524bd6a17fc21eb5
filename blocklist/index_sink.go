package blocklist

import (
	"slices"
	"unsafe"
)

// indexSink streams one source's parsed rules through the guard into the
// index builder, once for each list bit the source feeds.
type indexSink struct {
	b     *indexBuilder
	bits  []int
	guard *Guard // nil for sources only used to allow
	src   *source
	kept  int // rules that passed the guard
	err   error
}

func (k *indexSink) rule(name []byte, onlyBelow bool, kind RuleKind, answer RuleAnswer, line int) {
	if k.guard != nil && kind == KindBlock {
		// The guard keeps no reference to the name, so it may alias the
		// parser's buffer instead of costing a string per rule.
		if reason := k.guard.checkBlock(unsafe.String(unsafe.SliceData(name), len(name)), onlyBelow); reason != "" {
			k.reject(name, onlyBelow, line, reason)
			return
		}
	}
	k.kept++
	for _, bit := range k.bits {
		if err := addRule(k.b, bit, name, onlyBelow, kind, answer); err != nil && k.err == nil {
			k.err = err
		}
	}
}

func (k *indexSink) reject(name []byte, onlyBelow bool, line int, reason string) {
	s := k.src
	s.guardRejN++
	if len(s.guardRej) < maxShownRejected {
		r := Rule{Name: string(name), OnlyBelow: onlyBelow}
		s.guardRej = append(s.guardRej, Rejected{Line: line, Text: ruleText(r), Reason: "guard: " + reason})
	}
}

// indexPass is one parse of a source, feeding the list bits that use it.
type indexPass struct {
	spec string
	bits []int
}

// indexPasses plans the build: each source is parsed once, in order of
// first use, feeding every list that uses it. A list's first block rule for
// a name decides the answer, so each list must see its sources in config
// order; when lists share sources in conflicting orders, every list gets
// its own passes instead.
func indexPasses(cfg Config, names []string) []indexPass {
	order := make(map[string]int)
	var passes []indexPass
	consistent := true
	for bit, name := range names {
		last := -1
		for _, spec := range cfg.Lists[name].Sources {
			i, ok := order[spec]
			if !ok {
				i = len(passes)
				order[spec] = i
				passes = append(passes, indexPass{spec: spec})
			}
			if !slices.Contains(passes[i].bits, bit) {
				passes[i].bits = append(passes[i].bits, bit)
			}
			consistent = consistent && i >= last
			last = max(last, i)
		}
	}
	if consistent {
		return passes
	}
	passes = passes[:0]
	for bit, name := range names {
		var done []string
		for _, spec := range cfg.Lists[name].Sources {
			if !slices.Contains(done, spec) {
				done = append(done, spec)
				passes = append(passes, indexPass{spec: spec, bits: []int{bit}})
			}
		}
	}
	return passes
}
