package resolver

import (
	"encoding/binary"

	"github.com/miekg/dns"
)

// appendLocal builds an authoritative NOERROR answer of dnsward's own
// records (answer and additional sections), fitted like any reply.
func appendLocal(dst []byte, req *request, answer, extra []dns.RR) []byte {
	dst = appendQuestion(dst, req.pkt, &req.q, dns.RcodeSuccess)
	putHeader(dst, &req.q, 0x0400, dns.RcodeSuccess) // AA: these names are dnsward's
	var sec sections
	dst = appendRRs(dst, answer, 6)
	sec.nsAt, sec.arAt = len(dst), len(dst)
	dst = appendRRs(dst, extra, 10)
	return finishReply(dst, &req.q, req.limit, sec, nil)
}

// appendRRs packs records after dst and adds them to the count at countAt.
func appendRRs(dst []byte, rrs []dns.RR, countAt int) []byte {
	for _, rr := range rrs {
		start := len(dst)
		dst = append(dst, make([]byte, dns.Len(rr))...)
		n, err := dns.PackRR(rr, dst, start, nil, false)
		if err != nil {
			dst = dst[:start]
			continue
		}
		dst = dst[:n]
		binary.BigEndian.PutUint16(dst[countAt:], binary.BigEndian.Uint16(dst[countAt:])+1)
	}
	return dst
}

// minimalANY answers ANY per RFC 8482 with one synthesized HINFO record,
// which ends the amplification value of ANY queries.
func minimalANY(dst []byte, req *request) []byte {
	dst = appendQuestion(dst, req.pkt, &req.q, dns.RcodeSuccess)
	const cpu = "RFC8482"
	dst = appendRRHeader(dst, dns.TypeHINFO, 3600, 1+len(cpu)+1)
	dst = append(dst, byte(len(cpu)))
	dst = append(dst, cpu...)
	dst = append(dst, 0) // empty OS string
	binary.BigEndian.PutUint16(dst[6:], 1)
	return finishReply(dst, &req.q, req.limit, sections{}, nil)
}
