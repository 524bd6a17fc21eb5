package resolver

import (
	"crypto/rand"
	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"
	"sync"
	"time"
)

// RateVerdict is what the rate limiter says about one query.
type RateVerdict uint8

const (
	RateAllow  RateVerdict = iota // answer normally
	RateRefuse                    // answer REFUSED, header and question only
	RateDrop                      // send nothing
	RateSlip                      // UDP only: answer TC=1, header and question only
)

func (v RateVerdict) String() string {
	switch v {
	case RateAllow:
		return "allow"
	case RateRefuse:
		return "refuse"
	case RateDrop:
		return "drop"
	case RateSlip:
		return "slip"
	}
	return "unknown"
}

// The limiter's state is a fixed table of rateSets sets of rateWays slots:
// 65536 clients tracked at once in about 2 MiB, whatever the number of
// source addresses. A client that is not in the table has a full bucket,
// so only clients being limited need their slot; those are the last ones
// a newcomer displaces (see victim).
const (
	rateWays = 8
	rateSets = 8192
)

// rateSlot is one client's bucket as a GCRA theoretical arrival time: the
// bucket is full when tat <= now and empty when tat >= now + tolerance.
type rateSlot struct {
	hi, lo  uint64 // the client key (address, or IPv6 prefix)
	tat     int64  // nanoseconds since the limiter's epoch
	limited uint32 // limited queries, for slip
	tcp     bool   // TCP clients have their own buckets: their source is proven
	used    bool
}

type rateSet struct {
	mu    sync.Mutex
	slots [rateWays]rateSlot
}

// rateClass is a rate in GCRA terms: one query per interval, tolerance
// being burst intervals. off means not limited.
type rateClass struct {
	interval, tolerance int64
	off                 bool
}

func newRateClass(qps float64, burst int) rateClass {
	if qps <= 0 {
		return rateClass{off: true}
	}
	interval := float64(time.Second) / qps
	tolerance := math.Min(interval*float64(burstOf(qps, burst)), 1<<62) // no overflow at 0.001 qps
	return rateClass{interval: int64(interval), tolerance: int64(tolerance)}
}

// admit takes one token from the bucket at *tat if there is one.
func (c rateClass) admit(tat *int64, now int64) bool {
	next := max(*tat, now) + c.interval
	if next-now > c.tolerance {
		return false // a denied query takes nothing: the client keeps its rate
	}
	*tat = next
	return true
}

// RateLimiter limits queries per client with a token bucket. It is safe
// for concurrent use; each check locks one of 8192 sets, so two read
// threads rarely meet. A nil *RateLimiter allows everything.
type RateLimiter struct {
	sets     []rateSet
	k0, k1   uint64 // hash keys, random per limiter so no one can aim at a set
	epoch    time.Time
	v6prefix int
	action   RateVerdict
	slip     uint32
	base     rateClass
	groups   map[string]rateClass
}

// NewRateLimiter builds a limiter for a validated cfg; it returns nil (no
// limits) when cfg.QPS is 0. start is the clock's reading now; every
// later Check must pass a time from the same clock.
func NewRateLimiter(cfg RateLimitConfig, start time.Time) *RateLimiter {
	if !cfg.Enabled() {
		return nil
	}
	var seed [16]byte
	_, _ = rand.Read(seed[:]) // never fails on Linux (Go 1.24+ panics instead)
	l := &RateLimiter{
		sets:     make([]rateSet, rateSets),
		k0:       binary.LittleEndian.Uint64(seed[:8]) | 1,
		k1:       binary.LittleEndian.Uint64(seed[8:]) | 1,
		epoch:    start,
		v6prefix: cfg.IPv6Prefix,
		action:   RateRefuse,
		slip:     uint32(cfg.Slip),
		base:     newRateClass(cfg.QPS, cfg.Burst),
	}
	if cfg.Action == RateLimitDrop {
		l.action = RateDrop
	}
	if len(cfg.Groups) > 0 {
		l.groups = make(map[string]rateClass, len(cfg.Groups))
		for name, g := range cfg.Groups {
			l.groups[name] = newRateClass(g.QPS, g.Burst)
		}
	}
	return l
}

// Check takes one query from client's bucket at time now. group is the
// client's policy group ("" for none), which may carry its own rate; udp
// says whether the query came over UDP, the only transport where a source
// can be spoofed and so the only one that gets RateSlip.
func (l *RateLimiter) Check(client netip.Addr, group string, udp bool, now time.Time) RateVerdict {
	if l == nil {
		return RateAllow
	}
	class := l.base
	if l.groups != nil {
		if g, ok := l.groups[group]; ok {
			class = g
		}
	}
	if class.off {
		return RateAllow
	}
	hi, lo := l.key(client)
	t := max(int64(now.Sub(l.epoch)), 0)
	set := &l.sets[l.index(hi, lo, !udp)]
	set.mu.Lock()
	slot := set.lookup(hi, lo, !udp)
	ok := class.admit(&slot.tat, t)
	if !ok {
		slot.limited++
	}
	n := slot.limited
	set.mu.Unlock()
	switch {
	case ok:
		return RateAllow
	case udp && l.slip > 0 && n%l.slip == 0:
		return RateSlip
	}
	return l.action
}

// key is the client's address as 128 bits, IPv6 cut to the prefix.
func (l *RateLimiter) key(a netip.Addr) (hi, lo uint64) {
	a = a.Unmap()
	if a.Is6() {
		a = a.WithZone("")
		if p, err := a.Prefix(l.v6prefix); err == nil {
			a = p.Addr()
		}
	}
	b := a.As16() // IPv4 as ::ffff:a.b.c.d, which no masked IPv6 key equals
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

// index picks the key's set with a keyed multiply-mix hash.
func (l *RateLimiter) index(hi, lo uint64, tcp bool) int {
	if tcp {
		lo ^= 0x9e3779b97f4a7c15
	}
	h1, l1 := bits.Mul64(hi^l.k0, lo^l.k1)
	return int((h1 ^ l1) % rateSets)
}

// lookup returns the key's slot, taking over the victim's when the key is
// not in the set. The caller holds s.mu.
func (s *rateSet) lookup(hi, lo uint64, tcp bool) *rateSlot {
	for i := range s.slots {
		sl := &s.slots[i]
		if sl.used && sl.hi == hi && sl.lo == lo && sl.tcp == tcp {
			return sl
		}
	}
	sl := s.victim()
	*sl = rateSlot{hi: hi, lo: lo, tcp: tcp, used: true}
	return sl
}

// victim is the slot whose bucket is fullest (smallest tat): forgetting it
// loses the least, since a forgotten client starts with a full bucket.
// A flood of new addresses thus replaces its own entries, each one query
// deep, and never a client that is being limited.
func (s *rateSet) victim() *rateSlot {
	var v *rateSlot
	for i := range s.slots {
		sl := &s.slots[i]
		if !sl.used {
			return sl
		}
		if v == nil || sl.tat < v.tat {
			v = sl
		}
	}
	return v
}
