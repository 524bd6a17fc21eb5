package resolver

import (
	"errors"
	"net/netip"
	"sync"
	"time"
	"unsafe"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/metrics"
	"github.com/dnsward/dnsward/resolver/upstream"
)

// A cache miss becomes a flight: one upstream query per cache key,
// however many clients ask for it meanwhile, and from whatever transport.
// Each waiting client keeps a copy of its packet; when the upstream
// answers, every one of them is answered from the same entry, through
// the same answerEntry a cache hit takes.

// errUnpackable is an upstream answer that does not pack again.
var errUnpackable = errors.New("upstream answer cannot be packed again")

// flights is the set of questions waiting on upstreams.
type flights struct {
	mu      sync.Mutex
	byKey   map[cacheKey]*flight
	waiting int // clients, over every flight
	max     int
}

type flight struct {
	key     cacheKey // owns its name
	waiters []*waiter
}

// waiter is one client waiting on a flight.
type waiter struct {
	pkt       []byte // a copy of the query, in small when it fits
	small     [512]byte
	client    netip.Addr
	token     string
	transport Transport
	limit     int
	ev        metrics.QueryEvent // as the pipeline filled it; QName is set again from pkt
	from      origin             // nil for UDP: udp is the origin
	udp       udpOrigin
	peer      netip.AddrPort
	local     netip.AddrPort
	excepted  bool
	// via is set when the flight asks for a walled garden's host on
	// behalf of a local-data rule: the answer is via (the rule's CNAME)
	// followed by the host's records; rule is that rule, for the EDE.
	via  dns.RR
	rule Decision
	req  request // rebuilt by request when the answer comes
}

func newFlights(max int) *flights {
	return &flights{byKey: make(map[cacheKey]*flight), max: max}
}

// join adds w to the flight for k, starting one if there is none (first
// is then true). It refuses (ok false) when max clients already wait.
func (f *flights) join(k cacheKey, w *waiter) (fl *flight, first, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.waiting >= f.max {
		return nil, false, false
	}
	f.waiting++
	if fl = f.byKey[k]; fl != nil {
		fl.waiters = append(fl.waiters, w)
		return fl, false, true
	}
	fl = &flight{key: k.owned(), waiters: []*waiter{w}}
	f.byKey[fl.key] = fl
	return fl, true, true
}

// lead starts a flight for k with no client waiting (a prefetch), unless
// one is already on its way.
func (f *flights) lead(k cacheKey) (*flight, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byKey[k] != nil {
		return nil, false
	}
	fl := &flight{key: k.owned()}
	f.byKey[fl.key] = fl
	return fl, true
}

// land removes a finished flight and returns its waiters.
func (f *flights) land(fl *flight) []*waiter {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.byKey, fl.key)
	f.waiting -= len(fl.waiters)
	return fl.waiters
}

// forward sends a miss upstream, or joins the flight already asking.
func (r *Resolver) forward(req *request, s *scratch) bool {
	return r.forwardKey(req, keyOf(&req.q), r.waiters.Get().(*waiter), s)
}

// release returns a waiter to the pool once its client is answered and
// recorded; zeroing drops what it pointed to.
func (r *Resolver) release(w *waiter) {
	*w = waiter{}
	r.waiters.Put(w)
}

// forwardKey puts req on the flight for k (req.pending: the answer
// comes later, to req's origin). Beyond MaxPending waiting
// clients it answers SERVFAIL at once: a flood of unique names, or
// upstreams down, must not pile up memory.
func (r *Resolver) forwardKey(req *request, k cacheKey, w *waiter, s *scratch) bool {
	w.pkt, w.client, w.token, w.transport = append(w.small[:0], req.pkt...), req.client, req.token, req.transport
	w.limit, w.ev, w.from, w.peer, w.local, w.excepted = req.limit, req.ev, req.from, req.peer, req.local, req.excepted
	if w.from == nil {
		w.udp = udpOrigin{sock: req.udp, to: req.peer, dst: req.dst, ifindex: req.ifindex}
	}
	fl, first, ok := r.flights.join(k, w)
	if !ok {
		r.release(w)
		r.rec.Overloaded()
		req.ev.Outcome = metrics.OutcomeError
		req.out = errorReply(s.out[:0], req.pkt, &req.q, dns.RcodeServerFailure)
		return true
	}
	r.inflight.Add(1) // before asking: the answer may come at once
	req.pending = true
	if first {
		r.ask(fl, req.lane)
	}
	return true
}

