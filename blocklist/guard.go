package blocklist

import (
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// Guard rejects block rules that would black-hole shared infrastructure:
// public suffixes ("com", "co.uk", "github.io") and names that cover a
// never-block name. It is immutable after NewGuard.
type Guard struct {
	// covered maps the never-block names and every parent of them to the
	// never-block name they cover.
	covered map[string]string
}

// NewGuard builds a guard from never-block names. Names that are not valid
// domain names are ignored; the config layer reports them.
func NewGuard(neverBlock []string) *Guard {
	g := &Guard{covered: make(map[string]string, 3*len(neverBlock))}
	for _, raw := range neverBlock {
		name, reason := canonicalName([]byte(strings.TrimSpace(raw)))
		if reason != "" {
			continue
		}
		for s := name; ; {
			if _, seen := g.covered[s]; !seen {
				g.covered[s] = name
			}
			i := strings.IndexByte(s, '.')
			if i < 0 {
				break
			}
			s = s[i+1:]
		}
	}
	return g
}

// Check returns why r must not be used, or "" when it may. Only block
// rules are checked: an allow rule can never black-hole anything. A rule
// for a host under a never-block name is fine (never-block
// "googleusercontent.com" allows blocking "abc.googleusercontent.com").
// Response-IP rules are checked by checkAddr.
func (g *Guard) Check(r Rule) string {
	switch {
	case r.Kind != KindBlock:
		return ""
	case r.IsAddr():
		return checkAddr(r.Prefix)
	}
	return g.checkBlock(r.Name, r.Scope)
}

// checkBlock is Check for a block name rule. It keeps no reference to
// name, so the engine may pass a string that aliases its parse buffer. An
// exact rule (RPZ "name") blocks only the name itself, so it only must not
// be a never-block name; a public suffix alone ("com") is harmless.
func (g *Guard) checkBlock(name string, scope Scope) string {
	if scope == ScopeExact {
		if nb := g.covered[name]; nb == name {
			return "never-block name " + nb + " must not be blocked"
		}
		return ""
	}
	if ps, _ := publicsuffix.PublicSuffix(name); ps == name {
		return "public suffix " + name + ": blocking it would block every domain registered under it"
	}
	if nb, ok := g.covered[name]; ok {
		switch {
		case nb == name && scope == ScopeBelow:
			return "would block every name under never-block name " + nb
		case nb == name:
			return "never-block name " + nb + " must not be blocked"
		}
		return "would block never-block name " + nb
	}
	return ""
}

// Response-IP rules wider than these would block answers from a large
// part of the internet: no single operator holds more than an IPv4 /8,
// and an IPv6 /16 spans many registries' allocations. never_block names
// do not apply to networks: which addresses a name resolves to changes,
// and shared CDN space is kept out of curated network lists instead.
const (
	minBlockBitsIPv4 = 8
	minBlockBitsIPv6 = 16
)

// checkAddr refuses blocking networks that are too wide.
func checkAddr(p netip.Prefix) string {
	limit := minBlockBitsIPv6
	if p.Addr().Is4() {
		limit = minBlockBitsIPv4
	}
	if p.Bits() < limit {
		return fmt.Sprintf("network %s is wider than /%d: blocking it would block answers from a large part of the internet", p, limit)
	}
	return ""
}
