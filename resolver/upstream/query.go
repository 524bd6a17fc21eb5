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
	if err := CheckRecordData(r); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadResponse, err)
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

// CheckRecordData rejects an unpacked message holding a record whose data
// is incomplete. miekg/dns accepts record data that stops early and leaves
// the missing fields zero; packed again, such a record can become bytes
// that no longer parse (an SOA cut after its first name gets an empty
// second name followed by five numbers), so passing it on or caching it
// would hand clients a broken packet. Unbound calls such replies FORMERR.
func CheckRecordData(m *dns.Msg) error {
	for _, section := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range section {
			if !completeData(rr) {
				h := rr.Header()
				return fmt.Errorf("%s record for %q has incomplete data", dns.TypeToString[h.Rrtype], h.Name)
			}
		}
	}
	return nil
}

// completeData reports whether rr's data was whole on the wire.
func completeData(rr dns.RR) bool {
	switch rr.(type) {
	case *dns.OPT, *dns.NULL, *dns.APL, *dns.RFC3597:
		// Opaque or list data, which may be empty: OPT without options
		// (RFC 6891), NULL (RFC 1035), APL with no items (RFC 3123), and
		// types we do not know (RFC 3597).
		return true
	}
	if rr.Header().Rdlength == 0 {
		return false // every other type needs some data
	}
	switch rr.(type) {
	case *dns.A, *dns.AAAA, *dns.CNAME, *dns.NS, *dns.PTR, *dns.DNAME, *dns.TXT:
		// Fixed-size data fails to unpack when short; one name or a run
		// of strings cannot be cut between fields. Most replies hold only
		// these, so they skip the round trip below.
		return true
	}
	// Anything else must survive being packed on its own and read back.
	buf := make([]byte, dns.Len(rr)+1)
	n, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return false
	}
	_, end, err := dns.UnpackRR(buf[:n], 0)
	return err == nil && end == n
}
