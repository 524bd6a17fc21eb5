package resolver

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/miekg/dns"
)

var errServFail = errors.New("upstream answered SERVFAIL")

// blockedAnswers is the parsed blocking config, ready for the query path.
type blockedAnswers struct {
	mode       string
	ttl        uint32
	ipv4, ipv6 []byte
}

func newBlockedAnswers(c BlockingConfig) blockedAnswers {
	b := blockedAnswers{mode: c.Answer, ttl: uint32(c.TTL.Seconds())}
	if a, err := netip.ParseAddr(c.Sinkhole.IPv4); err == nil {
		b.ipv4 = a.AsSlice()
	}
	if a, err := netip.ParseAddr(c.Sinkhole.IPv6); err == nil {
		b.ipv6 = a.AsSlice()
	}
	return b
}

// The SOA of blocked negative answers, in wire form: clients cache the
// negative answer for the block TTL (RFC 2308), so a policy change
// reaches them within that time.
var (
	nullIPv4 [4]byte  // null_ip mode answers 0.0.0.0
	nullIPv6 [16]byte // and ::

	blockedMname = []byte("\x07blocked\x07dnsward\x00")
	blockedRname = []byte("\x0ahostmaster\x07blocked\x07dnsward\x00")
)

// appendBlocked writes the blocked answer for q in mode into dst: every
// qtype gets one — A and AAAA the sinkhole or null address where the mode
// has one, everything else NODATA with the SOA above (or NXDOMAIN or
// REFUSED, by mode). The OPT record and EDE come from finishReply.
func appendBlocked(dst, pkt []byte, q *wireQuery, mode string, b *blockedAnswers) ([]byte, sections) {
	rcode := dns.RcodeSuccess
	switch mode {
	case AnswerRefused:
		rcode = dns.RcodeRefused
	case AnswerNXDomain:
		rcode = dns.RcodeNameError
	}
	dst = appendQuestion(dst, pkt, q, rcode)
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
	var sec sections
	switch {
	case addr != nil:
		dst = appendRRHeader(dst, q.qtype, b.ttl, len(addr))
		dst = append(dst, addr...)
		binary.BigEndian.PutUint16(dst[6:], 1) // ANCOUNT
		sec.nsAt = len(dst)
	case mode != AnswerRefused:
		sec.nsAt = len(dst)
		rdlen := len(blockedMname) + len(blockedRname) + 20
		dst = appendRRHeader(dst, dns.TypeSOA, b.ttl, rdlen)
		dst = append(dst, blockedMname...)
		dst = append(dst, blockedRname...)
		dst = binary.BigEndian.AppendUint32(dst, 1)     // serial
		dst = binary.BigEndian.AppendUint32(dst, 3600)  // refresh
		dst = binary.BigEndian.AppendUint32(dst, 600)   // retry
		dst = binary.BigEndian.AppendUint32(dst, 86400) // expire
		dst = binary.BigEndian.AppendUint32(dst, b.ttl) // minimum: negative caching TTL
		binary.BigEndian.PutUint16(dst[8:], 1)          // NSCOUNT
	}
	sec.arAt = len(dst)
	return dst, sec
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
