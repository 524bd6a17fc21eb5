package resolver

import (
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnswire"
	"github.com/dnsward/dnsward/metrics"
)

// blockedAnswer answers with policy's answer for d and records why: the
// configured blocking answer, or what an RPZ rule asks for itself —
// NXDOMAIN, NODATA, no reply at all (rpz-drop), TC=1 over UDP
// (rpz-tcp-only), or the rule's own records (local data).
func (r *Resolver) blockedAnswer(req *request, d Decision, s *scratch) []byte {
	b := &req.live.blocking
	mode := b.mode
	if d.Answer != "" {
		mode = d.Answer
	}
	ev := &req.ev
	ev.Outcome, ev.Group, ev.List, ev.Rule, ev.Answer, ev.Monitored = metrics.OutcomeBlocked, d.Group, d.List, d.Rule, mode, false
	e := blockedEDE(d)
	switch mode {
	case AnswerDrop:
		return nil
	case AnswerTCPOnly:
		out := appendQuestion(s.out[:0], req.pkt, &req.q, dns.RcodeSuccess)
		out[2] |= dnswire.FlagTC >> 8
		return s.keep(finishReply(out, &req.q, req.limit, sections{}, &e))
	case AnswerLocal:
		out := appendQuestion(s.out[:0], req.pkt, &req.q, dns.RcodeSuccess)
		out = appendRRs(out, localRecords(d.Local, req.ev.QName, req.q.qtype), 6)
		sec := sections{nsAt: len(out), arAt: len(out)}
		return s.keep(finishReply(out, &req.q, req.limit, sec, &e))
	}
	out, sec := appendBlocked(s.out[:0], req.pkt, &req.q, mode, b)
	return s.keep(finishReply(out, &req.q, req.limit, sec, &e))
}

// blockedEDE is Extended DNS Error 15 naming the list, the rule (or the
// network, for response-IP policy) and the group.
func blockedEDE(d Decision) ede {
	return ede{code: edeBlocked, text: [6]string{"blocked by list ", d.List, " (rule ", d.Rule, ") for group ", d.Group}}
}

// localRecords are the rule's records that answer qtype, owned by qname
// (RPZ answers a wildcard trigger's data under the query name); none
// means NODATA. They are copies: the rule's records are shared.
func localRecords(local []dns.RR, qname string, qtype uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range local {
		if t := rr.Header().Rrtype; t == qtype || qtype == dns.TypeANY {
			c := dns.Copy(rr)
			c.Header().Name = qname
			out = append(out, c)
		}
	}
	return out
}

// localCNAME is the rule's CNAME (a walled garden), if it has one.
func localCNAME(local []dns.RR) *dns.CNAME {
	for _, rr := range local {
		if c, ok := rr.(*dns.CNAME); ok {
			return c
		}
	}
	return nil
}

// answerLocalCNAME answers a walled-garden rule ("name CNAME
// garden.example."): the CNAME, then the garden host's records for the
// qtype, from the cache or upstream, as a recursive resolver would, so
// that stubs which do not chase CNAMEs reach the garden too.
func (r *Resolver) answerLocalCNAME(req *request, d Decision, s *scratch) bool {
	cname := localCNAME(d.Local)
	via := dns.Copy(cname)
	via.Header().Name = strings.Clone(req.ev.QName) // a miss keeps it; the query's name is borrowed
	ev := &req.ev
	ev.Outcome, ev.Group, ev.List, ev.Rule, ev.Answer, ev.Monitored = metrics.OutcomeBlocked, d.Group, d.List, d.Rule, AnswerLocal, false
	k := keyOf(&req.q)
	k.name = strings.ToLower(dns.Fqdn(cname.Target))
	if e, fresh := r.cache.get(k, ev.Time); fresh {
		req.out = r.answerVia(req, via, d, e, ev.Time, s)
		return true
	}
	return r.forwardKey(req, k, &waiter{via: via, rule: d}, s)
}

// answerVia is via followed by the records of e (the garden host's
// answer); SERVFAIL when there is none.
func (r *Resolver) answerVia(req *request, via dns.RR, d Decision, e *cacheEntry, now time.Time, s *scratch) []byte {
	m := new(dns.Msg)
	if e == nil || m.Unpack(e.appendAged(nil, now, 0)) != nil {
		return errorReply(s.out[:0], req.pkt, &req.q, dns.RcodeServerFailure)
	}
	out := appendQuestion(s.out[:0], req.pkt, &req.q, m.Rcode)
	out = appendRRs(out, append([]dns.RR{via}, m.Answer...), 6)
	var sec sections
	sec.nsAt = len(out)
	out = appendRRs(out, m.Ns, 8)
	sec.arAt = len(out)
	out = appendRRs(out, m.Extra, 10)
	x := blockedEDE(d)
	return s.keep(finishReply(out, &req.q, req.limit, sec, &x))
}
