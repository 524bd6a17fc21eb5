package resolver

import (
	"encoding/binary"
	"net/netip"
	"unsafe"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/metrics"
)

// SOA rdata fields of blocked negative answers, in wire form; blockedSOA
// builds the same record for the full pipeline.
var (
	nullIPv4 [4]byte  // null_ip mode answers 0.0.0.0
	nullIPv6 [16]byte // and ::

	blockedMname = []byte("\x07blocked\x07dnsward\x00")
	blockedRname = []byte("\x0ahostmaster\x07blocked\x07dnsward\x00")
)

// appendBlocked writes the blocked answer for q into dst the way
// r.blocked does, without building a dns.Msg. It returns false when the
// answer would not fit the client's buffer.
func appendBlocked(dst []byte, pkt []byte, q *wireQuery, d Decision, b *blockedAnswers) ([]byte, string, bool) {
	mode := b.mode
	if d.Answer != "" {
		mode = d.Answer
	}
	rcode := uint16(dns.RcodeSuccess)
	switch mode {
	case AnswerRefused:
		rcode = dns.RcodeRefused
	case AnswerNXDomain:
		rcode = dns.RcodeNameError
	}
	dst = append(dst, pkt[:q.qEnd]...) // ID and the question as asked
	flags := 0x8080 | q.flags&0x0110 | rcode
	binary.BigEndian.PutUint16(dst[2:], flags)
	binary.BigEndian.PutUint32(dst[4:], 1<<16) // QD 1, AN 0
	binary.BigEndian.PutUint32(dst[8:], 0)     // NS 0, AR 0

	var addr []byte
	switch {
	case mode == AnswerNullIP && q.qtype == dns.TypeA:
		addr = nullIPv4[:]
	case mode == AnswerNullIP && q.qtype == dns.TypeAAAA:
		addr = nullIPv6[:]
	case mode == AnswerSinkhole && q.qtype == dns.TypeA:
		addr = b.ipv4
	case mode == AnswerSinkhole && q.qtype == dns.TypeAAAA:
		addr = b.ipv6
	}
	switch {
	case addr != nil:
		dst = appendRRHeader(dst, q.qtype, b.ttl, len(addr))
		dst = append(dst, addr...)
		dst[7] = 1 // ANCOUNT
	case mode != AnswerRefused:
		rdlen := len(blockedMname) + len(blockedRname) + 20
		dst = appendRRHeader(dst, dns.TypeSOA, b.ttl, rdlen)
		dst = append(dst, blockedMname...)
		dst = append(dst, blockedRname...)
		dst = binary.BigEndian.AppendUint32(dst, 1)     // serial
		dst = binary.BigEndian.AppendUint32(dst, 3600)  // refresh
		dst = binary.BigEndian.AppendUint32(dst, 600)   // retry
		dst = binary.BigEndian.AppendUint32(dst, 86400) // expire
		dst = binary.BigEndian.AppendUint32(dst, b.ttl) // minimum: negative caching TTL
		dst[9] = 1                                      // NSCOUNT
	}
	limit := dns.MinMsgSize
	if q.edns {
		dst = appendBlockedOPT(dst, q.do, d)
		limit = min(max(int(q.udpSize), dns.MinMsgSize), ourUDPSize)
	}
	return dst, mode, len(dst) <= limit
}

// appendRRHeader appends an owner pointing at the question name (offset
// 12), type, class IN, TTL and RDLENGTH.
func appendRRHeader(dst []byte, rrtype uint16, ttl uint32, rdlen int) []byte {
	dst = append(dst, 0xC0, headerLen)
	dst = binary.BigEndian.AppendUint16(dst, rrtype)
	dst = binary.BigEndian.AppendUint16(dst, dns.ClassINET)
	dst = binary.BigEndian.AppendUint32(dst, ttl)
	return binary.BigEndian.AppendUint16(dst, uint16(rdlen))
}

// appendBlockedOPT appends our OPT record carrying EDE 15 (RFC 8914) with
// the same text as the full pipeline.
func appendBlockedOPT(dst []byte, do bool, d Decision) []byte {
	dst = appendOPT(dst, do)
	rdlenAt := len(dst) - 2
	start := len(dst)
	dst = binary.BigEndian.AppendUint16(dst, dns.EDNS0EDE)
	lenAt := len(dst)
	dst = append(dst, 0, 0)
	dst = binary.BigEndian.AppendUint16(dst, dns.ExtendedErrorCodeBlocked)
	dst = append(dst, "blocked by list "...)
	dst = append(dst, d.List...)
	dst = append(dst, " (rule "...)
	dst = append(dst, d.Rule...)
	dst = append(dst, ") for group "...)
	dst = append(dst, d.Group...)
	binary.BigEndian.PutUint16(dst[lenAt:], uint16(len(dst)-lenAt-2))
	binary.BigEndian.PutUint16(dst[rdlenAt:], uint16(len(dst)-start))
	return dst
}

// fastBlocked answers a blocked name from the UDP loop.
func (r *Resolver) fastBlocked(pkt []byte, from netip.AddrPort, q *wireQuery, d Decision, live *settings, ev *metrics.QueryEvent, s *fastScratch) ([]byte, bool) {
	out, mode, ok := appendBlocked(s.out[:0], pkt, q, d, &live.blocking)
	if !ok {
		return nil, false
	}
	if r.rec != nil {
		ev.Outcome, ev.Group, ev.List, ev.Rule, ev.Answer = metrics.OutcomeBlocked, d.Group, d.List, d.Rule, mode
		ev.QName = unsafe.String(&q.qname[0], len(q.qname))
		if r.rec.RetainsQName(ev) { // the audit log keeps it
			ev.QName = string(q.qname)
		}
		r.recordFast(ev, pkt, out, from, s)
	}
	return out, true
}
