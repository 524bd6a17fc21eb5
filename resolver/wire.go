package resolver

import (
	"encoding/binary"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnswire"
)

// Every query, whatever its transport, is read by parseQuery straight
// from its wire bytes: no dns.Msg is built for a query, which is what lets
// cached and blocked answers go out without an allocation.

const headerLen = dnswire.HeaderLen

// maxNameText bounds a query name in text form: 255 wire bytes, every
// byte escaped as \DDD in the worst case, plus dots.
const maxNameText = 4*255 + 128

// wireQuery is what the pipeline needs from a query packet. Its slices
// borrow the packet and the caller's name buffer.
type wireQuery struct {
	id       uint16
	flags    uint16 // as sent; opcode in bits 11-14
	qname    []byte // text, lower-cased, fully qualified ("www.example.com."), escaped as miekg/dns does
	rawQName []byte // the question name as sent (wire labels), for echoing
	qtype    uint16
	qclass   uint16
	qEnd     int  // offset after the question; 0 when there is none
	edns     bool // the query carried an OPT record
	version  uint8
	do       bool
	udpSize  uint16
}

func (q *wireQuery) opcode() int { return int(q.flags>>11) & 0xF }

// parseVerdict is what parsing decided about a packet.
type parseVerdict uint8

const (
	parsedQuery  parseVerdict = iota // a well-formed message for the pipeline
	parseDrop                        // too short to answer, or a response: never reply to those
	parseFormErr                     // FORMERR (RFC 1035 §4.1.1)
	parseNotImpl                     // an opcode other than QUERY or NOTIFY: NOTIMP
)

// parseQuery reads the header, the question and the records after it,
// applying miekg/dns's accept rules (dns.DefaultMsgAcceptFunc) so that
// every transport admits the same messages: QUERY or NOTIFY, exactly one
// question, at most one answer record (NOTIFY's SOA), one authority
// record (IXFR's SOA) and two additional records; at most one OPT record
// (RFC 6891 §6.1.1). name is scratch space of maxNameText bytes.
func parseQuery(pkt, name []byte) (wireQuery, parseVerdict) {
	var q wireQuery
	if len(pkt) < headerLen || pkt[2]&0x80 != 0 {
		return q, parseDrop
	}
	q.id = binary.BigEndian.Uint16(pkt)
	q.flags = binary.BigEndian.Uint16(pkt[2:])
	if op := q.opcode(); op != dns.OpcodeQuery && op != dns.OpcodeNotify {
		return q, parseNotImpl
	}
	qd, an, ns, ar := binary.BigEndian.Uint16(pkt[4:]), binary.BigEndian.Uint16(pkt[6:]),
		binary.BigEndian.Uint16(pkt[8:]), binary.BigEndian.Uint16(pkt[10:])
	if qd != 1 || an > 1 || ns > 1 || ar > 2 {
		return q, parseFormErr
	}
	off, n, ok := readQName(pkt, name)
	if !ok || off+4 > len(pkt) {
		return q, parseFormErr // a cut or compressed question name, or no type and class
	}
	q.rawQName, q.qname = pkt[headerLen:off], name[:n]
	q.qtype = binary.BigEndian.Uint16(pkt[off:])
	q.qclass = binary.BigEndian.Uint16(pkt[off+2:])
	q.qEnd = off + 4
	off = q.qEnd
	for range int(an) + int(ns) {
		if off, _, ok = skipRecord(pkt, off); !ok {
			return q, parseFormErr
		}
	}
	for range ar {
		start := off
		var rrtype uint16
		if off, rrtype, ok = skipRecord(pkt, off); !ok {
			return q, parseFormErr
		}
		if rrtype != dnswire.TypeOPT {
			continue // a TSIG, for the NOTIFY handler to check
		}
		if q.edns || pkt[start] != 0 {
			return q, parseFormErr // a second OPT, or one not owned by the root
		}
		q.edns = true
		q.udpSize = binary.BigEndian.Uint16(pkt[start+3:])
		q.version = pkt[start+6]
		q.do = pkt[start+7]&0x80 != 0
	}
	return q, parsedQuery // trailing bytes are ignored, as miekg/dns does
}

