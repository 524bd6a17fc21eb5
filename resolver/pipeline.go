package resolver

import (
	"context"
	"strconv"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/metrics"
)

// answer runs the pipeline for one query and returns the response before
// it is fitted to the client, plus EDNS options to send (EDE).
// The order is the product's contract: access → policy → cache → upstream
// → response inspection. Policy sits before the cache so a list change
// applies at once to names already cached.
func (r *Resolver) answer(req *dns.Msg, ev *metrics.QueryEvent) (*dns.Msg, []dns.EDNS0) {
	if req.Opcode != dns.OpcodeQuery {
		ev.Outcome = metrics.OutcomeError
		return new(dns.Msg).SetRcode(req, dns.RcodeNotImplemented), nil
	}
	if len(req.Question) != 1 {
		ev.Outcome = metrics.OutcomeError
		return new(dns.Msg).SetRcode(req, dns.RcodeFormatError), nil
	}
	q := req.Question[0]
	ev.QName, ev.QType = q.Name, q.Qtype
	live := r.live.Load()

	if !allowed(live.access, ev.Client) {
		ev.Outcome = metrics.OutcomeRefused
		return new(dns.Msg).SetRcode(req, dns.RcodeRefused), nil
	}
	switch {
	case q.Qclass != dns.ClassINET:
		ev.Outcome = metrics.OutcomeRefused
		return new(dns.Msg).SetRcode(req, dns.RcodeRefused), nil
	case q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR:
		ev.Outcome = metrics.OutcomeRefused
		return new(dns.Msg).SetRcode(req, dns.RcodeRefused), nil
	case q.Qtype == dns.TypeANY:
		ev.Outcome = metrics.OutcomeForwarded
		return minimalANY(req), nil
	}

	if r.policy != nil {
		d := r.policy.Decide(ev.Client, q.Name)
		ev.Group = d.Group
		switch d.Action {
		case ActionBlock:
			return r.blocked(req, d, live, ev)
		case ActionMonitor:
			ev.Monitored, ev.List, ev.Rule = true, d.List, d.Rule
		}
	}

	resp := r.resolve(req, ev)
	if r.policy != nil && resp.Rcode == dns.RcodeSuccess {
		if d, ok := r.inspectChain(ev, resp); ok {
			return r.blocked(req, d, live, ev)
		}
	}
	return resp, nil
}

// resolve answers from the cache, else from upstream, else from a stale
// cache entry, else with SERVFAIL.
func (r *Resolver) resolve(req *dns.Msg, ev *metrics.QueryEvent) *dns.Msg {
	opt := req.IsEdns0()
	do := opt != nil && opt.Do()
	k := keyFor(req.Question[0], do, req.CheckingDisabled)

	var stale *cacheEntry
	if r.cache != nil {
		e, fresh := r.cache.get(k)
		if fresh {
			if m, err := e.aged(r.now(), 0); err == nil {
				r.countCache(true)
				ev.Outcome = metrics.OutcomeCached
				return m
			}
		}
		r.countCache(false)
		if e != nil && r.now().Sub(e.expires) < r.stale {
			stale = e
		}
	}

	resp, err := r.forward(k, req.Question[0], do, req.CheckingDisabled)
	if err == nil {
		ev.Outcome = metrics.OutcomeForwarded
		return resp.Copy() // the shared answer belongs to the cache
	}
	if stale != nil {
		if m, err := stale.aged(r.now(), staleTTL); err == nil {
			ev.Outcome = metrics.OutcomeStale
			return m
		}
	}
	r.log.Debug("upstream failed", "qname", ev.QName, "err", err)
	ev.Outcome = metrics.OutcomeError
	return new(dns.Msg).SetRcode(req, dns.RcodeServerFailure)
}

// staleTTL is the TTL of answers served past expiry (RFC 8767 suggests 30 s).
const staleTTL = 30

// forward asks upstream once per key however many clients wait for it, and
// stores the answer in the cache.
func (r *Resolver) forward(k cacheKey, q dns.Question, do, cd bool) (*dns.Msg, error) {
	flight := k.name + "/" + strconv.Itoa(int(k.qtype)) + "/" + strconv.Itoa(int(k.qclass)) +
		"/" + strconv.FormatBool(do) + strconv.FormatBool(cd)
	v, err, _ := r.flights.Do(flight, func() (any, error) {
		// Not SetQuestion: it draws an ID from crypto/rand, a system call
		// per miss, and the forwarder sets its own random ID anyway.
		up := &dns.Msg{Question: []dns.Question{{Name: k.name, Qtype: q.Qtype, Qclass: q.Qclass}}}
		up.RecursionDesired = true
		up.CheckingDisabled = cd
		up.SetEdns0(ourUDPSize, do)
		ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
		defer cancel()
		resp, err := r.upstream.Exchange(ctx, up)
		if err != nil {
			return nil, err
		}
		if resp.Rcode == dns.RcodeServerFailure {
			return nil, errServFail
		}
		if r.cache != nil {
			r.cache.put(k, resp)
		}
		return resp, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*dns.Msg), nil
}

func (r *Resolver) countCache(hit bool) {
	if r.rec == nil {
		return
	}
	if hit {
		r.rec.CacheHit()
	} else {
		r.rec.CacheMiss()
	}
}

// minimalANY answers ANY per RFC 8482 with one synthesized HINFO record,
// which ends the amplification value of ANY queries.
func minimalANY(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg).SetReply(req)
	m.Answer = []dns.RR{&dns.HINFO{
		Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeHINFO, Class: dns.ClassINET, Ttl: 3600},
		Cpu: "RFC8482",
	}}
	return m
}
