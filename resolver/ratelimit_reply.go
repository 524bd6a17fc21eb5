package resolver

import "encoding/binary"

const (
	rcodeRefused = 5
	flagQR       = 0x80 // in header byte 2
	flagTC       = 0x02 // in header byte 2
	flagRD       = 0x01 // in header byte 2
	opcodeMask   = 0x78 // in header byte 2
	flagRA       = 0x80 // in header byte 3
	flagCD       = 0x10 // in header byte 3
)

// appendLimitedReply appends what a limited query gets for verdict v: the
// query's ID, opcode, RD and CD bits and its question (name bytes as sent,
// so 0x20 case survives), QR and RA set, no records, and either
// rcode REFUSED (RateRefuse) or TC=1 (RateSlip). Having no OPT record and
// nothing the query lacked, it is never longer than the query: a limited
// client cannot use dnsward to amplify. ok is false for any other verdict
// and for a packet that is not a query with one well-formed question;
// the caller then sends nothing.
func appendLimitedReply(dst, query []byte, v RateVerdict) (out []byte, ok bool) {
	if v != RateRefuse && v != RateSlip {
		return dst, false
	}
	end, ok := questionEnd(query)
	if !ok {
		return dst, false
	}
	start := len(dst)
	dst = append(dst, query[:end]...)
	h := dst[start:]
	h[2] = flagQR | query[2]&(opcodeMask|flagRD)
	h[3] = flagRA | query[3]&flagCD
	if v == RateSlip {
		h[2] |= flagTC
	} else {
		h[3] |= rcodeRefused
	}
	clear(h[6:12]) // ANCOUNT, NSCOUNT, ARCOUNT
	return dst, true
}

// questionEnd returns the offset after the only question of a query, or
// false when the packet is a response, has another question count, or its
// name is compressed, too long or cut off.
func questionEnd(pkt []byte) (int, bool) {
	if len(pkt) < headerLen || pkt[2]&flagQR != 0 || binary.BigEndian.Uint16(pkt[4:]) != 1 {
		return 0, false
	}
	off, nameLen := headerLen, 0
	for {
		if off >= len(pkt) {
			return 0, false
		}
		l := int(pkt[off])
		if l == 0 {
			break
		}
		nameLen += l + 1
		if l > 63 || nameLen > 254 {
			return 0, false // a pointer (0xC0) or a bad label length
		}
		off += l + 1
	}
	off += 1 + 4 // root label, type and class
	if off > len(pkt) {
		return 0, false
	}
	return off, true
}