// readQName reads the question name at the header's end into name as
// lower-case text and returns the offset after it and the text length.
// A question name may not be compressed: nothing precedes it to point at.
func readQName(pkt, name []byte) (off, n int, ok bool) {
	off = headerLen
	wire := 0
	for {
		if off >= len(pkt) {
			return 0, 0, false
		}
		l := int(pkt[off])
		off++
		if l == 0 {
			break
		}
		wire += l + 1
		if l > 63 || off+l > len(pkt) || wire > 254 {
			return 0, 0, false
		}
		n = appendLabelText(name, n, pkt[off:off+l])
		off += l
	}
	if n == 0 {
		name[0] = '.'
		n = 1
	}
	return off, n, true
}

// appendLabelText writes one label and its dot into name at n, lower-cased,
// escaping what miekg/dns escapes in presentation format, so that the text
// packs back into the same wire name.
func appendLabelText(name []byte, n int, label []byte) int {
	for _, c := range label {
		if t := labelText[c]; t != 0 {
			name[n] = t
			n++
			continue
		}
		if c < ' ' || c > '~' {
			name[n], name[n+1], name[n+2], name[n+3] = '\\', '0'+c/100, '0'+c/10%10, '0'+c%10
			n += 4
		} else {
			name[n], name[n+1] = '\\', c
			n += 2
		}
	}
	name[n] = '.'
	return n + 1
}

// labelText maps a label byte to its lower-case text byte, or to 0 when
// it must be escaped: the characters miekg/dns escapes with a backslash
// (. space ' @ ; ( ) " \) and, as \DDD, those outside printable ASCII.
var labelText = func() (t [256]byte) {
	for c := '!'; c <= '~'; c++ {
		t[c] = byte(c)
		if 'A' <= c && c <= 'Z' {
			t[c] += 'a' - 'A'
		}
	}
	for _, c := range ".'@;()\"\\" {
		t[c] = 0
	}
	return t
}()

// skipName returns the offset after the (possibly compressed) name at off.
func skipName(msg []byte, off int) (int, bool) {
	for {
		if off >= len(msg) {
			return 0, false
		}
		l := int(msg[off])
		switch {
		case l == 0:
			return off + 1, true
		case l&0xC0 == 0xC0:
			return off + 2, off+2 <= len(msg)
		case l > 63:
			return 0, false
		}
		off += 1 + l
	}
}

// skipRecord returns the offset after the resource record at off, and its type.
func skipRecord(msg []byte, off int) (int, uint16, bool) {
	off, ok := skipName(msg, off)
	if !ok || off+10 > len(msg) {
		return 0, 0, false
	}
	rrtype := binary.BigEndian.Uint16(msg[off:])
	end := off + 10 + int(binary.BigEndian.Uint16(msg[off+8:]))
	if end > len(msg) {
		return 0, 0, false
	}
	return end, rrtype, true
}

// sections describes a packed message: where each record's TTL sits and
// where the authority and additional sections begin.
type sections struct {
	ttls       []uint16
	nsAt, arAt int
}

// scanSections walks a packed message (OPT records excluded from ttls).
func scanSections(msg []byte) (sections, bool) {
	var s sections
	if len(msg) < headerLen {
		return s, false
	}
	qd := int(binary.BigEndian.Uint16(msg[4:]))
	counts := [3]int{int(binary.BigEndian.Uint16(msg[6:])), int(binary.BigEndian.Uint16(msg[8:])), int(binary.BigEndian.Uint16(msg[10:]))}
	off := headerLen
	var ok bool
	for range qd {
		if off, ok = skipName(msg, off); !ok {
			return s, false
		}
		off += 4
	}
	s.ttls = make([]uint16, 0, counts[0]+counts[1]+counts[2])
	for sec, n := range counts {
		switch sec {
		case 1:
			s.nsAt = off
		case 2:
			s.arAt = off
		}
		for range n {
			start := off
			var rrtype uint16
			if off, rrtype, ok = skipRecord(msg, off); !ok {
				return s, false
			}
			if rrtype != dnswire.TypeOPT {
				nameEnd, _ := skipName(msg, start)
				s.ttls = append(s.ttls, uint16(nameEnd+4))
			}
		}
	}
	return s, off == len(msg)
}

// Every reply dnsward sends is finished below, in wire form: the header
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
