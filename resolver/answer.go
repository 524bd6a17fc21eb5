package resolver

import (
	"encoding/binary"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// staleTTL is the TTL of answers served past expiry (RFC 8767 suggests 30 s).
const staleTTL = 30

// answerEntry answers req from an entry — a cache hit, a fresh upstream
// answer, or a stale one — the same way every time: the entry's CNAME
// targets checked against this client's policy, TTLs counted down to now,
// the header and question made the client's, and the result fitted.
func (r *Resolver) answerEntry(req *request, e *cacheEntry, now time.Time, stale bool, s *scratch) []byte {
	if d, blocked := r.inspectChain(req, e); blocked {
		return r.blockedAnswer(req, d, s)
	}
	var ttl uint32
	if stale {
		ttl = staleTTL
	}
	out := e.appendAged(s.out[:0], now, ttl)
	putHeader(out, &req.q, binary.BigEndian.Uint16(out[2:]), int(out[3]&0xF))
	copy(out[headerLen:], req.q.rawQName) // the question exactly as asked, case included
	return s.keep(finishReply(out, &req.q, req.limit, e.sec, nil))
}

// inspectChain checks every CNAME target of an answer against this
// client's policy: a chain that passes through a blocked name is blocked
// too (CNAME cloaking). Monitor matches are noted on the event.
func (r *Resolver) inspectChain(req *request, e *cacheEntry) (Decision, bool) {
	if r.policy == nil {
		return Decision{}, false
	}
	c := Client{req.client, req.token}
	for _, target := range e.cnames {
		if d := r.policy.Decide(c, target); r.inspected(req, d) {
			return d, true
		}
	}
	// Response-IP policy: an answer pointing into a listed network is
	// blocked whatever its name, unless the name was an explicit exception.
	if len(e.addrs) > 0 && !req.excepted {
		if d := r.policy.DecideAddrs(c, e.addrs); r.inspected(req, d) {
			return d, true
		}
	}
	return Decision{}, false
}

// inspected notes a monitor match on the event and reports a block.
func (r *Resolver) inspected(req *request, d Decision) bool {
	switch d.Action {
	case ActionBlock:
		return true
	case ActionMonitor:
		if !req.ev.Monitored {
			req.ev.Monitored, req.ev.List, req.ev.Rule = true, d.List, d.Rule
		}
	}
	return false
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

// record hands the finished query to metrics, the audit log and dnstap.
// They observe; nothing they do changes the answer.
func (r *Resolver) record(req *request, out []byte) {
	if r.rec == nil || req.silent {
		return
	}
	ev := &req.ev
	if len(out) >= headerLen && ev.Rcode == 0 {
		ev.Rcode = int(out[3] & 0xF)
	}
	ev.Duration = r.now().Sub(ev.Time)
	if r.rec.RetainsQName(ev) { // the audit log keeps it; ours is borrowed
		ev.QName = strings.Clone(ev.QName)
	}
	if r.rec.WantsWire() { // dnstap copies the messages
		ev.QueryWire, ev.ResponseWire = req.pkt, out
		ev.ClientAddrPort, ev.ServerAddrPort = req.peer, req.local
	}
	r.rec.Query(ev)
}
