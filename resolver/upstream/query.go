package upstream

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnswire"
)

// Query is one question for the upstreams. Nothing else of the client's
// message is forwarded: not its ID, not its EDNS options (an ECS option
// would tell the upstream where the client is).
type Query struct {
	Name   string // fully qualified; sent as written (the resolver lower-cases it)
	Type   uint16
	Class  uint16
	DO, CD bool
}

// errBadResponse marks a reply that is malformed or answers another query.
var errBadResponse = errors.New("bad response")

// packQuery returns q in wire form with ID 0 (each attempt sets its own):
// RD set, CD as asked, and an OPT record offering dnswire.UDPSize with the
// DO bit. It also returns the question section's length, for matchesQuery.
func packQuery(q Query) ([]byte, int, error) {
	buf := make([]byte, dnswire.HeaderLen, dnswire.HeaderLen+len(q.Name)+2+4+11)
	flags := uint16(dnswire.FlagRD)
	if q.CD {
		flags |= dnswire.FlagCD
	}
	binary.BigEndian.PutUint16(buf[2:], flags)
	binary.BigEndian.PutUint16(buf[4:], 1) // QDCOUNT
	buf = buf[:cap(buf)]
	end, err := dns.PackDomainName(q.Name, buf, dnswire.HeaderLen, nil, false)
	if err != nil {
		return nil, 0, fmt.Errorf("packing query for %q: %w", q.Name, err)
	}
	buf = buf[:end]
	buf = binary.BigEndian.AppendUint16(buf, q.Type)
	buf = binary.BigEndian.AppendUint16(buf, q.Class)
	qlen := len(buf) - dnswire.HeaderLen
	buf, _ = dnswire.AppendOPT(buf, q.DO, 0)
	return buf, qlen, nil
}

// withID returns a copy of wire carrying a fresh random ID.
func withID(wire []byte) ([]byte, uint16) {
	id := randomID()
	out := make([]byte, len(wire))
	copy(out, wire)
	binary.BigEndian.PutUint16(out, id)
	return out, id
}

// matchesQuery is the cheap check that a datagram is the reply to the
// query sent with this ID and question section (wire is that query):
// anything else may be spoofed and is ignored while the real reply is
// awaited. Some servers drop the question from error replies.
func matchesQuery(reply, wire []byte, id uint16, qlen int) bool {
	h := dnswire.HeaderLen
	if len(reply) < h || binary.BigEndian.Uint16(reply) != id || reply[2]&0x80 == 0 {
		return false
	}
	switch binary.BigEndian.Uint16(reply[4:]) {
	case 0:
		rcode := reply[3] & 0xF
		return rcode != dns.RcodeSuccess && rcode != dns.RcodeNameError
	case 1:
		return len(reply) >= h+qlen && dnswire.EqualFold(reply[h:h+qlen], wire[h:h+qlen])
	}
	return false
}

// parseReply checks that buf answers the query (see matchesQuery),
// unpacks it and checks its records; anything else is errBadResponse.
func parseReply(buf, wire []byte, id uint16, qlen int) (*dns.Msg, error) {
	if !matchesQuery(buf, wire, id, qlen) {
		return nil, fmt.Errorf("%w: not a reply to this query (ID, QR bit or question differ)", errBadResponse)
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadResponse, err)
	}
	if err := CheckRecordData(r); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadResponse, err)
	}
	return r, nil
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
