// Package dnswire holds the DNS wire-format facts and helpers that the
// resolver and its upstream forwarder share, so each exists once.
package dnswire

import "encoding/binary"

const (
	// HeaderLen is the size of a DNS message header (RFC 1035 §4.1.1).
	HeaderLen = 12
	// UDPSize is the EDNS buffer size dnsward advertises to clients and
	// upstreams alike: the DNS Flag Day 2020 value, small enough to avoid
	// IP fragmentation (the easy path for spoofed answers).
	UDPSize = 1232
	// MinUDPSize is what a client without EDNS can take (RFC 1035 §4.2.1).
	MinUDPSize = 512
	// MaxMessageSize is the largest DNS message (a 16-bit length over TCP,
	// TLS, HTTPS and QUIC).
	MaxMessageSize = 65535
	// TypeOPT is the EDNS pseudo-record type (RFC 6891).
	TypeOPT = 41
)

// Header flag bits in the second 16-bit word.
const (
	FlagQR = 0x8000
	FlagAA = 0x0400
	FlagTC = 0x0200
	FlagRD = 0x0100
	FlagRA = 0x0080
	FlagAD = 0x0020
	FlagCD = 0x0010
)

// EqualFold compares wire names (and the type/class bytes after them)
// ignoring ASCII case only (RFC 4343). Label lengths are below 64, so
// folding never changes one.
func EqualFold(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// AppendOPT appends an OPT record offering UDPSize, with the DO bit, the
// upper eight bits of an extended RCODE (RFC 6891 §6.1.3) and EDNS
// version 0, and counts it in ARCOUNT. It returns the offset of the
// record's RDLENGTH, for AppendOption.
func AppendOPT(msg []byte, do bool, rcode int) ([]byte, int) {
	var flags byte
	if do {
		flags = 0x80
	}
	msg = append(msg, 0, 0, TypeOPT, UDPSize>>8, UDPSize&0xff, byte(rcode>>4), 0, flags, 0, 0, 0)
	binary.BigEndian.PutUint16(msg[10:], binary.BigEndian.Uint16(msg[10:])+1)
	return msg, len(msg) - 2
}

// AppendOption appends one EDNS option, its data the concatenation of
// parts, to the OPT record whose RDLENGTH is at rdlenAt (the last record
// in msg), and grows that RDLENGTH.
func AppendOption(msg []byte, rdlenAt int, code uint16, parts ...string) []byte {
	start := len(msg)
	msg = binary.BigEndian.AppendUint16(msg, code)
	msg = append(msg, 0, 0)
	for _, p := range parts {
		msg = append(msg, p...)
	}
	binary.BigEndian.PutUint16(msg[start+2:], uint16(len(msg)-start-4))
	rdlen := binary.BigEndian.Uint16(msg[rdlenAt:])
	binary.BigEndian.PutUint16(msg[rdlenAt:], rdlen+uint16(len(msg)-start))
	return msg
}
