package blocklist

import (
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
func (g *Guard) Check(r Rule) string {
	if r.Kind != KindBlock {
		return ""
	}
	return g.checkBlock(r.Name, r.OnlyBelow)
}

// checkBlock is Check for a block rule. It keeps no reference to name, so
// the engine may pass a string that aliases its parse buffer.
func (g *Guard) checkBlock(name string, onlyBelow bool) string {
	if ps, _ := publicsuffix.PublicSuffix(name); ps == name {
		return "public suffix " + name + ": blocking it would block every domain registered under it"
	}
	if nb, ok := g.covered[name]; ok {
		switch {
		case nb == name && onlyBelow:
			return "would block every name under never-block name " + nb
		case nb == name:
			return "never-block name " + nb + " must not be blocked"
		}
		return "would block never-block name " + nb
	}
	return ""
}
