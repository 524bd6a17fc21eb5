package blocklist

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"unsafe"

	"github.com/miekg/dns"
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
			nameBytes += len(rules[i].Name) + 1
		}
	}
	b := newIndexBuilder(total, nameBytes)
	for li, rules := range lists {
		for ri := range rules {
			r := &rules[ri]
			if r.IsAddr() {
				continue // response-IP rules go to BuildAddrIndex
			}
			if reason := indexableName(r.Name); reason != "" {
				return nil, fmt.Errorf("list %d line %d: rule %q: %s", li, r.Line, r.Name, reason)
			}
			if err := addRule(b, li, r.Name, r.Scope, r.Kind, r.Answer); err != nil {
				return nil, err
			}
			if r.Answer == AnswerLocal && r.Record != nil {
				b.addLocal(li, r.Name, r.Scope, r.Record)
			}
		}
	}
	return b.finish(), nil
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

// indexBuilder fills the Index's own table and arena as rules arrive, so a
// build needs no per-rule memory beyond what the index keeps. The engine
// streams parsed rules into it; BuildIndex feeds it a []Rule.
type indexBuilder struct {
	seed     uint64
	arena    []byte
	tags     []uint8
	slots    []uint32
	ids      profileIDs
	mask     uint64
	count    int
	profiles []profile
	known    map[profile]uint32
	local    map[localKey][]dns.RR
	steps    map[profileStep]uint32 // memoised profile transitions
	last     profileStep            // the latest step, which most rules repeat
	lastTo   uint32
}

// profileStep is "profile from, plus one rule": most rules repeat a few
// steps, so profiles are interned once per distinct step, not per rule.
type profileStep struct {
	from   uint32
	list   uint8
	scope  Scope
	kind   RuleKind
	answer RuleAnswer
}

// newIndexBuilder sizes the table for about names names and the arena for
// arenaBytes; both grow if the guesses are low, and finish trims them if
// they were far too high.
func newIndexBuilder(names, arenaBytes int) *indexBuilder {
	size := tableSize(names)
	return &indexBuilder{
		seed:     rand.Uint64(),
		arena:    make([]byte, 0, arenaBytes),
		tags:     make([]uint8, size),
		slots:    make([]uint32, size),
		ids:      newProfileIDs(size),
		mask:     uint64(size - 1),
		profiles: []profile{{}}, // id 0: no rules yet
		known:    map[profile]uint32{{}: 0},
		steps:    make(map[profileStep]uint32),
	}
}

// tableSize is the power of two that keeps the load at or below 3/4.
func tableSize(n int) int {
	size := 8
	for size*3/4 < n {
		size *= 2
	}
	return size
}

// addRule adds one rule with a canonical name to list's bit.
func addRule[T string | []byte](b *indexBuilder, list int, name T, scope Scope, kind RuleKind, answer RuleAnswer) error {
	if len(b.arena)+len(name)+3 > math.MaxUint32 {
		return fmt.Errorf("index of %d names is too large", b.count)
	}
	slot, fresh := insertName(b, name, scope == ScopeBelow)
	var from uint32 // a new name has no rules yet: no need to read its id (a cache miss)
	if !fresh {
		from = b.ids.get(slot)
	}
	b.ids.set(slot, b.step(from, profileStep{list: uint8(list), scope: scope, kind: kind, answer: answer}))
	return nil
}

// addLocal appends one record of local data to the rule addRule just
// added. It reports false, keeping nothing, when the list's first block
// rule for that name and scope chose another action.
func (b *indexBuilder) addLocal(list int, name string, scope Scope, rr dns.RR) bool {
	slot, ok := b.slotOf(name)
	if !ok || b.profiles[b.ids.get(slot)].set(scope).answer(list) != AnswerLocal {
		return false
	}
	if b.local == nil {
		b.local = make(map[localKey][]dns.RR)
	}
	k := localKey{name: name, list: uint8(list), scope: scope}
	b.local[k] = append(b.local[k], rr)
	return true
}

// slotOf finds an indexed name while building.
func (b *indexBuilder) slotOf(name string) (uint64, bool) {
	slot, _, found := probe(b, name)
	return slot, found
}

