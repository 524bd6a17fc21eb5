package upstream

import (
	"cmp"
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// downAfter consecutive failures mark an upstream down.
const downAfter = 3

// defaultProbeInterval is the least time between probes of a down
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

	mu    sync.Mutex
	fails int // consecutive failures
	down  bool
	rtt   time.Duration // moving average of successful attempts, for parallel_best ranking
}

func (u *upstream) isDown() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.down
}

// record applies one attempt's effect and reports an up/down transition.
func (u *upstream) record(effect healthEffect, d time.Duration) (changed, up bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch effect {
	case healthGood:
		u.fails = 0
		if u.rtt == 0 {
			u.rtt = d
		} else if d > 0 { // 0: no sample
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
			return true, false
		}
	}
	return false, !u.down
}

// minResend is the least wait before an unanswered UDP query goes to its
// upstream again: above a busy upstream's own recursion for most names.
const minResend = 250 * time.Millisecond

// resendAfter is the wait before the first resend of a UDP query: four
// times the upstream's average reply time, from minResend up to half the
// timeout. Each further wait doubles, so a lost datagram costs a fraction
// of the timeout instead of the whole exchange (Unbound does the same
// from its measured round-trip times).
func (u *upstream) resendAfter(timeout time.Duration) time.Duration {
	u.mu.Lock()
	rtt := u.rtt
	u.mu.Unlock()
	return max(minResend, min(4*rtt, timeout/2))
}

func effectOf(r result, hadBudget bool) healthEffect {
	switch r.outcome {
	case OutcomeSuccess:
		return healthGood
	case OutcomeServfail:
		if r.msg.Rcode == dns.RcodeRefused { // refusing everyone is a config problem upstream
			return healthBad
		}
		return healthNeutral // SERVFAIL is often about one broken domain
	case OutcomeTimeout:
		if !hadBudget {
			return healthNeutral
		}
	}
	return healthBad
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

// probeWhileDown asks a down upstream for the root NS set every few
// seconds until it answers, so clients never wait on a server that is
// known dead, and it is back in use as soon as it recovers. Traffic
// skips a down upstream unless every other has failed too.
func (f *Forwarder) probeWhileDown(u *upstream) {
	defer f.probesRun.Done()
	for u.isDown() {
		wait := f.probeInterval + rand.N(f.probeInterval+1) // jitter spreads several down upstreams
		select {
		case <-f.bg.Done():
			return
		case <-time.After(wait):
		}
		ctx, cancel := context.WithTimeout(f.bg, f.timeout)
		_, _ = f.exchangeWith(ctx, []*upstream{u}, Query{Name: ".", Type: dns.TypeNS, Class: dns.ClassINET})
		cancel()
	}
}

// A strategy puts the upstreams in the order one query tries them: the
// healthy ones first, in the strategy's order, then the ones marked down
// (tried only when every healthy one has failed). It returns how many
// are healthy. Each exchange asks once; nothing else picks upstreams.
type strategy interface {
	// order is given the upstreams twice over (ups, ups), so a rotation
	// is a sub-slice, and whether any is down.
	order(twice []*upstream, anyDown bool) (order []*upstream, healthy int)
	width() int // attempts in flight at once
}

func newStrategy(name string) strategy {
	switch name {
	case StrategyFailover:
		return failover{}
	case StrategyRoundRobin:
		return &roundRobin{}
	}
	return parallelBest{}
}

// healthyFirst lists the up upstreams, starting at start and wrapping
// around, then the down ones. With none down it allocates nothing.
func healthyFirst(twice []*upstream, start int, anyDown bool) ([]*upstream, int) {
	n := len(twice) / 2
	if !anyDown {
		return twice[start : start+n : start+n], n
	}
	ups := twice[:n]
	out := make([]*upstream, 0, n)
	for i := range ups {
		if u := ups[(start+i)%len(ups)]; !u.isDown() {
			out = append(out, u)
		}
	}
	healthy := len(out)
	for i := range ups {
		if u := ups[(start+i)%len(ups)]; u.isDown() {
			out = append(out, u)
		}
	}
	return out, healthy
}

// failover tries the upstreams in config order.
type failover struct{}

func (failover) order(twice []*upstream, anyDown bool) ([]*upstream, int) {
	return healthyFirst(twice, 0, anyDown)
}

func (failover) width() int { return 1 }

// roundRobin starts each query at the next upstream in turn.
type roundRobin struct{ next atomic.Uint32 }

func (r *roundRobin) order(twice []*upstream, anyDown bool) ([]*upstream, int) {
	return healthyFirst(twice, int((r.next.Add(1)-1)%uint32(len(twice)/2)), anyDown)
}

func (r *roundRobin) width() int { return 1 }

// parallelBest races the two best-ranked healthy upstreams (fewest recent
// failures, then fastest) and takes the first good answer.
type parallelBest struct{}

func (parallelBest) order(twice []*upstream, anyDown bool) ([]*upstream, int) {
	out, healthy := healthyFirst(twice, 0, anyDown)
	if healthy > 2 {
		out = slices.Clone(out) // sorted below: not the shared slice
		ranks := make(map[*upstream]rank, healthy)
		for _, u := range out[:healthy] {
			ranks[u] = u.rank()
		}
		slices.SortStableFunc(out[:healthy], func(a, b *upstream) int { return ranks[a].compare(ranks[b]) })
	}
	return out, healthy
}

func (parallelBest) width() int { return 2 }
