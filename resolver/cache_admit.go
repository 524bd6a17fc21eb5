package resolver

import (
	"math/bits"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
)

// admission keeps random-subdomain floods ("water torture": a stream of
// unique names under one domain, each asked once) from evicting the
// working set. It is TinyLFU's admission policy: a count-min sketch
// estimates how often each key was asked lately, and a new entry may take
// the place of the LRU's oldest only if it was asked more often. Names
// asked once lose to any name asked twice, so a flood replaces nothing;
// while the cache has room every answer is stored, so a normal working
// set fills it as before. Counts halve every sampleSize counted lookups,
// so the sketch follows what is popular now.
//
// The sketch is blocked: each key maps to one 64-bit word and uses four
// of its sixteen 4-bit counters, so a lookup touches one cache line and
// updates with one atomic compare-and-swap, without locks.
type admission struct {
	words      []atomic.Uint64
	mask       uint64
	sampleSize int64
	// Lookups are counted in stripes, so that two read threads do not
	// fight over one counter's cache line on every hit; a full stripe
	// (its share of sampleSize) counts once in stripesFull.
	stripes     [sampleStripes]paddedCounter
	stripesFull atomic.Int64
}

const sampleStripes = 16

type paddedCounter struct {
	n atomic.Int64
	_ [56]byte
}

const (
	nibbles     = 0x7777777777777777 // the low three bits of each counter
	maxCount    = 15
	minSketchSz = 64
)

// newAdmission sizes the sketch for a cache of capacity entries: one word
// (sixteen counters) per two entries, about 4 bytes an entry.
func newAdmission(capacity int) *admission {
	n := max(1<<bits.Len(uint(max(capacity/2, 1))), minSketchSz)
	return &admission{
		words:      make([]atomic.Uint64, n),
		mask:       uint64(n - 1),
		sampleSize: 10 * int64(max(capacity, minSketchSz)), // TinyLFU's W = 10 × cache size
	}
}

// sketchHash mixes the key's name hash with the rest of the key, so that
// the A and AAAA entries of a name are counted apart.
func sketchHash(nameHash uint64, k cacheKey) uint64 {
	x := nameHash ^ uint64(k.qtype)<<32 ^ uint64(k.qclass)<<16
	if k.do {
		x ^= 1
	}
	if k.cd {
		x ^= 2
	}
	hi, lo := bits.Mul64(x, 0x9e3779b97f4a7c15)
	return hi ^ lo
}

// slots returns the key's word and the bit offsets of its four counters,
// one in each quarter of the word so that they differ.
func (a *admission) slots(h uint64) (w *atomic.Uint64, shifts [4]uint) {
	w = &a.words[h&a.mask]
	h >>= 32
	for i := range shifts {
		shifts[i] = uint(i*16) + uint(h>>(4*i)&3)*4
	}
	return w, shifts
}

// touch counts one lookup of the key (hit or miss). Counting stops at 15,
// and so does the key's share in the aging period.
func (a *admission) touch(h uint64) {
	w, sh := a.slots(h)
	for {
		old := w.Load()
		least := uint64(maxCount)
		for _, s := range sh {
			least = min(least, old>>s&0xF)
		}
		if least == maxCount {
			return // saturated: a hot key's hit only reads, and is not a sample
		}
		next := old
		for _, s := range sh { // conservative update: raise only the smallest
			if old>>s&0xF == least {
				next += 1 << s
			}
		}
		if w.CompareAndSwap(old, next) {
			break
		}
	}
	a.count(h)
}

// count notes one lookup; every sampleSize lookups the counters age.
func (a *admission) count(h uint64) {
	stripe := &a.stripes[h>>60]
	if stripe.n.Add(1) < a.sampleSize/sampleStripes {
		return
	}
	stripe.n.Store(0)
	if a.stripesFull.Add(1)%sampleStripes == 0 {
		a.age()
	}
}

// estimate is the key's count: the least of its four counters.
func (a *admission) estimate(h uint64) uint64 {
	w, sh := a.slots(h)
	v := w.Load()
	least := uint64(maxCount)
	for _, s := range sh {
		least = min(least, v>>s&0xF)
	}
	return least
}

// admit says whether a new entry may evict the victim: only if its key was
// asked for more often. Ties keep the incumbent, which is what stops a
// flood of once-asked names.
func (a *admission) admit(candidate, victim uint64) bool {
	return a.estimate(candidate) > a.estimate(victim)
}

// age halves every counter. An increment racing with it may be lost,
// which only makes an estimate a little low.
func (a *admission) age() {
	for i := range a.words {
		w := &a.words[i]
		w.Store(w.Load() >> 1 & nibbles)
	}
}

// admits decides whether put may store k in shard s: always while s has
// room or when k replaces its own entry, else by frequency against the
// entry that would be evicted.
func (c *answerCache) admits(s *lru.Cache[cacheKey, *cacheEntry], k cacheKey, h uint64) bool {
	if s.Len() < max(c.cfg.MaxEntries/cacheShards, 1) || s.Contains(k) {
		return true
	}
	victim, _, ok := s.GetOldest()
	if !ok {
		return true
	}
	_, vh := c.shard(victim)
	if c.admit.admit(h, vh) {
		return true
	}
	// The victim stays, and moves to the front: the next candidate meets
	// the next-oldest entry. Otherwise one victim whose counters collide
	// with busier keys (so it reads as popular) would turn away every
	// candidate of its shard until the counts age.
	s.Get(victim)
	return false
}
