package resolver

import (
	"encoding/binary"
	"errors"
	"hash/maphash"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"unsafe"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnswire"
)

// cacheKey is comparable, so the LRU compares whole keys: no hash collision
// can hand one name's answer to another.
type cacheKey struct {
	name   string // lower-cased, fully qualified
	qtype  uint16
	qclass uint16
	do, cd bool
}

// keyOf is the cache key of a query. The name is borrowed from the
// query's scratch space: a key that is stored must own its name
// (see ownedKey).
func keyOf(q *wireQuery) cacheKey {
	return cacheKey{name: unsafe.String(&q.qname[0], len(q.qname)), qtype: q.qtype, qclass: q.qclass,
		do: q.do, cd: q.flags&dnswire.FlagCD != 0}
}

// owned returns k with a name of its own, for keys that outlive the query.
func (k cacheKey) owned() cacheKey {
	k.name = strings.Clone(k.name)
	return k
}

// cacheEntry holds an upstream answer in wire format (ID 0, lower-case
// question, AA clear — a cache is not an authority — and no OPT record),
// so a hit is a copy plus a few patched bytes. Entries are never modified
// after store. Answers that may not be cached (REFUSED, YXDOMAIN, a
// negative answer without SOA) are answered from an entry too, one that
// is never stored.
type cacheEntry struct {
	wire    []byte
	sec     sections     // TTL offsets and section starts in wire
	cnames  []string     // CNAME targets in the answer, for per-client policy checks
	addrs   []netip.Addr // A and AAAA addresses in the answer, for response-IP policy
	stored  time.Time
	expires time.Time
	// prefetched is set once a refresh of this entry has been started
	// (cache.prefetch); the one field that changes after store.
	prefetched atomic.Bool
}

const cacheShards = 16

// answerCache is a sharded LRU so that concurrent hits on different names
// rarely wait on the same lock.
type answerCache struct {
	shards  [cacheShards]*lru.Cache[cacheKey, *cacheEntry]
	seed    maphash.Seed
	cfg     CacheConfig
	onEvict func(n int)
	admit   *admission // keeps once-asked names from evicting the working set
}

func newAnswerCache(cfg CacheConfig, onEvict func(int)) *answerCache {
	if cfg.MaxEntries <= 0 {
		return nil
	}
	c := &answerCache{seed: maphash.MakeSeed(), cfg: cfg, onEvict: onEvict, admit: newAdmission(cfg.MaxEntries)}
	per := max(cfg.MaxEntries/cacheShards, 1)
	for i := range c.shards {
		c.shards[i], _ = lru.New[cacheKey, *cacheEntry](per) // only fails for size <= 0
	}
	return c
}

// shard returns k's shard and k's hash for the admission sketch.
func (c *answerCache) shard(k cacheKey) (*lru.Cache[cacheKey, *cacheEntry], uint64) {
	h := maphash.String(c.seed, k.name)
	return c.shards[h%cacheShards], sketchHash(h, k)
}

// get returns the entry for k and whether it is still fresh at now.
// Expired entries are returned too, for serve-stale; the caller decides.
func (c *answerCache) get(k cacheKey, now time.Time) (e *cacheEntry, fresh bool) {
	s, h := c.shard(k)
	c.admit.touch(h)
	e, ok := s.Get(k)
	if !ok {
		return nil, false
	}
	return e, now.Before(e.expires)
}

// put turns an upstream answer into an entry, stores it when it may be
// cached, and returns it; nil means msg cannot be packed again. The cache
// takes ownership: the caller must not modify msg afterwards. Record TTLs
// are clamped to the configured bounds in place, so clients see what the
// cache enforces. An entry admission turns away is returned, not kept. c
// may be nil (no cache): the entry is then never stored.
func (c *answerCache) put(k cacheKey, msg *dns.Msg, now time.Time) *cacheEntry {
	ttl, cacheable := time.Duration(0), false
	if c != nil {
		ttl, cacheable = c.ttlFor(msg)
	}
	if cacheable {
		limit := uint32(ttl / time.Second)
		for _, s := range [][]dns.RR{msg.Answer, msg.Ns, msg.Extra} {
			for _, rr := range s {
				if h := rr.Header(); h.Rrtype != dns.TypeOPT {
					h.Ttl = max(min(h.Ttl, limit), uint32(c.cfg.MinTTL/time.Second))
				}
			}
		}
	}
	e, err := newCacheEntry(k, msg)
	if err != nil {
		return nil
	}
	e.stored, e.expires = now, now.Add(ttl)
	if !cacheable {
		return e
	}
	s, h := c.shard(k)
	if !c.admits(s, k, h) {
		return e // admission prefers the entry it would evict
	}
	if s.Add(k, e) && c.onEvict != nil {
		c.onEvict(1)
	}
	return e
}

