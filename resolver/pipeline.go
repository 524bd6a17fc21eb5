package resolver

import (
	"unsafe"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnswire"
	"github.com/dnsward/dnsward/metrics"
)

// serve runs one query through the pipeline. Every transport — the UDP
// read loops, TCP and TLS connections, DoH and DoQ requests — hands its
// queries here, and the stages below, in this order, are the product's
// contract. Each stage either answers (leaving the reply in req.out, nil
// for "send nothing") or passes the query on.
//
// serve returns the reply when it is known at once, which is the case
// for everything but a cache miss; then it returns pending, and req's
// origin gets the reply later from the upstream's goroutine.
func (r *Resolver) serve(req *request, s *scratch) (out []byte, pending bool) {
	req.ev = metrics.QueryEvent{Time: r.now(), Client: req.client, Proto: req.transport.String()}
	req.live = r.live.Load()
	switch {
	// The message itself first: what is not a well-formed query gets
	// FORMERR or NOTIMP (or nothing, for responses), before any lookup.
	case r.readQuery(req, s):
	// NOTIFY comes from a zone's primary, which need not be a client:
	// the zone's own allow list decides, not access control.
	case r.notify(req, s):
	// Access control before anything that costs work or says anything.
	case r.checkAccess(req, s):
	// Rate limits next: a flooding client costs a lookup and no more.
	case r.rateLimit(req, s):
	// EDNS versions we do not speak get BADVERS (RFC 6891 §6.1.3).
	case r.checkEDNS(req, s):
	// What a forwarder does not serve: other classes, zone transfers,
	// and ANY, answered minimally (RFC 8482).
	case r.special(req, s):
	// Names that describe dnsward itself (DDR, RFC 9462): never
	// forwarded, never blocked.
	case r.answerDDR(req, s):
	// Policy before the cache, so a list change applies at once to
	// names already cached.
	case r.applyPolicy(req, s):
	// The cache is shared by every group; its answers are checked
	// against this client's policy again (CNAME targets).
	case r.answerFromCache(req, s):
	// Upstream: one query however many clients ask; the reply is
	// inspected, cached and fitted when it comes (see completed).
	case r.forward(req, s):
	}
	if req.pending {
		return nil, true
	}
	r.record(req, req.out)
	return req.out, false
}

// readQuery parses the packet and refuses what the header rules refuse.
func (r *Resolver) readQuery(req *request, s *scratch) bool {
	q, verdict := parseQuery(req.pkt, s.name[:])
	req.q = q
	req.limit = replyLimit(&req.q, req.transport)
	switch verdict {
	case parseDrop:
		req.out, req.silent = nil, true
	case parseNotImpl:
		req.out = headerOnlyError(s.out[:0], req.pkt, dns.RcodeNotImplemented)
	case parseFormErr:
		req.out = headerOnlyError(s.out[:0], req.pkt, dns.RcodeFormatError)
		if q.qEnd > 0 { // the question was readable: echo it, as Unbound does
			req.out = errorReply(s.out[:0], req.pkt, &req.q, dns.RcodeFormatError)
		}
	default:
		req.ev.QName = unsafe.String(&q.qname[0], len(q.qname)) // borrowed; record copies it if kept
		req.ev.QType = q.qtype
		return false
	}
	req.ev.Outcome = metrics.OutcomeError
	return true
}

// notify hands NOTIFY messages (a zone's primary saying it changed) to
// the policy's zone transfers, which check the sender and any TSIG and
// answer; without them NOTIFY is not implemented. NOTIFY is not a
// client query, so it is not counted as one.
func (r *Resolver) notify(req *request, s *scratch) bool {
	if req.q.opcode() != dns.OpcodeNotify {
		return false
	}
	if r.onNotify == nil {
		req.ev.Outcome = metrics.OutcomeError
		req.out = errorReply(s.out[:0], req.pkt, &req.q, dns.RcodeNotImplemented)
		return true
	}
	req.out, req.silent = r.onNotify(req.pkt, req.client), true
	return true
}

// checkAccess refuses clients outside access.allow.
func (r *Resolver) checkAccess(req *request, s *scratch) bool {
	if allowed(req.live.access, req.client) {
		return false
	}
	req.ev.Outcome = metrics.OutcomeRefused
	req.out = errorReply(s.out[:0], req.pkt, &req.q, dns.RcodeRefused)
	return true
}

