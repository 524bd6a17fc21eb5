package blocklist

import (
	"encoding/binary"
	"math/bits"
	"net/netip"

	"github.com/miekg/dns"
)

// AddrIndex is the immutable matcher over every list's response-IP rules
// (CIDR lists and RPZ rpz-ip triggers). Networks are kept sorted by
// address, each pointing at the next wider listed network that contains
// it, so a lookup is one binary search and a short walk outwards; it never
// allocates and needs no lock. IPv4 is kept as IPv4-mapped IPv6, so one
// table serves both families and a mapped AAAA matches IPv4 rules.
type AddrIndex struct {
	nets  []addrNet
	text  string                    // every network's text ("192.0.2.0/24"), back to back
	sets  []ruleSet                 // the distinct rule sets; nets share them by number
	local map[addrLocalKey][]dns.RR // by network text and list
	lists uint64                    // lists that have at least one network here
}

// addrNet is one listed network.
type addrNet struct {
	hi, lo  uint64 // network address as 128 bits
	parent  int32  // index of the next wider listed network containing it; -1: none
	set     uint32 // index in AddrIndex.sets
	textOff uint32
	bits    uint8 // prefix length in 128-bit terms (IPv4 /24 is 120)
	textLen uint8
}

// addrLocalKey finds one network's local data for one list.
type addrLocalKey struct {
	net  string // as Hit.Rule spells it
	list uint8
}

// Len is the number of distinct networks indexed.
func (ix *AddrIndex) Len() int {
	if ix == nil {
		return 0
	}
	return len(ix.nets)
}

// Lists returns the bits of the lists with response-IP rules.
func (ix *AddrIndex) Lists() uint64 {
	if ix == nil {
		return 0
	}
	return ix.lists
}

// Lookup finds the most specific rules whose networks contain a, with the
// same roles as Index.Lookup: block from m.Block lists, allow from any
// rule of m.Allow lists or a passthru of an m.Block or m.Monitor list that
// no more specific network of its list overrides, monitor from m.Monitor
// lists. Ties at one network go to the lowest list bit.
func (ix *AddrIndex) Lookup(a netip.Addr, m Masks) (block, allow, monitor Hit) {
	if ix == nil || ix.lists&(m.Block|m.Allow|m.Monitor) == 0 || !a.IsValid() {
		return
	}
	a = a.Unmap()
	b := a.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	// IPv4 answers match IPv4 networks only, not IPv6 ones wide enough to
	// hold the IPv4-mapped space (::/16 is no rule for 192.0.2.1).
	minBits := uint8(0)
	if a.Is4() {
		minBits = 96
	}
	own := m.Block | m.Monitor
	var decided uint64 // lists that a more specific network already has a rule of
	var pass Hit
	for i := ix.lastAtOrBefore(hi, lo); i >= 0; i = int(ix.nets[i].parent) {
		n := &ix.nets[i]
		if n.bits < minBits {
			break // its parents are wider still
		}
		if !n.contains(hi, lo) {
			continue
		}
		rs := &ix.sets[n.set]
		if b := rs.block & m.Block; b != 0 && !block.Found {
			block = ix.hit(i, rs, b)
		}
		if b := rs.any()&m.Allow | rs.allow&own; b != 0 && !allow.Found {
			allow = ix.hit(i, rs, b)
		}
		if b := rs.block & m.Monitor; b != 0 && !monitor.Found {
			monitor = ix.hit(i, rs, b)
		}
		if b := rs.pass &^ decided & own; b != 0 && !pass.Found {
			pass = ix.hit(i, rs, b)
		}
		decided |= rs.block | rs.pass
	}
	if !allow.Found {
		allow = pass
	}
	allow.Answer = AnswerDefault
	return
}

// lastAtOrBefore is the index of the last network whose address is at or
// before (hi, lo), -1 if none. Networks with one address are sorted widest
// first, so it is the most specific of them. If it does not contain the
// address, a network that does can only be one of its parents: listed
// networks nest or are disjoint.
func (ix *AddrIndex) lastAtOrBefore(hi, lo uint64) int {
	l, r := 0, len(ix.nets) // invariant: nets[:l] at or before, nets[r:] after
	for l < r {
		m := int(uint(l+r) >> 1)
		n := &ix.nets[m]
		if n.hi < hi || n.hi == hi && n.lo <= lo {
			l = m + 1
		} else {
			r = m
		}
	}
	return l - 1
}

func (n *addrNet) contains(hi, lo uint64) bool {
	mh, ml := prefixMasks(int(n.bits))
	return hi&mh == n.hi && lo&ml == n.lo
}

// prefixMasks are the two 64-bit halves of a /bits mask.
func prefixMasks(bits int) (hi, lo uint64) {
	if bits >= 64 {
		return ^uint64(0), ^uint64(0) << (128 - bits) // 0 for bits == 64
	}
	return ^uint64(0) << (64 - bits), 0 // 0 for bits == 0
}

func (ix *AddrIndex) hit(i int, rs *ruleSet, lists uint64) Hit {
	list := bits.TrailingZeros64(lists)
	n := &ix.nets[i]
	return Hit{Found: true, List: list, Rule: ix.text[n.textOff : n.textOff+uint32(n.textLen)], Answer: rs.answer(list)}
}

// LocalData returns the local-data records of a hit with AnswerLocal,
// sorted by type; they belong to the index and must not be modified.
func (ix *AddrIndex) LocalData(h Hit) []dns.RR {
	return ix.local[addrLocalKey{net: h.Rule, list: uint8(h.List)}]
}