// ask sends a flight's question upstream, on the read loop's lane when
// the query came from one.
func (r *Resolver) ask(fl *flight, lane *upstream.Lane) {
	k := fl.key
	q := upstream.Query{Name: k.name, Type: k.qtype, Class: k.qclass, DO: k.do, CD: k.cd}
	// Upstream deadlines run on real time: r.now may be a test's frozen clock.
	r.upstream.StartOn(lane, q, time.Now().Add(r.timeout), func(m *dns.Msg, err error) { r.completed(fl, m, err) })
}

// prefetch refreshes an entry asked for in the last tenth of its TTL, in
// the background, so that popular names are never answered late: the
// client that asked got the cached answer already.
func (r *Resolver) prefetch(req *request, e *cacheEntry) {
	ttl := e.expires.Sub(e.stored)
	if ttl < 10*time.Second || req.ev.Time.Before(e.expires.Add(-ttl/10)) || e.prefetched.Swap(true) {
		return
	}
	if fl, first := r.flights.lead(keyOf(&req.q)); first {
		r.rec.Prefetched()
		r.ask(fl, req.lane)
	}
}

// completed answers a flight's clients once the upstream has replied:
// from the new entry (which the cache keeps when it may), else from a
// stale entry within cache.serve_stale, else with SERVFAIL.
func (r *Resolver) completed(fl *flight, m *dns.Msg, err error) {
	now := r.now()
	if err == nil && m.Rcode == dns.RcodeServerFailure {
		err = errServFail
	}
	var e *cacheEntry
	if err == nil {
		// Only records that belong to the question reach the cache and clients.
		k := fl.key
		cut := scrub(dns.Question{Name: k.name, Qtype: k.qtype, Qclass: k.qclass}, m)
		r.rec.Scrubbed(cut.Answer, cut.Ns, cut.Extra)
		if e = r.cache.put(fl.key, m, now); e == nil {
			err = errUnpackable
		}
	}
	if err != nil {
		r.log.Debug("upstream failed", "qname", fl.key.name, "err", err)
	}
	stale := r.staleEntry(fl.key, now, e)
	live := r.live.Load()
	s := r.scratches.Get().(*scratch)
	defer r.scratches.Put(s)
	for _, w := range r.flights.land(fl) {
		req := w.request(s)
		req.live = live
		switch {
		case w.via != nil:
			req.out = r.answerVia(req, w.via, w.rule, e, now, s)
		case e != nil:
			req.ev.Outcome = metrics.OutcomeForwarded
			req.out = r.answerEntry(req, e, now, false, s)
		case stale != nil:
			req.ev.Outcome = metrics.OutcomeStale
			req.out = r.answerEntry(req, stale, now, true, s)
		default:
			req.ev.Outcome = metrics.OutcomeError
			req.out = errorReply(s.out[:0], req.pkt, &req.q, dns.RcodeServerFailure)
		}
		if w.from != nil {
			w.from.reply(req.out, s)
		} else {
			w.udp.reply(req.out, s)
		}
		r.record(req, req.out)
		r.inflight.Done()
		r.release(w)
	}
}

// staleEntry returns an expired entry still within serve-stale, when
// the upstream gave nothing to answer with.
func (r *Resolver) staleEntry(k cacheKey, now time.Time, fresh *cacheEntry) *cacheEntry {
	if fresh != nil || r.cache == nil || r.stale <= 0 {
		return nil
	}
	if e, _ := r.cache.get(k, now); e != nil && now.Sub(e.expires) < r.stale {
		return e
	}
	return nil
}

// request rebuilds the waiter's request from its own packet copy.
func (w *waiter) request(s *scratch) *request {
	req := &w.req
	*req = request{pkt: w.pkt, client: w.client, token: w.token, transport: w.transport, limit: w.limit, ev: w.ev,
		peer: w.peer, local: w.local, excepted: w.excepted}
	req.q, _ = parseQuery(w.pkt, s.name[:])                         // parsed before: it parses again
	req.ev.QName = unsafe.String(&req.q.qname[0], len(req.q.qname)) // borrowed, as in serve
	return req
}
