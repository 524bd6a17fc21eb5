package resolver

import (
	"encoding/binary"
	"strings"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/metrics"
)

// answerDDR answers the names of Discovery of Designated Resolvers
// (RFC 9462): _dns.resolver.arpa SVCB with the encrypted endpoints, every
// other name under resolver.arpa with NODATA, and _dns.{server_name}.
func (r *Resolver) answerDDR(req *request, s *scratch) bool {
	name := req.ev.QName
	if !strings.HasSuffix(name, "resolver.arpa.") && !strings.HasPrefix(name, "_dns.") {
		return false // the one comparison every other query pays
	}
	answer, extra, ok := r.ddr.DDRAnswer(name, req.q.qtype)
	if !ok {
		return false
	}
	req.ev.Outcome = metrics.OutcomeForwarded
	req.out = s.keep(appendLocal(s.out[:0], req, answer, extra))
	return true
}

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
