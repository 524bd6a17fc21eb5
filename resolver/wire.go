package resolver

import (
	"encoding/binary"
	"errors"
)

// Wire-format helpers for the UDP fast path: reading a query's question
// and EDNS fields, and finding the TTLs of a packed answer, without
// unpacking into dns.Msg (which allocates per record).

const headerLen = 12

// wireQuery is what the fast path needs from a query packet.
type wireQuery struct {
	id       uint16
	flags    uint16
	qname    []byte // lower-cased, dotted, fully qualified ("www.example.com.")
	rawQName []byte // the question name as sent (wire labels), for echoing
	qtype    uint16
	qclass   uint16
	qEnd     int  // offset after the question
	edns     bool // the query carried an OPT record
	do       bool
	udpSize  uint16
}

var errSlowPath = errors.New("not for the fast path")

// parseQuery reads a plain query: QR=0, opcode QUERY, one question, no
// answer or authority records, at most one additional record (an OPT
// with EDNS version 0). Anything else returns errSlowPath, and the full
// parser decides. name is scratch space of at least 256 bytes.
func parseQuery(pkt []byte, name []byte) (wireQuery, error) {
	var q wireQuery
	if len(pkt) < headerLen {
		return q, errSlowPath
	}
	q.id = binary.BigEndian.Uint16(pkt)
	q.flags = binary.BigEndian.Uint16(pkt[2:])
	qd, an, ns, ar := binary.BigEndian.Uint16(pkt[4:]), binary.BigEndian.Uint16(pkt[6:]),
		binary.BigEndian.Uint16(pkt[8:]), binary.BigEndian.Uint16(pkt[10:])
	if q.flags&0x8000 != 0 || (q.flags>>11)&0xF != 0 || qd != 1 || an != 0 || ns != 0 || ar > 1 {
		return q, errSlowPath
	}
	off := headerLen
	n := 0
	for {
		if off >= len(pkt) {
			return q, errSlowPath
		}
		l := int(pkt[off])
		off++
		if l == 0 {
			break
		}
		if l > 63 || off+l > len(pkt) || n+l+1 > 254 {
			return q, errSlowPath // compression in a question, or oversized
		}
		for _, c := range pkt[off : off+l] {
			if c == '.' || c == '\\' || c < 0x21 || c > 0x7e {
				return q, errSlowPath // needs escaping in text form
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			name[n] = c
			n++
		}
		name[n] = '.'
		n++
		off += l
	}
	if n == 0 {
		name[0] = '.'
		n = 1
	}
	q.rawQName = pkt[headerLen:off]
	q.qname = name[:n]
	if off+4 > len(pkt) {
		return q, errSlowPath
	}
	q.qtype = binary.BigEndian.Uint16(pkt[off:])
	q.qclass = binary.BigEndian.Uint16(pkt[off+2:])
	off += 4
	q.qEnd = off
	if ar == 1 {
		// OPT: root name, type 41, class = UDP size, TTL = ext-rcode|version|DO, rdlen, rdata.
		if off+11 > len(pkt) || pkt[off] != 0 || binary.BigEndian.Uint16(pkt[off+1:]) != 41 {
			return q, errSlowPath
		}
		if pkt[off+6] != 0 { // EDNS version other than 0: BADVERS from the full path
			return q, errSlowPath
		}
		rdlen := int(binary.BigEndian.Uint16(pkt[off+9:]))
		if off+11+rdlen != len(pkt) {
			return q, errSlowPath
		}
		q.edns = true
		q.udpSize = binary.BigEndian.Uint16(pkt[off+3:])
		q.do = pkt[off+7]&0x80 != 0
		off += 11 + rdlen
	}
	if off != len(pkt) {
		return q, errSlowPath // trailing bytes
	}
	return q, nil
}

// skipName returns the offset after the (possibly compressed) name at off.
func skipName(msg []byte, off int) (int, error) {
	for {
		if off >= len(msg) {
			return 0, errSlowPath
		}
		l := int(msg[off])
		switch {
		case l == 0:
			return off + 1, nil
		case l&0xC0 == 0xC0:
			return off + 2, nil
		case l > 63:
			return 0, errSlowPath
		}
		off += 1 + l
	}
}

// ttlOffsets returns the offset of every record's TTL in a packed message
// (OPT records excluded), so cached answers can be aged in place.
func ttlOffsets(msg []byte) ([]uint16, error) {
	if len(msg) < headerLen {
		return nil, errSlowPath
	}
	qd := int(binary.BigEndian.Uint16(msg[4:]))
	rrs := int(binary.BigEndian.Uint16(msg[6:])) + int(binary.BigEndian.Uint16(msg[8:])) + int(binary.BigEndian.Uint16(msg[10:]))
	off := headerLen
	var err error
	for range qd {
		if off, err = skipName(msg, off); err != nil {
			return nil, err
		}
		off += 4
	}
	offs := make([]uint16, 0, rrs)
	for range rrs {
		if off, err = skipName(msg, off); err != nil {
			return nil, err
		}
		if off+10 > len(msg) {
			return nil, errSlowPath
		}
		if binary.BigEndian.Uint16(msg[off:]) != 41 {
			offs = append(offs, uint16(off+4))
		}
		off += 10 + int(binary.BigEndian.Uint16(msg[off+8:]))
	}
	if off != len(msg) {
		return nil, errSlowPath
	}
	return offs, nil
}

// appendOPT adds our OPT record (UDP size, DO bit, no options) and counts
// it in ARCOUNT.
func appendOPT(msg []byte, do bool) []byte {
	var flags byte
	if do {
		flags = 0x80
	}
	msg = append(msg, 0, 0, 41, byte(ourUDPSize>>8), byte(ourUDPSize&0xff), 0, 0, flags, 0, 0, 0)
	binary.BigEndian.PutUint16(msg[10:], binary.BigEndian.Uint16(msg[10:])+1)
	return msg
}
