package upstream

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/miekg/dns"
)

// advertisedUDPSize is the EDNS0 buffer size we offer upstreams (DNS Flag Day
// 2020): big enough for most answers, small enough to avoid IP fragmentation,
// which is the easy path for spoofed answers. Listeners fit answers to clients.
const advertisedUDPSize = 1232

// maxMessageSize is the largest DNS message over TCP, TLS or HTTPS.
const maxMessageSize = 65535

// errBadResponse marks a reply that is malformed or answers another query.
var errBadResponse = errors.New("bad response")

// packQuery packs q for upstreams with ID 0 (each transport sets its own),
// recursion desired, and an OPT record advertising advertisedUDPSize. The
// client's own OPT keeps its DO bit, version and options. q is not modified.
func packQuery(q *dns.Msg) (wire []byte, clientEDNS bool, err error) {
	m := *q // shallow copy: RRs are shared read-only, slices we change are new
	m.Id = 0
	m.RecursionDesired = true
	m.Extra = make([]dns.RR, 0, len(q.Extra)+1)
	for _, rr := range q.Extra {
		if opt, ok := rr.(*dns.OPT); ok {
			own := *opt
			own.SetUDPSize(advertisedUDPSize)
			rr, clientEDNS = &own, true
		}
		m.Extra = append(m.Extra, rr)
	}
	if !clientEDNS {
		opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		opt.SetUDPSize(advertisedUDPSize)
		m.Extra = append(m.Extra, opt)
	}
	wire, err = m.Pack()
	if err != nil {
		return nil, false, fmt.Errorf("packing query: %w", err)
	}
	return wire, clientEDNS, nil
}

// withID returns a copy of wire carrying a fresh random ID.
func withID(wire []byte) ([]byte, uint16) {
	id := uint16(rand.Uint32())
	out := make([]byte, len(wire))
	copy(out, wire)
	out[0], out[1] = byte(id>>8), byte(id)
	return out, id
}

// parseReply unpacks buf and checks it answers the query with this ID and
// question; anything else is errBadResponse.
func parseReply(buf []byte, id uint16, q dns.Question) (*dns.Msg, error) {
	if len(buf) < 12 {
		return nil, fmt.Errorf("%w: %d-byte message", errBadResponse, len(buf))
	}
	if got := uint16(buf[0])<<8 | uint16(buf[1]); got != id {
		return nil, fmt.Errorf("%w: ID %d, expected %d", errBadResponse, got, id)
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadResponse, err)
	}
	if !r.Response {
		return nil, fmt.Errorf("%w: QR bit not set", errBadResponse)
	}
	// Some servers drop the question from error replies.
	errorWithoutQuestion := len(r.Question) == 0 && r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError
	if !errorWithoutQuestion && (len(r.Question) != 1 || !sameQuestion(r.Question[0], q)) {
		return nil, fmt.Errorf("%w: answers a different question", errBadResponse)
	}
	return r, nil
}

func sameQuestion(a, b dns.Question) bool {
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && equalFoldASCII(a.Name, b.Name)
}

// equalFoldASCII compares DNS names ignoring ASCII case only (RFC 4343).
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// finish makes reply answer q as the client sent it: same ID, same question
// (including case), and no OPT record unless the client used EDNS.
func finish(reply, q *dns.Msg, clientEDNS bool) {
	reply.Id = q.Id
	reply.Question = append(reply.Question[:0], q.Question...)
	if clientEDNS {
		return
	}
	extra := reply.Extra[:0]
	for _, rr := range reply.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	reply.Extra = extra
	if reply.Rcode > 0xF { // extended rcodes need EDNS; the client cannot read them
		reply.Rcode = dns.RcodeServerFailure
	}
}
