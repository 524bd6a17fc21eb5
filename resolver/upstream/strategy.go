package upstream

import (
	"slices"
	"sync/atomic"
)

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
