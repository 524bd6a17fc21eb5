package resolver

import (
	"encoding/binary"
	"net/netip"
	"time"
	"unsafe"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/metrics"
)

// fastScratch is one UDP loop's reusable memory.
type fastScratch struct {
	name  [256]byte
	out   [4096]byte
	local netip.AddrPort // the socket's address, for dnstap

	// Set when fastUDP returned false for a cache miss it could otherwise
	// have answered: the query, its client and group, for direct sending.
	miss   bool
	q      wireQuery
	client netip.Addr
	group  string
}

// recordFast hands a fast-path answer to the recorder, with the packets
// when dnstap wants them (the recorder copies them).
func (r *Resolver) recordFast(ev *metrics.QueryEvent, pkt, out []byte, from netip.AddrPort, s *fastScratch) {
	ev.Rcode = int(out[3] & 0xF)
	ev.Duration = r.now().Sub(ev.Time)
	if r.rec.WantsWire() {
		ev.QueryWire, ev.ResponseWire = pkt, out
		ev.ClientAddrPort, ev.ServerAddrPort = from, s.local
	}
	r.rec.Query(ev)
}

// fastUDP answers the common cases — a blocked name, or an allowed name
// with a fresh cache entry — straight from wire bytes when the answer fits
// the client's buffer, with no allocation for cache hits. Everything else returns false and takes the full pipeline,
// which gives the same answer more slowly.
func (r *Resolver) fastUDP(pkt []byte, from netip.AddrPort, s *fastScratch) ([]byte, bool) {
	s.miss = false
	q, err := parseQuery(pkt, s.name[:])
	if err != nil || q.qclass != dns.ClassINET || q.qtype == dns.TypeANY || q.qtype == dns.TypeAXFR || q.qtype == dns.TypeIXFR {
		return nil, false
	}
	client := from.Addr().Unmap()
	live := r.live.Load()
	if !allowed(live.access, client) {
		return nil, false
	}
	// The name is only borrowed from scratch space for lookups that do not
	// keep it (the cache key for Get, policy decisions).
	name := unsafe.String(&q.qname[0], len(q.qname))
	ev := metrics.QueryEvent{Time: r.now(), Client: client, Proto: "udp", QType: q.qtype, Outcome: metrics.OutcomeCached}
	if r.policy != nil {
		d := r.policy.Decide(client, name)
		switch d.Action {
		case ActionBlock:
			return r.fastBlocked(pkt, from, &q, d, live, &ev, s)
		case ActionMonitor:
			return nil, false
		}
		ev.Group = d.Group
	}
	if r.cache == nil {
		return nil, false
	}
	cd := q.flags&0x0010 != 0
	e, fresh := r.cache.get(cacheKey{name: name, qtype: q.qtype, qclass: q.qclass, do: q.do, cd: cd})
	if !fresh {
		s.miss, s.q, s.client, s.group = true, q, client, ev.Group
		return nil, false
	}
	out, ok := r.appendCached(s.out[:0], e, &q, client, ev.Time)
	if !ok {
		return nil, false
	}
	if r.rec != nil {
		r.rec.CacheHit()
		r.recordAnswer(&ev, &q, pkt, out, from, s)
	}
	return out, true
}

// appendCached writes e to dst as the answer to q, TTLs counted down to
// now. It returns false when the answer needs the full path: a CNAME in it
// leads to a name the client's policy does not allow (the full path
// blocks it), or it does not fit the client's buffer (truncation).
func (r *Resolver) appendCached(dst []byte, e *cacheEntry, q *wireQuery, client netip.Addr, now time.Time) ([]byte, bool) {
	if r.policy != nil {
		for _, target := range e.cnames {
			if r.policy.Decide(client, target).Action != ActionAllow {
				return nil, false
			}
		}
	}
	out := e.appendAged(dst, now, 0)
	binary.BigEndian.PutUint16(out, q.id)
	// QR and RA set; opcode QUERY; AA, AD and RCODE as stored; RD and CD as asked.
	flags := binary.BigEndian.Uint16(out[2:])&0x042F | 0x8080 | q.flags&0x0110
	binary.BigEndian.PutUint16(out[2:], flags)
	copy(out[headerLen:], q.rawQName) // the question exactly as asked, case included
	limit := dns.MinMsgSize
	if q.edns {
		out = appendOPT(out, q.do)
		limit = min(max(int(q.udpSize), dns.MinMsgSize), ourUDPSize)
	}
	return out, len(out) <= limit
}

// recordAnswer completes ev for an answer from the loop and records it.
// The name is copied only when the recorder keeps it (audit log).
func (r *Resolver) recordAnswer(ev *metrics.QueryEvent, q *wireQuery, pkt, out []byte, from netip.AddrPort, s *fastScratch) {
	ev.QName = unsafe.String(&q.qname[0], len(q.qname))
	if r.rec.RetainsQName(ev) {
		ev.QName = string(q.qname)
	}
	r.recordFast(ev, pkt, out, from, s)
}
