package blocklist

import (
	"bytes"
	"net/netip"
	"strings"

	"golang.org/x/net/idna"
)

const (
	maxNameLen  = 253 // RFC 1035 presentation length without the trailing dot
	maxLabelLen = 63
)

// canonicalName validates a domain name and returns it lower-cased, in
// punycode and without a trailing dot.
func canonicalName(raw []byte) (string, string) {
	var buf nameBuf
	b, reason := buf.canonical(raw)
	return string(b), reason
}

// nameBuf holds one canonical name, so the parser can hand names to a sink
// without allocating a string per rule.
type nameBuf [maxNameLen]byte

// ruleName turns one list entry ("Name", "*.name", "bücher.example.") into
// the canonical rule name: lower case, punycode, no trailing dot. onlyBelow
// reports a "*." prefix. A non-empty reason means the entry is unusable.
// The name is valid until buf is used again.
func (buf *nameBuf) ruleName(raw []byte) (name []byte, onlyBelow bool, reason string) {
	if len(raw) >= 2 && raw[0] == '*' && raw[1] == '.' {
		onlyBelow = true
		raw = raw[2:]
		if len(raw) == 0 || string(raw) == "*" || string(raw) == "*." {
			return nil, false, "wildcard would match every name"
		}
	} else if string(raw) == "*" || string(raw) == "*." {
		return nil, false, "bare * would match every name"
	}
	name, reason = buf.canonical(raw)
	return name, onlyBelow, reason
}

// canonical is canonicalName writing into buf. Only IDN names allocate.
func (buf *nameBuf) canonical(raw []byte) ([]byte, string) {
	if n := len(raw); n > 0 && raw[n-1] == '.' {
		raw = raw[:n-1]
	}
	if len(raw) == 0 {
		return nil, "empty name"
	}
	if len(raw) > maxNameLen {
		for _, c := range raw {
			if c >= 0x80 {
				return idnName(string(raw))
			}
		}
		return nil, "name longer than 253 characters"
	}
	for i, c := range raw {
		if c >= 0x80 {
			return idnName(string(raw))
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	lower := buf[:len(raw)]
	if reason := checkLabels(lower); reason != "" {
		if bytes.IndexByte(lower, ':') >= 0 {
			if _, err := netip.ParseAddr(string(lower)); err == nil {
				return nil, "IPv6 address, not a domain name"
			}
		}
		return nil, reason
	}
	return lower, ""
}

// idnName converts an internationalised name with the IDNA lookup profile
// (the one resolvers and browsers use), then checks the ASCII result.
func idnName(s string) ([]byte, string) {
	ascii, err := idna.Lookup.ToASCII(s)
	if err != nil {
		return nil, "invalid internationalised name: " + trimIDNAError(err.Error())
	}
	ascii = strings.TrimSuffix(ascii, ".")
	if len(ascii) > maxNameLen {
		return nil, "name longer than 253 characters (in punycode)"
	}
	if reason := checkLabels(ascii); reason != "" {
		return nil, reason
	}
	return []byte(ascii), ""
}

func trimIDNAError(msg string) string {
	return strings.TrimPrefix(msg, "idna: ")
}

// checkLabels validates a lower-case ASCII name: letters, digits, '-' and
// '_' (real lists contain underscores), labels of 1..63 bytes, and a
// non-numeric last label so IPv4 addresses and fragments are refused.
func checkLabels[T string | []byte](name T) string {
	start := 0
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '.' {
			c := name[i]
			if ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') || c == '-' || c == '_' {
				continue
			}
			if c == '*' {
				return "wildcard '*' is only allowed as the whole first label (*.name)"
			}
			return "invalid character " + quoteByte(c)
		}
		switch n := i - start; {
		case n == 0:
			return "empty label"
		case n > maxLabelLen:
			return "label longer than 63 characters"
		}
		if i == len(name) && allDigits(name[start:i]) {
			if looksLikeIPv4(name) {
				return "IP address, not a domain name"
			}
			return "numeric top-level label"
		}
		start = i + 1
	}
	return ""
}

func allDigits[T string | []byte](b T) bool {
	for i := 0; i < len(b); i++ {
		if b[i] < '0' || b[i] > '9' {
			return false
		}
	}
	return true
}

func looksLikeIPv4[T string | []byte](b T) bool {
	for i := 0; i < len(b); i++ {
		if c := b[i]; (c < '0' || c > '9') && c != '.' {
			return false
		}
	}
	return true
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return "'" + string(rune(c)) + "'"
	}
	const hex = "0123456789abcdef"
	return "byte 0x" + string([]byte{hex[c>>4], hex[c&15]})
}