// insertName returns the slot of name and whether the name is new, adding
// an entry if it is. An entry gets the "*." prefix with its first
// ScopeBelow rule; one that already exists without it is written again at
// the arena's end.
func insertName[T string | []byte](b *indexBuilder, name T, below bool) (slot uint64, fresh bool) {
	if (b.count+1)*4 > len(b.slots)*3 {
		b.rehash(len(b.slots) * 2)
	}
	slot, tag, found := probe(b, name)
	if !found {
		b.tags[slot] = tag
		b.slots[slot] = appendEntry(b, name, below)
		b.count++
		return slot, true
	}
	if below && !b.profiles[b.ids.get(slot)].hasBelow() {
		b.slots[slot] = appendEntry(b, name, true)
	}
	return slot, false
}

// probe returns the slot of name, or the empty slot where it belongs, and
// the name's tag.
func probe[T string | []byte](b *indexBuilder, name T) (slot uint64, tag uint8, found bool) {
	h := b.seed
	for i := len(name) - 1; i >= 0; i-- {
		h = hashByte(h, name[i])
	}
	h = mixHash(h)
	tag = hashTag(h)
	for i := h & b.mask; ; i = (i + 1) & b.mask {
		switch t := b.tags[i]; {
		case t == 0:
			return i, tag, false
		case t == tag:
			off := b.slots[i]
			l := uint32(b.arena[off])
			if int(l) == len(name) && string(b.arena[off-l:off]) == string(name) {
				return i, tag, true
			}
		}
	}
}

// appendEntry writes ["*."]name[length byte] and returns the length byte's
// offset.
func appendEntry[T string | []byte](b *indexBuilder, name T, below bool) uint32 {
	if below {
		b.arena = append(b.arena, '*', '.')
	}
	b.arena = append(b.arena, name...)
	off := uint32(len(b.arena))
	b.arena = append(b.arena, byte(len(name)))
	return off
}

// rehash moves every entry into a table of size slots.
func (b *indexBuilder) rehash(size int) {
	tags, slots, ids := b.tags, b.slots, b.ids
	b.tags, b.slots, b.ids = make([]uint8, size), make([]uint32, size), newProfileIDs(size)
	if ids.wide != nil {
		b.ids = profileIDs{wide: make([]uint32, size)}
	}
	b.mask = uint64(size - 1)
	for j, t := range tags {
		if t == 0 {
			continue
		}
		off := slots[j]
		name := b.arena[int(off)-int(b.arena[off]) : off]
		h := b.seed
		for k := len(name) - 1; k >= 0; k-- {
			h = hashByte(h, name[k])
		}
		h = mixHash(h)
		i := h & b.mask
		for b.tags[i] != 0 {
			i = (i + 1) & b.mask
		}
		b.tags[i], b.slots[i] = t, off
		b.ids.set(i, ids.get(uint64(j)))
	}
}

// step returns the profile that adds one rule to profile s.from. A list's
// first block rule for a name and scope decides its answer.
func (b *indexBuilder) step(from uint32, s profileStep) uint32 {
	s.from = from
	if s == b.last && b.lastTo != 0 {
		return b.lastTo
	}
	if to, ok := b.steps[s]; ok {
		b.last, b.lastTo = s, to
		return to
	}
	p := b.profiles[from]
	p.set(s.scope).add(int(s.list), s.kind, s.answer)
	to, ok := b.known[p]
	if !ok {
		to = uint32(len(b.profiles))
		b.profiles = append(b.profiles, p)
		b.known[p] = to
	}
	b.steps[s] = to
	b.last, b.lastTo = s, to
	return to
}

// finish hands the table and arena to the Index, first shrinking a table
// sized for many more names than arrived (comments, duplicates) and an
// arena whose size guess was far too high. The builder must not be used
// again: the Index's arena string shares its bytes.
func (b *indexBuilder) finish() *Index {
	if size := tableSize(b.count); size < len(b.slots) {
		b.rehash(size)
	}
	arena := b.arena
	if cap(arena)-len(arena) > len(arena)/8 {
		arena = slices.Clip(slices.Clone(arena))
	}
	b.arena = nil
	return &Index{
		tags:     b.tags,
		slots:    b.slots,
		ids:      b.ids,
		arena:    unsafe.String(unsafe.SliceData(arena), len(arena)), // never written again
		profiles: slices.Clone(b.profiles),
		local:    sortedLocal(b.local),
		mask:     b.mask,
		seed:     b.seed,
		count:    b.count,
	}
}

// sortedLocal orders each rule's records by type, so Verdict.Local lists
// one type's records together.
func sortedLocal(m map[localKey][]dns.RR) map[localKey][]dns.RR {
	for _, rrs := range m {
		slices.SortStableFunc(rrs, func(a, b dns.RR) int { return int(a.Header().Rrtype) - int(b.Header().Rrtype) })
	}
	return m
}
