package blocklist

import (
	"math/bits"

	"github.com/miekg/dns"
)

// Masks select, by bit number (list position), which lists count as what
// for one client group.
type Masks struct{ Block, Allow, Monitor uint64 }

// Hit is the most specific rule of one kind that covers a name or address.
type Hit struct {
	Found bool
	List  int    // bit number of the list
	Rule  string // "name", "*.name" or "192.0.2.0/24"; points into the index, never allocated per lookup
	Scope Scope  // for name rules
	// Answer is the rule's own answer (RPZ actions) for block and monitor
	// hits; allow hits have AnswerDefault. For AnswerLocal, the index's
	// LocalData has the records.
	Answer RuleAnswer
}

// Index is the immutable matcher over every list's name rules: one
// open-addressing hash table over all distinct rule names, whatever list
// they come from. A lookup probes it once per label suffix of the name, so
// it costs the same for 1 or 64 lists and never allocates. Readers need no
// lock.
//
// Memory layout, chosen to stay near 30 bytes per rule:
//   - tags: one byte per slot, 0 = empty, else 8 bits of the name's hash, so
//     probing a miss rarely touches the arena;
//   - slots: per slot the arena offset of the entry's length byte;
//   - ids: per slot the entry's profile id, one byte while there are few;
//   - arena: per entry ["*."][name][length byte]; "*." is present when the
//     name has ScopeBelow rules, so both rule spellings are substrings of
//     the arena (a few dead bytes may sit between entries);
//   - profiles: the distinct combinations of lists, kinds, scopes and
//     answers. Most names share a handful, so each entry only stores a
//     small id;
//   - local: RPZ local data, by name, list and scope; few rules have any.
type Index struct {
	tags     []uint8
	slots    []uint32
	ids      profileIDs
	arena    string
	profiles []profile
	local    map[localKey][]dns.RR
	mask     uint64 // len(slots)-1
	seed     uint64 // hash seed, random per index
	count    int
}

// profile is what the lists say about one name, per scope, in the order
// levels read them: exact, subtree, below. The query name itself reads
// sets 0 and 1, a parent of it sets 1 and 2.
type profile struct {
	sets [3]ruleSet
}

// scopeOf names the scope of each of profile.sets.
var scopeOf = [3]Scope{ScopeExact, ScopeSubtree, ScopeBelow}

// ruleSet holds list bits per rule kind, and for block rules their answer
// as three bit planes (bit i of ans[k] is bit k of list i's RuleAnswer).
type ruleSet struct {
	block, allow, pass uint64
	ans                [3]uint64
}

// localKey finds one rule's local data: name is the canonical rule name
// (without "*."), an arena substring at lookup time.
type localKey struct {
	name  string
	list  uint8
	scope Scope
}

func (p *profile) hasBelow() bool { return p.sets[2].any() != 0 }

func (p *profile) set(s Scope) *ruleSet {
	switch s {
	case ScopeExact:
		return &p.sets[0]
	case ScopeBelow:
		return &p.sets[2]
	}
	return &p.sets[1]
}

func (rs *ruleSet) any() uint64 { return rs.block | rs.allow | rs.pass }

func (rs *ruleSet) answer(list int) RuleAnswer {
	return RuleAnswer(rs.ans[0]>>list&1 | (rs.ans[1]>>list&1)<<1 | (rs.ans[2]>>list&1)<<2)
}

// add records one rule of list; a list's first block rule for a name (or
// network) and scope decides its answer.
func (rs *ruleSet) add(list int, kind RuleKind, answer RuleAnswer) {
	bit := uint64(1) << list
	switch {
	case kind == KindAllow:
		rs.allow |= bit
	case kind == KindPassthru:
		rs.pass |= bit
	case rs.block&bit == 0:
		rs.block |= bit
		rs.setAnswer(bit, answer)
	}
}

func (rs *ruleSet) setAnswer(bit uint64, a RuleAnswer) {
	for k := range rs.ans {
		if a&(1<<k) != 0 {
			rs.ans[k] |= bit
		}
	}
}

// Len is the number of distinct rule names indexed.
func (ix *Index) Len() int {
	if ix == nil {
		return 0
	}
	return ix.count
}

