package blocklist

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
)

// maxIndexLists is the number of list bits in Masks.
const maxIndexLists = 64

// BuildIndex indexes lists; list i gets bit i (at most 64 lists). Rule
// names must be canonical (as Parse returns them); a rule that is not is
// an error naming the list and line, not a silent skip.
func BuildIndex(lists [][]Rule) (*Index, error) {
	if len(lists) > maxIndexLists {
		return nil, fmt.Errorf("%d lists: at most %d lists can be indexed together", len(lists), maxIndexLists)
	}
	total, nameBytes := 0, 0
	for _, rules := range lists {
		total += len(rules)
		for i := range rules {
			nameBytes += len(rules[i].Name)
		}
	}
	b := newIndexBuilder(total, nameBytes)
	for li, rules := range lists {
		for ri := range rules {
			if err := b.add(li, &rules[ri]); err != nil {
				return nil, err
			}
		}
	}
	return b.finish()
}

// indexBuilder collects distinct names with their profile ids, then lays
// out the compact index in finish.
type indexBuilder struct {
	seed     uint64
	names    []byte // distinct names back to back
	entries  []buildEntry
	table    []uint32 // entry index + 1; 0 = empty
	mask     uint64
	profiles []profile
	ids      map[profile]uint32
	steps    map[profileStep]uint32 // memoised profile transitions
}

type buildEntry struct {
	hash uint64 // mixed
	off  uint32 // in names
	prof uint32
	len  uint8
}

// profileStep is "profile from, plus one rule": most rules repeat a few
// steps, so profiles are interned once per distinct step, not per rule.
type profileStep struct {
	from   uint32
	list   uint8
	below  bool
	kind   RuleKind
	answer RuleAnswer
}

func newIndexBuilder(rules, nameBytes int) *indexBuilder {
	size := tableSize(rules)
	b := &indexBuilder{
		seed:     rand.Uint64(),
		names:    make([]byte, 0, nameBytes),
		entries:  make([]buildEntry, 0, rules),
		table:    make([]uint32, size),
		mask:     uint64(size - 1),
		profiles: []profile{{}}, // id 0: no rules yet
		ids:      map[profile]uint32{{}: 0},
		steps:    make(map[profileStep]uint32),
	}
	return b
}

// tableSize is the power of two that keeps the load at or below 3/4.
func tableSize(n int) int {
	size := 8
	for size*3/4 < n {
		size *= 2
	}
	return size
}

func (b *indexBuilder) add(list int, r *Rule) error {
	if reason := indexableName(r.Name); reason != "" {
		return fmt.Errorf("list %d line %d: rule %q: %s", list, r.Line, r.Name, reason)
	}
	h := b.seed
	for i := len(r.Name) - 1; i >= 0; i-- {
		h = hashByte(h, r.Name[i])
	}
	h = mixHash(h)
	e := b.findOrInsert(r.Name, h)
	e.prof = b.step(e.prof, profileStep{list: uint8(list), below: r.OnlyBelow, kind: r.Kind, answer: r.Answer})
	return nil
}

// indexableName checks the canonical form that Lookup relies on.
func indexableName(name string) string {
	if name == "" || len(name) > maxNameLen {
		return "name empty or longer than 253 characters"
	}
	if strings.ToLower(name) != name {
		return "name not lower case"
	}
	return checkLabels(name)
}

func (b *indexBuilder) findOrInsert(name string, h uint64) *buildEntry {
	for i := h & b.mask; ; i = (i + 1) & b.mask {
		slot := b.table[i]
		if slot == 0 {
			b.entries = append(b.entries, buildEntry{hash: h, off: uint32(len(b.names)), len: uint8(len(name))})
			b.names = append(b.names, name...)
			b.table[i] = uint32(len(b.entries))
			return &b.entries[len(b.entries)-1]
		}
		e := &b.entries[slot-1]
		if e.hash == h && string(b.names[e.off:e.off+uint32(e.len)]) == name {
			return e
		}
	}
}

// step returns the profile that adds one rule to profile s.from. A list's
// first block rule for a name and variant decides its answer.
func (b *indexBuilder) step(from uint32, s profileStep) uint32 {
	s.from = from
	if to, ok := b.steps[s]; ok {
		return to
	}
	p := b.profiles[from]
	rs := &p.exact
	if s.below {
		rs = &p.below
	}
	bit := uint64(1) << s.list
	switch {
	case s.kind == KindAllow:
		rs.allow |= bit
	case rs.block&bit == 0:
		rs.block |= bit
		switch s.answer {
		case AnswerNXDomain:
			rs.nxdomain |= bit
		case AnswerNoData:
			rs.nodata |= bit
		}
	}
	to, ok := b.ids[p]
	if !ok {
		to = uint32(len(b.profiles))
		b.profiles = append(b.profiles, p)
		b.ids[p] = to
	}
	b.steps[s] = to
	return to
}

// finish lays out the arena and a table sized for the distinct names.
func (b *indexBuilder) finish() (*Index, error) {
	arenaLen := 0
	for i := range b.entries {
		e := &b.entries[i]
		arenaLen += int(e.len) + 1 + uvarintLen(e.prof)
		if b.profiles[e.prof].hasBelow() {
			arenaLen += 2
		}
	}
	if arenaLen > math.MaxUint32 {
		return nil, fmt.Errorf("index of %d names needs %d bytes: too large", len(b.entries), arenaLen)
	}
	size := tableSize(len(b.entries))
	ix := &Index{
		tags:     make([]uint8, size),
		slots:    make([]uint32, size),
		profiles: slices.Clone(b.profiles),
		mask:     uint64(size - 1),
		seed:     b.seed,
		count:    len(b.entries),
	}
	var arena strings.Builder
	arena.Grow(arenaLen)
	for i := range b.entries {
		e := &b.entries[i]
		if b.profiles[e.prof].hasBelow() {
			arena.WriteString("*.")
		}
		arena.Write(b.names[e.off : e.off+uint32(e.len)])
		ix.place(e.hash, uint32(arena.Len()))
		arena.WriteByte(e.len)
		for v := e.prof; ; v >>= 7 {
			if v < 0x80 {
				arena.WriteByte(byte(v))
				break
			}
			arena.WriteByte(byte(v) | 0x80)
		}
	}
	ix.arena = arena.String()
	return ix, nil
}

func (ix *Index) place(h uint64, off uint32) {
	i := h & ix.mask
	for ix.tags[i] != 0 {
		i = (i + 1) & ix.mask
	}
	ix.tags[i] = hashTag(h)
	ix.slots[i] = off
}

func uvarintLen(v uint32) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}
