package blocklist

import "math/bits"

// Masks select, by bit number (list position), which lists count as what
// for one client group.
type Masks struct{ Block, Allow, Monitor uint64 }

// Hit is the most specific rule of one kind that covers a name.
type Hit struct {
	Found  bool
	List   int    // bit number of the list
	Rule   string // "name" or "*.name"; points into the index, never allocated per lookup
	Answer RuleAnswer
}

// Index is the immutable matcher over every list: one open-addressing hash
// table over all distinct rule names, whatever list they come from. A
// lookup probes it once per label suffix of the name, so it costs the same
// for 1 or 64 lists and never allocates. Readers need no lock.
//
// Memory layout, chosen to stay near 30 bytes per rule:
//   - tags: one byte per slot, 0 = empty, else 8 bits of the name's hash, so
//     probing a miss rarely touches the arena;
//   - slots: per slot the arena offset of the entry's length byte;
//   - ids: per slot the entry's profile id, one byte while there are few;
//   - arena: per entry ["*."][name][length byte]; "*." is present when the
//     name has OnlyBelow rules, so both rule spellings are substrings of the
//     arena (a few dead bytes may sit between entries);
//   - profiles: the distinct combinations of lists, kinds and answers.
//     Most names share a handful, so each entry only stores a small id.
type Index struct {
	tags     []uint8
	slots    []uint32
	ids      profileIDs
	arena    string
	profiles []profile
	mask     uint64 // len(slots)-1
	seed     uint64 // hash seed, random per index
	count    int
}

// profile is what the lists say about one name: rules for the name and
// below it (exact), and rules only for the names below it (*.name).
type profile struct {
	exact, below ruleSet
}

// ruleSet holds list bits per rule kind, and which block rules ask for
// their own answer (RPZ actions).
type ruleSet struct {
	block, allow     uint64
	nxdomain, nodata uint64
}

func (p *profile) hasBelow() bool { return p.below.block|p.below.allow != 0 }

// Len is the number of distinct rule names indexed.
func (ix *Index) Len() int {
	if ix == nil {
		return 0
	}
	return ix.count
}

// Lookup finds, for name as it arrives in a DNS question (any case, with
// or without the trailing dot), the most specific rules that cover it:
// block from a list in m.Block, allow from any rule of a list in m.Allow
// or an exception (KindAllow) of a list in m.Block or m.Monitor, and
// monitor from a list in m.Monitor. Ties at one name go to the lowest list
// bit. Lookup walks the label suffixes once, right to left, hashing
// incrementally, and does not allocate.
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
	own := m.Block | m.Monitor
	h := ix.seed
	for i := n - 1; i >= 0; i-- {
		h = hashByte(h, buf[i])
		if i > 0 && buf[i-1] != '.' {
			continue
		}
		slot, ok := ix.find(buf[i:n], h)
		if !ok {
			continue
		}
		// Suffixes are visited shortest first, so later hits are more
		// specific and replace earlier ones.
		off := ix.slots[slot]
		p, l := &ix.profiles[ix.ids.get(slot)], int(ix.arena[off])
		ex, bl := p.exact, p.below
		if i == 0 { // *.name rules do not match name itself
			bl = ruleSet{}
		}
		if b := (ex.block | bl.block) & m.Block; b != 0 {
			block = ix.hit(off, l, b, ex.block, ex, bl)
		}
		exAllow := (ex.block|ex.allow)&m.Allow | ex.allow&own
		if b := exAllow | (bl.block|bl.allow)&m.Allow | bl.allow&own; b != 0 {
			allow = ix.hit(off, l, b, exAllow, ex, bl)
			allow.Answer = AnswerDefault
		}
		if b := (ex.block | bl.block) & m.Monitor; b != 0 {
			monitor = ix.hit(off, l, b, ex.block, ex, bl)
		}
	}
	return
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

// profileIDs holds one profile id per table slot, a byte each until an id
// needs more.
type profileIDs struct {
	narrow []uint8
	wide   []uint32 // replaces narrow once an id exceeds 255
}

func newProfileIDs(n int) profileIDs { return profileIDs{narrow: make([]uint8, n)} }

func (p *profileIDs) get(i uint64) uint32 {
	if p.wide != nil {
		return p.wide[i]
	}
	return uint32(p.narrow[i])
}

func (p *profileIDs) set(i uint64, id uint32) {
	if p.wide == nil && id > 0xff {
		p.wide = make([]uint32, len(p.narrow))
		for j, v := range p.narrow {
			p.wide[j] = uint32(v)
		}
		p.narrow = nil
	}
	if p.wide != nil {
		p.wide[i] = id
		return
	}
	p.narrow[i] = uint8(id)
}

func (p *profileIDs) len() int { return max(len(p.narrow), len(p.wide)) }

// hit reports the lowest list bit of lists; it names the exact rule when
// that list has one (exactBits), else the "*.name" rule.
func (ix *Index) hit(off uint32, l int, lists, exactBits uint64, ex, bl ruleSet) Hit {
	list := bits.TrailingZeros64(lists)
	bit := uint64(1) << list
	rs, start := ex, int(off)-l
	if exactBits&bit == 0 {
		rs, start = bl, start-2
	}
	h := Hit{Found: true, List: list, Rule: ix.arena[start:off]}
	switch {
	case rs.nxdomain&bit != 0:
		h.Answer = AnswerNXDomain
	case rs.nodata&bit != 0:
		h.Answer = AnswerNoData
	}
	return h
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