// Lookup finds, for name as it arrives in a DNS question (any case, with
// or without the trailing dot), the most specific rules that cover it:
// block from a list in m.Block, allow from any rule of a list in m.Allow,
// an exception (KindAllow) of a list in m.Block or m.Monitor, or a
// passthru of such a list that no more specific rule of its list
// overrides, and monitor from a list in m.Monitor. Ties at one name go to
// the lowest list bit, an exact rule beats one for the names below, and a
// passthru beats a block of the same list for the same name. Lookup walks
// the label suffixes once, right to left, hashing incrementally, and does
// not allocate.
func (ix *Index) Lookup(name string, m Masks) (block, allow, monitor Hit) {
	n := len(name)
	if n > 0 && name[n-1] == '.' {
		n--
	}
	if ix == nil || ix.count == 0 || n == 0 || n > maxNameLen || m.Block|m.Allow|m.Monitor == 0 {
		return
	}
	var buf [maxNameLen]byte
	for i := 0; i < n; i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	q := buf[:n]
	own := m.Block | m.Monitor
	var passing uint64 // lists whose most specific rule so far is a passthru
	// The most specific level of each kind so far; its Hit is made once,
	// at the end.
	var bl, al, ml candidate
	h := ix.seed
	for i := len(q) - 1; i >= 0; i-- {
		h = hashByte(h, q[i])
		if i > 0 && q[i-1] != '.' {
			continue
		}
		slot, ok := ix.find(q[i:], h)
		if !ok {
			continue
		}
		lv := ix.level(slot, i == 0)
		s0, s1 := &lv.p.sets[lv.k], &lv.p.sets[lv.k+1]
		b0, b1 := s0.block, s1.block
		if (b0|b1)&m.Block != 0 {
			bl = candidate{lv, b0 & m.Block, b1 & m.Block}
		}
		if a0, a1 := s0.any()&m.Allow|s0.allow&own, s1.any()&m.Allow|s1.allow&own; a0|a1 != 0 {
			al = candidate{lv, a0, a1}
		}
		if (b0|b1)&m.Monitor != 0 {
			ml = candidate{lv, b0 & m.Monitor, b1 & m.Monitor}
		}
		passing = passing&^(b0|b1) | s0.pass | s1.pass
	}
	if bl.in0|bl.in1 != 0 {
		block = ix.hit(&bl)
	}
	if al.in0|al.in1 != 0 {
		allow = ix.hit(&al)
	}
	if ml.in0|ml.in1 != 0 {
		monitor = ix.hit(&ml)
	}
	if p := passing & own; p != 0 && !allow.Found {
		allow = ix.passHit(q, p)
	}
	allow.Answer = AnswerDefault
	return
}

// passHit finds the most specific passthru rule of the lowest list in
// lists: a second walk, taken only when a passthru decides.
func (ix *Index) passHit(q []byte, lists uint64) Hit {
	bit := lists & -lists
	var c candidate
	for lv := range ix.levels(q) {
		if p0, p1 := lv.p.sets[lv.k].pass&bit, lv.p.sets[lv.k+1].pass&bit; p0|p1 != 0 {
			c = candidate{lv, p0, p1}
		}
	}
	if c.in0|c.in1 == 0 {
		return Hit{} // cannot happen: a passthru of the list stands
	}
	return ix.hit(&c)
}

// level is one indexed suffix of a query name. Two of its profile's rule
// sets apply, p.sets[k] before p.sets[k+1]: for the query name itself its
// exact and subtree rules (k = 0), for a parent its subtree and "*.parent"
// rules (k = 1).
type level struct {
	p   *profile
	off uint32 // arena offset of the entry's length byte
	k   uint8
}

// levels yields the indexed suffixes of q, shortest (least specific)
// first, as Lookup walks them.
func (ix *Index) levels(q []byte) func(yield func(level) bool) {
	return func(yield func(level) bool) {
		h := ix.seed
		for i := len(q) - 1; i >= 0; i-- {
			h = hashByte(h, q[i])
			if i > 0 && q[i-1] != '.' {
				continue
			}
			if slot, ok := ix.find(q[i:], h); ok && !yield(ix.level(slot, i == 0)) {
				return
			}
		}
	}
}

// level is the level at slot; whole means the query is the slot's name.
func (ix *Index) level(slot uint64, whole bool) level {
	lv := level{p: &ix.profiles[ix.ids.get(slot)], off: ix.slots[slot], k: 1}
	if whole {
		lv.k = 0
	}
	return lv
}

// candidate is a level with the lists of one kind found in its two sets.
type candidate struct {
	lv       level
	in0, in1 uint64
}

// hit reports the lowest list bit of the candidate's lists; its first set
// names the rule when that list is in it.
func (ix *Index) hit(c *candidate) Hit {
	list := bits.TrailingZeros64(c.in0 | c.in1)
	k := c.lv.k
	if c.in0&(1<<list) == 0 {
		k++
	}
	start := int(c.lv.off) - int(ix.arena[c.lv.off])
	if k == 2 {
		start -= 2 // "*.name"
	}
	return Hit{Found: true, List: list, Rule: ix.arena[start:c.lv.off], Scope: scopeOf[k], Answer: c.lv.p.sets[k].answer(list)}
}

// LocalData returns the local-data records of a hit with AnswerLocal,
// sorted by type; they belong to the index and must not be modified.
func (ix *Index) LocalData(h Hit) []dns.RR {
	name := h.Rule
	if h.Scope == ScopeBelow {
		name = name[2:]
	}
	return ix.local[localKey{name: name, list: uint8(h.List), scope: h.Scope}]
}

// find returns the slot of name.
func (ix *Index) find(name []byte, h uint64) (uint64, bool) {
	h = mixHash(h)
	tag := hashTag(h)
	for i := h & ix.mask; ; i = (i + 1) & ix.mask {
		t := ix.tags[i]
		if t == 0 {
			return 0, false
		}
		if t != tag {
			continue
		}
		off := int(ix.slots[i])
		l := int(ix.arena[off])
		if l == len(name) && ix.arena[off-l:off] == string(name) {
			return i, true
		}
	}
}

// FNV-1a over the name's bytes from last to first, so the hash of every
// label suffix falls out of one right-to-left pass.
const fnvPrime = 1099511628211

func hashByte(h uint64, c byte) uint64 { return (h ^ uint64(c)) * fnvPrime }

// mixHash spreads FNV's weak low bits, which pick the slot.
func mixHash(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}

func hashTag(h uint64) uint8 {
	if t := uint8(h >> 56); t != 0 {
		return t
	}
	return 1
}
