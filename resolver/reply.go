package resolver

import (
	"encoding/binary"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnswire"
)

// Every reply dnsward sends is finished here, in wire form: the header
// that answers the query, our own OPT record (with EDE when there is
// one), and the fit to the client's buffer. No path builds a reply of its
// own.

// replyLimit is the largest reply the client can take: over UDP its EDNS
// buffer size, at least 512 and never above what we advertise; over a
// stream, a whole DNS message.
func replyLimit(q *wireQuery, t Transport) int {
	if t != TransportUDP {
		return dnswire.MaxMessageSize
	}
	if !q.edns {
		return dnswire.MinUDPSize
	}
	return min(max(int(q.udpSize), dnswire.MinUDPSize), dnswire.UDPSize)
}

// putHeader makes out's header answer q: the query's ID, opcode, RD and
// CD bits; QR and RA set; keep (some of AA, TC, AD) and the low four bits
// of rcode as given. Section counts are left alone.
func putHeader(out []byte, q *wireQuery, keep uint16, rcode int) {
	binary.BigEndian.PutUint16(out, q.id)
	flags := dnswire.FlagQR | dnswire.FlagRA | q.flags&(0x7800|dnswire.FlagRD|dnswire.FlagCD) |
		keep&(dnswire.FlagAA|dnswire.FlagTC|dnswire.FlagAD) | uint16(rcode&0xF)
	binary.BigEndian.PutUint16(out[2:], flags)
}

// appendQuestion starts a reply in dst: a header for q with no records,
// and the question exactly as asked (case included) when there is one.
func appendQuestion(dst []byte, pkt []byte, q *wireQuery, rcode int) []byte {
	dst = append(dst, pkt[:headerLen]...)
	if q.qEnd > 0 {
		dst = append(dst, pkt[headerLen:q.qEnd]...)
		binary.BigEndian.PutUint16(dst[4:], 1)
	} else {
		binary.BigEndian.PutUint16(dst[4:], 0)
	}
	clear(dst[6:headerLen]) // AN, NS, AR
	putHeader(dst, q, 0, rcode)
	return dst
}

// errorReply is the answer for a query that gets only an rcode: REFUSED,
// SERVFAIL, NOTIMP, FORMERR, BADVERS. It is never larger than the query
// (the question at most, and an OPT record only if the query had one),
// so it amplifies nothing.
func errorReply(dst []byte, pkt []byte, q *wireQuery, rcode int) []byte {
	dst = appendQuestion(dst, pkt, q, rcode)
	if q.edns {
		dst, _ = dnswire.AppendOPT(dst, q.do, rcode)
	}
	return dst
}

// headerOnlyError answers a message whose header the pipeline refuses
// (more than one question, an unknown opcode): ID, opcode and RD echoed,
// nothing else, so even a message with hundreds of questions gets a
// 12-byte reply.
func headerOnlyError(dst []byte, pkt []byte, rcode int) []byte {
	dst = append(dst, pkt[:headerLen]...)
	dst[2] = 0x80 | pkt[2]&0x78 | pkt[2]&0x01 // QR, opcode, RD
	dst[3] = byte(rcode)
	clear(dst[4:headerLen])
	return dst
}

// ede is an Extended DNS Error (RFC 8914) to attach to a reply.
type ede struct {
	code string    // the INFO-CODE's two bytes, e.g. edeBlocked
	text [6]string // concatenated; fixed so that building one never allocates
}

// edeBlocked is INFO-CODE 15, "Blocked" (RFC 8914 §4.16).
const edeBlocked = "\x00\x0f"

// finishReply completes a reply built in out (header patched by
// putHeader, records in place, described by sec): it fits the records to
// limit and appends our OPT record when the query had one. Fitting drops
// the additional section first and, for a positive answer without DNSSEC,
// the authority section; neither sets TC (RFC 2181 §9). Only when the
// answer itself does not fit is TC set, with the question alone, so the
// client asks again over TCP.
func finishReply(out []byte, q *wireQuery, limit int, sec sections, e *ede) []byte {
	optLen := 0
	if q.edns {
		optLen = 11
		if e != nil {
			optLen += 4 + len(e.code)
			for _, t := range e.text {
				optLen += len(t)
			}
		}
	}
	if len(out)+optLen > limit {
		out = fitRecords(out, limit-optLen, sec, q.do)
	}
	if !q.edns {
		return out
	}
	rcode := int(out[3] & 0xF)
	out, rdlenAt := dnswire.AppendOPT(out, q.do, rcode)
	if e != nil {
		out = dnswire.AppendOption(out, rdlenAt, dns.EDNS0EDE, e.code, e.text[0], e.text[1], e.text[2], e.text[3], e.text[4], e.text[5])
	}
	return out
}

// fitRecords cuts whole sections off out until it is at most limit bytes.
func fitRecords(out []byte, limit int, sec sections, do bool) []byte {
	if sec.arAt > 0 && sec.arAt <= limit {
		binary.BigEndian.PutUint16(out[10:], 0)
		return out[:sec.arAt]
	}
	positive := out[3]&0xF == dns.RcodeSuccess && binary.BigEndian.Uint16(out[6:]) > 0
	if positive && !do && sec.nsAt > 0 && sec.nsAt <= limit {
		clear(out[8:12]) // NS and AR counts
		return out[:sec.nsAt]
	}
	qEnd := headerLen
	if binary.BigEndian.Uint16(out[4:]) == 1 {
		qEnd, _ = skipName(out, headerLen)
		qEnd += 4
	}
	clear(out[6:12])
	out[2] |= dnswire.FlagTC >> 8
	return out[:qEnd]
}
