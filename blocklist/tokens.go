package blocklist

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
)

// Device tokens put a query in a group whatever its source address: a
// managed phone off the office network still gets its group's policy. A
// token travels as the first label of the DoT/DoQ server name
// ({token}.dns.example) and in the DoH path (/dns-query/{token}), so it
// must be a valid DNS label and URL path segment at once.
const (
	// MinTokenLen makes a token a secret worth the name: 20 characters of
	// [a-z0-9] are over 100 bits when generated at random (openssl rand
	// -hex 16 gives 32 hex digits).
	MinTokenLen = 20
	// MaxTokenLen is the longest DNS label.
	MaxTokenLen = 63
)

// Unknown-token policies (Config.UnknownToken).
const (
	UnknownTokenAddress = "address" // the policy of the query's source address
	UnknownTokenRefuse  = "refuse"  // REFUSED
)

// ValidateToken says whether s can be a device token: MinTokenLen to
// MaxTokenLen characters of lower-case a-z, 0-9 and '-', not starting or
// ending with '-', and not "xx--" (reserved for IDNA, e.g. "xn--").
func ValidateToken(s string) error {
	switch {
	case len(s) < MinTokenLen:
		return fmt.Errorf("is %d characters; a token is a secret and needs at least %d (generate one with: openssl rand -hex 16)", len(s), MinTokenLen)
	case len(s) > MaxTokenLen:
		return fmt.Errorf("is %d characters; at most %d fit in the first label of a server name", len(s), MaxTokenLen)
	case s[0] == '-' || s[len(s)-1] == '-':
		return fmt.Errorf("starts or ends with '-', which a DNS label may not")
	case len(s) >= 4 && s[2:4] == "--":
		return fmt.Errorf("has '--' as its 3rd and 4th characters, which DNS reserves for IDNA labels (xn--)")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("has %q at position %d; use lower-case letters a-z, digits 0-9 and '-' only (it must work as a DNS label and a URL path segment)", c, i+1)
		}
	}
	return nil
}

// TokenID is the short, stable name of a token for logs, the audit log and
// explain: the first 8 hex digits of its SHA-256. It identifies a device's
// token to whoever holds the token, and reveals nothing of it otherwise.
func TokenID(token string) string {
	d := tokenDigest(token)
	return hex.EncodeToString(d[:4])
}

// tokenDigest hashes the token lower-cased (server names are
// case-insensitive) without allocating: the copy lives on the stack.
func tokenDigest(token string) [sha256.Size]byte {
	var buf [MaxTokenLen + 1]byte
	n := copy(buf[:], token) // longer inputs are cut, and then match nothing: see tokenTable.lookup
	for i := 0; i < n; i++ {
		if c := buf[i]; c >= 'A' && c <= 'Z' {
			buf[i] = c + 'a' - 'A'
		}
	}
	return sha256.Sum256(buf[:n])
}

func (c *Config) validateTokens() error {
	switch c.UnknownToken {
	case "", UnknownTokenAddress, UnknownTokenRefuse:
	default:
		return configErr("unknown_token", "%q is not %q (use the source address's policy) or %q (answer REFUSED)",
			c.UnknownToken, UnknownTokenAddress, UnknownTokenRefuse)
	}
	seen := make(map[string]string) // token -> key path of its first use
	for i, g := range c.Groups {
		for j, tok := range g.Tokens {
			key := fmt.Sprintf("groups[%d].tokens[%d]", i, j)
			if err := ValidateToken(tok); err != nil {
				// The message names the token by its id only: config errors end up in logs.
				return configErr(key, "token %s %s", TokenID(tok), err)
			}
			if prev, dup := seen[tok]; dup {
				return configErr(key, "token %s is already listed at %s; a token must name one device group", TokenID(tok), prev)
			}
			seen[tok] = key
		}
	}
	return nil
}

// tokenEntry is one configured token, compiled.
type tokenEntry struct {
	digest [sha256.Size]byte
	group  int
	id     string // TokenID
	key    string // e.g. "groups[0].tokens[1]", for Explain
}

// tokenTable finds a token's group by its SHA-256. A map keyed by the
// digest answers in constant time whatever the number of tokens, and
// probing it tells an attacker nothing about a secret's bytes: they choose
// the input, not its hash.
type tokenTable struct {
	byDigest map[[sha256.Size]byte]*tokenEntry
}

func compileTokens(cfg Config) tokenTable {
	t := tokenTable{byDigest: make(map[[sha256.Size]byte]*tokenEntry)}
	for gi, g := range cfg.Groups {
		for j, tok := range g.Tokens {
			d := tokenDigest(tok)
			t.byDigest[d] = &tokenEntry{digest: d, group: gi, id: TokenID(tok), key: fmt.Sprintf("groups[%d].tokens[%d]", gi, j)}
		}
	}
	return t
}

// lookup returns the entry for token, or nil. The final compare is
// crypto/subtle's, so a match never depends on a short-circuiting compare.
func (t *tokenTable) lookup(token string) *tokenEntry {
	if len(token) < MinTokenLen || len(token) > MaxTokenLen {
		return nil
	}
	d := tokenDigest(token)
	e := t.byDigest[d]
	if e == nil || subtle.ConstantTimeCompare(e.digest[:], d[:]) != 1 {
		return nil
	}
	return e
}

// TokenGroup returns the group a token belongs to and the token's id, or
// ok=false when no group lists it. It allocates nothing.
func (e *Engine) TokenGroup(token string) (group, tokenID string, ok bool) {
	s := e.snap.Load()
	te := s.tokens.lookup(token)
	if te == nil {
		return "", "", false
	}
	return s.groups.groups[te.group].name, te.id, true
}

// refusesUnknownTokens reports whether unknown_token is "refuse".
func (c *Config) refusesUnknownTokens() bool {
	return strings.EqualFold(c.UnknownToken, UnknownTokenRefuse)
}