// ttlFor decides whether msg may be cached and for how long: positive
// answers by their smallest TTL, negative ones per RFC 2308 from the SOA.
func (c *answerCache) ttlFor(msg *dns.Msg) (time.Duration, bool) {
	if msg.Truncated {
		return 0, false
	}
	switch msg.Rcode {
	case dns.RcodeSuccess:
		if len(msg.Answer) == 0 {
			return c.negativeTTL(msg)
		}
		return c.clamp(minTTL(msg.Answer, msg.Ns, msg.Extra)), true
	case dns.RcodeNameError:
		return c.negativeTTL(msg)
	}
	return 0, false // SERVFAIL, REFUSED and the rest are never cached
}

func (c *answerCache) negativeTTL(msg *dns.Msg) (time.Duration, bool) {
	for _, rr := range msg.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			ttl := min(soa.Hdr.Ttl, soa.Minttl)
			d := c.clamp(ttl)
			return min(d, c.cfg.NegativeMaxTTL), d > 0 && c.cfg.NegativeMaxTTL > 0
		}
	}
	return 0, false // no SOA: RFC 2308 says do not cache
}

func (c *answerCache) clamp(ttl uint32) time.Duration {
	d := time.Duration(ttl) * time.Second
	return min(max(d, c.cfg.MinTTL), c.cfg.MaxTTL)
}

func (c *answerCache) len() int {
	n := 0
	for _, s := range c.shards {
		n += s.Len()
	}
	return n
}

func minTTL(sections ...[]dns.RR) uint32 {
	m := uint32(1<<31 - 1)
	for _, s := range sections {
		for _, rr := range s {
			if rr.Header().Rrtype == dns.TypeOPT {
				continue
			}
			m = min(m, rr.Header().Ttl)
		}
	}
	return m
}

func newCacheEntry(k cacheKey, msg *dns.Msg) (*cacheEntry, error) {
	m := *msg // shallow: only header fields and section slices change below
	m.Id = 0
	m.Authoritative = false
	m.Compress = true
	m.Question = []dns.Question{{Name: k.name, Qtype: k.qtype, Qclass: k.qclass}}
	m.Extra = withoutOPT(append([]dns.RR(nil), msg.Extra...))
	wire, err := m.Pack()
	if err != nil {
		return nil, err
	}
	sec, ok := scanSections(wire)
	if !ok {
		return nil, errors.New("packed answer does not parse")
	}
	return &cacheEntry{wire: wire, sec: sec, cnames: cnameTargets(msg), addrs: answerAddrs(msg)}, nil
}

func answerAddrs(m *dns.Msg) []netip.Addr {
	var out []netip.Addr
	for _, rr := range m.Answer {
		var ip net.IP
		switch rr := rr.(type) {
		case *dns.A:
			ip = rr.A
		case *dns.AAAA:
			ip = rr.AAAA
		}
		if a, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, a.Unmap())
		}
	}
	return out
}

func cnameTargets(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if c, ok := rr.(*dns.CNAME); ok {
			out = append(out, strings.ToLower(c.Target))
		}
	}
	return out
}

// appendAged appends the entry's answer to dst with every TTL counted down
// by the time spent in the cache; past expiry (serve-stale) records get
// staleTTL (RFC 8767).
func (e *cacheEntry) appendAged(dst []byte, now time.Time, staleTTL uint32) []byte {
	start := len(dst)
	dst = append(dst, e.wire...)
	out := dst[start:]
	expired := !now.Before(e.expires)
	age := uint32(now.Sub(e.stored) / time.Second)
	for _, off := range e.sec.ttls {
		ttl := binary.BigEndian.Uint32(out[off:])
		switch {
		case expired:
			ttl = staleTTL
		case ttl > age:
			ttl -= age
		default:
			ttl = 0
		}
		binary.BigEndian.PutUint32(out[off:], ttl)
	}
	return dst
}

func withoutOPT(rrs []dns.RR) []dns.RR {
	out := rrs[:0]
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeOPT {
			out = append(out, rr)
		}
	}
	return out
}

// countCache counts a lookup for metrics: hit is a fresh entry.
func (r *Resolver) countCache(hit bool) {
	switch {
	case r.rec == nil:
	case hit:
		r.rec.CacheHit()
	default:
		r.rec.CacheMiss()
	}
}
