package blocklist

import (
	"bytes"
)

// isAdblockLine reports adblock/AdGuard syntax: anchors, exceptions,
// separators, modifiers or regular expressions.
func isAdblockLine(t []byte) bool {
	if t[0] == '|' || t[0] == '@' || t[0] == '/' {
		return true
	}
	for _, c := range t { // not bytes.ContainsAny: it builds a set per call, on every line
		if c == '^' || c == '$' {
			return true
		}
	}
	return false
}

// parseAdblock accepts the domain rules "||name^" and "@@||name^"
// (allow); anything that matches URLs rather than names is rejected, as
// treating it as a name rule would block more than the list author meant.
func parseAdblock(c *collector, line int, text, t []byte) {
	kind := KindBlock
	if bytes.HasPrefix(t, []byte("@@")) {
		kind = KindAllow
		t = t[2:]
	}
	switch {
	case bytes.HasPrefix(t, []byte("||")):
		t = t[2:]
	case len(t) > 0 && t[0] == '/':
		c.reject(line, text, "adblock regular expression rule, not a domain rule")
		return
	default:
		c.reject(line, text, "adblock rule without a || domain anchor")
		return
	}
	if i := bytes.IndexByte(t, '$'); i >= 0 {
		c.reject(line, text, "adblock rule with modifiers ("+readableText(t[i:])+") is not a plain domain rule")
		return
	}
	t = bytes.TrimSuffix(t, []byte("|"))
	t = bytes.TrimSuffix(t, []byte("^"))
	if i := bytes.IndexAny(t, "/^|:?=&"); i >= 0 {
		c.reject(line, text, "adblock rule with a path or pattern is not a plain domain rule")
		return
	}
	c.addName(t, kind, line, text)
}
