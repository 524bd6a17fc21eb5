package resolver

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"time"
	"unsafe"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnswire"
	"github.com/dnsward/dnsward/metrics"
	"github.com/dnsward/dnsward/resolver/upstream"
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

// checkAccess refuses clients outside access.allow, and the zero Addr (a
// transport that could not tell who asked).
func (r *Resolver) checkAccess(req *request, s *scratch) bool {
	for _, p := range req.live.access {
		if p.Contains(req.client) {
			return false
		}
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

// What a transport hands the pipeline: the request, with where its
// reply goes, and the goroutine's scratch space.

// Transport says how a query reached dnsward. Its name is the bounded
// value of the metrics' proto label.
type Transport uint8

const (
	TransportUDP Transport = iota
	TransportTCP
	TransportTLS
	TransportHTTPS
	TransportQUIC
)

var transportNames = [...]string{"udp", "tcp", "tls", "https", "quic"}

func (t Transport) String() string {
	if int(t) < len(transportNames) {
		return transportNames[t]
	}
	return "udp"
}

// origin is where a query came from: the pipeline hands it the reply of a
// query it could not answer at once. reply(nil) means "send nothing"; it
// is called exactly once per such query, from any goroutine, with that
// goroutine's scratch.
type origin interface {
	reply(out []byte, s *scratch)
}

// request is one query on its way through the pipeline. Its packet and
// the names in q borrow the listener's buffers until serve returns.
type request struct {
	pkt       []byte
	q         wireQuery
	client    netip.Addr
	token     string // the device token of an encrypted transport, if any
	transport Transport
	limit     int // the largest reply the client takes
	live      *settings
	ev        metrics.QueryEvent
	out       []byte // the reply a stage decided on; nil: send nothing
	silent    bool   // not a query at all (a response, a runt): nothing recorded
	pending   bool   // waiting on an upstream: the origin gets the reply later
	excepted  bool   // policy named an exception for the name: its answer's addresses are not judged

	// Where a reply that is not known at once goes: stream listeners
	// set from; UDP loops fill the fields below instead, and the
	// pipeline builds their origin only for a cache miss, so that
	// answering at once never allocates.
	from    origin
	udp     *udpSocket
	peer    netip.AddrPort // UDP: the client's address and port
	dst     netip.Addr     // UDP: the address the query was sent to, the reply's source
	ifindex int32          // UDP: the interface it arrived on (IPv6 link-local replies need it)
	local   netip.AddrPort // the listener's address, for dnstap
	lane    *upstream.Lane // UDP: the read loop's lane, where its misses go upstream
}

// scratch is one goroutine's reusable memory for building replies.
type scratch struct {
	name [maxNameText]byte
	out  []byte
	io   udpIO // for UDP replies written from this goroutine
}

func newScratch() *scratch { return &scratch{out: make([]byte, 0, 4096)} }

// keep returns out after making it the scratch's buffer, so capacity a
// large answer grew stays for the next one.
func (s *scratch) keep(out []byte) []byte {
	s.out = out[:0]
	return out
}
