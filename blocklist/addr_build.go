package blocklist

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// addrBuilder collects response-IP rules for an AddrIndex.
type addrBuilder struct {
	nets  []builtNet
	index map[netip.Prefix]int
	local map[builtLocalKey][]dns.RR
	lists uint64
}

// builtLocalKey finds local data by builder index until finish.
type builtLocalKey struct {
	net  int
	list uint8
}

type builtNet struct {
	prefix netip.Prefix
	rules  ruleSet
}

func newAddrBuilder() *addrBuilder {
	return &addrBuilder{index: make(map[netip.Prefix]int)}
}

// BuildAddrIndex indexes the response-IP rules of lists (list i gets bit
// i); name rules are left to BuildIndex.
func BuildAddrIndex(lists [][]Rule) (*AddrIndex, error) {
	if len(lists) > maxIndexLists {
		return nil, fmt.Errorf("%d lists: at most %d lists can be indexed together", len(lists), maxIndexLists)
	}
	b := newAddrBuilder()
	for li, rules := range lists {
		for _, r := range rules {
			if r.IsAddr() {
				b.add(li, parsedRule{prefix: r.Prefix, kind: r.Kind, answer: r.Answer, record: r.Record, line: r.Line})
			}
		}
	}
	return b.finish(), nil
}

// add adds one rule for list. As for names, a list's first block rule for
// a network decides its answer; add reports false when a local-data
// record was dropped because that first rule had another action.
func (b *addrBuilder) add(list int, r parsedRule) bool {
	p := r.prefix
	i, ok := b.index[p]
	if !ok {
		i = len(b.nets)
		b.index[p] = i
		b.nets = append(b.nets, builtNet{prefix: p})
	}
	b.lists |= 1 << list
	rs := &b.nets[i].rules
	rs.add(list, r.kind, r.answer)
	if r.answer != AnswerLocal || r.record == nil {
		return true
	}
	if rs.answer(list) != AnswerLocal {
		return false
	}
	if b.local == nil {
		b.local = make(map[builtLocalKey][]dns.RR)
	}
	k := builtLocalKey{net: i, list: uint8(list)}
	b.local[k] = append(b.local[k], r.record)
	return true
}

// finish sorts the networks, links each to its parent and interns the
// rule sets.
func (b *addrBuilder) finish() *AddrIndex {
	if len(b.nets) == 0 {
		return nil
	}
	type keyed struct {
		addrNet
		from int32 // index in b.nets
	}
	keys := make([]keyed, len(b.nets))
	for i, n := range b.nets {
		keys[i] = keyed{netKey(n.prefix), int32(i)}
	}
	slices.SortFunc(keys, func(x, y keyed) int { return compareNets(&x.addrNet, &y.addrNet) })
	ix := &AddrIndex{nets: make([]addrNet, len(keys)), lists: b.lists}
	var text strings.Builder
	sets := make(map[ruleSet]uint32)
	newIndex := make([]int32, len(keys))
	var open []int32 // the chain of networks containing the current one
	for j, k := range keys {
		n, src := k.addrNet, &b.nets[k.from]
		newIndex[k.from] = int32(j)
		for len(open) > 0 && !ix.nets[open[len(open)-1]].contains(n.hi, n.lo) {
			open = open[:len(open)-1]
		}
		n.parent = -1
		if len(open) > 0 {
			n.parent = open[len(open)-1]
		}
		open = append(open, int32(j))
		n.set = internSet(sets, &ix.sets, src.rules)
		s := src.prefix.String()
		n.textOff, n.textLen = uint32(text.Len()), uint8(len(s))
		text.WriteString(s)
		ix.nets[j] = n
	}
	ix.text = text.String()
	for k, rrs := range b.local {
		if ix.local == nil {
			ix.local = make(map[addrLocalKey][]dns.RR, len(b.local))
		}
		slices.SortStableFunc(rrs, func(a, b dns.RR) int { return int(a.Header().Rrtype) - int(b.Header().Rrtype) })
		n := &ix.nets[newIndex[k.net]]
		ix.local[addrLocalKey{net: ix.text[n.textOff : n.textOff+uint32(n.textLen)], list: k.list}] = rrs
	}
	return ix
}

// netKey is a prefix as 128 bits, IPv4 mapped.
func netKey(p netip.Prefix) addrNet {
	b := p.Addr().As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	return addrNet{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:]), bits: uint8(bits)}
}

// compareNets orders by address, then widest first.
func compareNets(a, b *addrNet) int {
	return cmp.Or(cmp.Compare(a.hi, b.hi), cmp.Compare(a.lo, b.lo), cmp.Compare(a.bits, b.bits))
}

func internSet(known map[ruleSet]uint32, sets *[]ruleSet, rs ruleSet) uint32 {
	if id, ok := known[rs]; ok {
		return id
	}
	id := uint32(len(*sets))
	*sets = append(*sets, rs)
	known[rs] = id
	return id
}
