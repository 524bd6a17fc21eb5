package blocklist

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// groupPolicy is one group compiled against the list bit numbers.
type groupPolicy struct {
	name                  string
	masks                 Masks
	block, allow, monitor []int // list bits in config order, for Explain
}

// clientPrefix is one CIDR of one group, with its config key for Explain.
type clientPrefix struct {
	prefix netip.Prefix
	group  int
	key    string // e.g. "groups[0].clients[1]"
}

// prefixBits is a prefix as 128-bit address and mask (IPv4 as 4-in-6), so
// a match is two AND-compares: a scan of dozens costs tens of nanoseconds.
type prefixBits struct {
	hi, lo, maskHi, maskLo uint64
	entry                  int // index in groupTable.prefixes
}

// groupTable maps a client address to its group. Prefixes are kept per
// address family in config order, so a linear scan finds the first group
// that matches without allocating.
type groupTable struct {
	groups       []groupPolicy
	prefixes     []clientPrefix
	v4, v6       []prefixBits
	defaultGroup int // -1: clients that match no group are not subject to policy
}

// compileGroups builds the table; cfg has been validated and bits maps each
// list name to its bit number.
func compileGroups(cfg Config, bits map[string]int) groupTable {
	t := groupTable{defaultGroup: -1}
	for gi, g := range cfg.Groups {
		gp := groupPolicy{name: g.Name}
		gp.block, gp.masks.Block = listBits(g.Block, bits)
		gp.allow, gp.masks.Allow = listBits(g.Allow, bits)
		gp.monitor, gp.masks.Monitor = listBits(g.Monitor, bits)
		t.groups = append(t.groups, gp)
		for ci, c := range g.Clients {
			p, err := parseClientPrefix(c)
			if err != nil {
				continue // unreachable: Validate parsed it
			}
			t.prefixes = append(t.prefixes, clientPrefix{prefix: p, group: gi, key: fmt.Sprintf("groups[%d].clients[%d]", gi, ci)})
			pb := toBits(p, len(t.prefixes)-1)
			if p.Addr().Is4() {
				t.v4 = append(t.v4, pb)
			} else {
				t.v6 = append(t.v6, pb)
			}
		}
		if g.Name == cfg.DefaultGroup {
			t.defaultGroup = gi
		}
	}
	return t
}

func listBits(names []string, bits map[string]int) ([]int, uint64) {
	var out []int
	var mask uint64
	for _, n := range names {
		b := bits[n]
		out = append(out, b)
		mask |= 1 << b
	}
	return out, mask
}

// lookup returns the client's group index (-1: none) and the matching
// prefix (nil when the default group applied or none did).
func (t *groupTable) lookup(client netip.Addr) (int, *clientPrefix) {
	client = client.Unmap()
	var prefixes []prefixBits
	switch {
	case client.Is4():
		prefixes = t.v4
	case client.Is6():
		prefixes = t.v6
	}
	a := client.As16()
	hi, lo := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])
	for i := range prefixes {
		p := &prefixes[i]
		if hi&p.maskHi == p.hi && lo&p.maskLo == p.lo {
			cp := &t.prefixes[p.entry]
			return cp.group, cp
		}
	}
	return t.defaultGroup, nil
}

func toBits(p netip.Prefix, entry int) prefixBits {
	a := p.Addr().As16() // IPv4 as ::ffff:a.b.c.d
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	maskHi := ^uint64(0) << max(0, 64-bits)
	if bits == 0 {
		maskHi = 0
	}
	maskLo := uint64(0)
	if bits > 64 {
		maskLo = ^uint64(0) << (128 - bits)
	}
	return prefixBits{
		hi: binary.BigEndian.Uint64(a[:8]) & maskHi, lo: binary.BigEndian.Uint64(a[8:]) & maskLo,
		maskHi: maskHi, maskLo: maskLo, entry: entry,
	}
}