// rateLimit answers a client over its rate with REFUSED, TC (every
// rate_limit.slip-th limited UDP answer, so a real client behind a
// spoofed source can retry over TCP) or nothing (action: drop). The
// answer has the question and no records: never larger than the query.
func (r *Resolver) rateLimit(req *request, s *scratch) bool {
	l := req.live.limiter
	if l == nil {
		return false
	}
	group := ""
	if r.policy != nil && len(req.live.limits.Groups) > 0 {
		group = r.policy.GroupOf(Client{req.client, req.token})
	}
	v := l.Check(req.client, group, req.transport == TransportUDP, req.ev.Time)
	if v == RateAllow {
		return false
	}
	req.ev.Outcome, req.ev.Group = metrics.OutcomeRateLimited, group
	switch v {
	case RateRefuse:
		req.out = appendQuestion(s.out[:0], req.pkt, &req.q, dns.RcodeRefused)
	case RateSlip:
		req.out = appendQuestion(s.out[:0], req.pkt, &req.q, dns.RcodeSuccess)
		req.out[2] |= dnswire.FlagTC >> 8
	default:
		req.out = nil
	}
	return true
}

// checkEDNS answers BADVERS to EDNS versions above 0.
func (r *Resolver) checkEDNS(req *request, s *scratch) bool {
	if !req.q.edns || req.q.version == 0 {
		return false
	}
	req.ev.Outcome = metrics.OutcomeError
	req.ev.Rcode = dns.RcodeBadVers
	req.out = errorReply(s.out[:0], req.pkt, &req.q, dns.RcodeBadVers)
	return true
}

// special refuses other classes and zone transfers, and answers ANY.
func (r *Resolver) special(req *request, s *scratch) bool {
	switch q := &req.q; {
	case q.qclass != dns.ClassINET, q.qtype == dns.TypeAXFR, q.qtype == dns.TypeIXFR:
		req.ev.Outcome = metrics.OutcomeRefused
		req.out = errorReply(s.out[:0], req.pkt, q, dns.RcodeRefused)
	case q.qtype == dns.TypeANY:
		req.ev.Outcome = metrics.OutcomeForwarded
		req.out = s.keep(minimalANY(s.out[:0], req))
	default:
		return false
	}
	return true
}

// applyPolicy asks policy about the name: blocked names are answered
// here; monitored ones go on and are reported as "would block".
func (r *Resolver) applyPolicy(req *request, s *scratch) bool {
	if r.policy == nil {
		return false
	}
	d := r.policy.Decide(Client{req.client, req.token}, req.ev.QName)
	req.ev.Group, req.ev.TokenID = d.Group, d.TokenID
	switch d.Action {
	case ActionBlock:
		if d.Answer == AnswerTCPOnly && req.transport != TransportUDP {
			return false // rpz-tcp-only: over a stream it resolves normally
		}
		if d.Answer == AnswerLocal && localCNAME(d.Local) != nil {
			return r.answerLocalCNAME(req, d, s)
		}
		req.out = r.blockedAnswer(req, d, s)
		return true
	case ActionRefuse:
		req.ev.Outcome = metrics.OutcomeRefused
		req.out = errorReply(s.out[:0], req.pkt, &req.q, dns.RcodeRefused)
		return true
	case ActionMonitor:
		req.ev.Monitored, req.ev.List, req.ev.Rule = true, d.List, d.Rule
	case ActionAllow:
		req.excepted = d.List != "" // an allow list or RPZ passthru named the name
	}
	return false
}

// answerFromCache answers from a fresh cache entry.
func (r *Resolver) answerFromCache(req *request, s *scratch) bool {
	if r.cache == nil {
		return false
	}
	e, fresh := r.cache.get(keyOf(&req.q), req.ev.Time)
	r.countCache(fresh)
	if !fresh {
		return false
	}
	req.ev.Outcome = metrics.OutcomeCached
	req.out = r.answerEntry(req, e, req.ev.Time, false, s)
	if r.cfg.Cache.Prefetch {
		r.prefetch(req, e)
	}
	return true
}

func (r *Resolver) countCache(hit bool) {
	switch {
	case r.rec == nil:
	case hit:
		r.rec.CacheHit()
	default:
		r.rec.CacheMiss()
	}
}
