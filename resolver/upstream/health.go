package upstream

import (
	"cmp"
	"sync"
	"time"
)

// downAfter consecutive failures mark an upstream down.
const downAfter = 3

// defaultProbeInterval is the least time between re-probes of a down
// upstream; each wait adds up to the same again as jitter (5-10 s).
const defaultProbeInterval = 5 * time.Second

type healthEffect int

const (
	healthNeutral healthEffect = iota // says nothing about the upstream (e.g. SERVFAIL for one name)
	healthGood
	healthBad
)

// upstream is one configured server with its passive health state.
type upstream struct {
	name string
	tr   transport

	mu        sync.Mutex
	fails     int // consecutive failures
	down      bool
	nextProbe time.Time     // when down: earliest time real traffic may probe it
	rtt       time.Duration // moving average of successful attempts, for parallel_best ranking
}

// probeState reports whether u is down and, if so, whether the caller has
// claimed its re-probe (at most one per interval).
func (u *upstream) probeState(now time.Time, interval time.Duration) (down, probe bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.down {
		return false, false
	}
	if now.Before(u.nextProbe) {
		return true, false
	}
	u.nextProbe = now.Add(interval)
	return true, true
}

// downState reports whether u is down and whether its re-probe is due,
// without claiming the probe.
func (u *upstream) downState(now time.Time) (down, due bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.down, u.down && !now.Before(u.nextProbe)
}

// record applies one attempt's effect and reports an up/down transition.
func (u *upstream) record(effect healthEffect, d time.Duration, now time.Time, interval time.Duration) (changed, up bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch effect {
	case healthGood:
		u.fails = 0
		if u.rtt == 0 {
			u.rtt = d
		} else {
			u.rtt += (d - u.rtt) / 4
		}
		if u.down {
			u.down = false
			return true, true
		}
	case healthBad:
		u.fails++
		if !u.down && u.fails >= downAfter {
			u.down = true
			u.nextProbe = now.Add(interval)
			return true, false
		}
	}
	return false, !u.down
}

// rank orders upstreams for parallel_best: fewer recent failures, then faster.
type rank struct {
	fails int
	rtt   time.Duration
}

func (u *upstream) rank() rank {
	u.mu.Lock()
	defer u.mu.Unlock()
	return rank{fails: u.fails, rtt: u.rtt}
}

func (a rank) compare(b rank) int {
	if c := cmp.Compare(a.fails, b.fails); c != 0 {
		return c
	}
	return cmp.Compare(a.rtt, b.rtt)
}
