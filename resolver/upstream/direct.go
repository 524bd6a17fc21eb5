package upstream

import (
	"fmt"
	"net/netip"
	"time"
)

// Direct sending lets the resolver's UDP read loops send a cache miss to a
// plain-UDP upstream themselves, without a goroutine per query, and report
// the result back here, so health, metrics and readiness stay the
// forwarder's. Anything out of the ordinary (no healthy UDP upstream, a
// down upstream due for a probe, two upstreams to race) is left to
// Exchange.

// DirectUDP fills addrs and idxs with the upstreams the next query goes to
// and returns how many, with the time to wait for them: the first healthy
// upstream by strategy, or for parallel_best the best two, which the caller
// races as Exchange would. It returns 0, leaving the query to Exchange, when
// one of them is not plain UDP or a down upstream is due for a re-probe.
// addrs and idxs must have room for two.
func (f *Forwarder) DirectUDP(now time.Time, addrs []netip.AddrPort, idxs []int) (int, time.Duration) {
	if f.closed.Load() {
		return 0, 0
	}
	n := len(f.ups)
	start := 0
	if f.strategy == StrategyRoundRobin && n > 1 {
		start = int((f.rr.Add(1) - 1) % uint32(n))
	}
	width := 1
	if f.strategy == StrategyParallelBest {
		width = 2
	}
	var best [2]int
	var ranks [2]rank
	picked := 0
	for i := range n {
		j := (start + i) % n
		u := f.ups[j]
		down, due := u.downState(now)
		if due {
			return 0, 0 // Exchange claims the probe
		}
		if down {
			continue
		}
		if width == 1 {
			if picked == 0 {
				best[0], picked = j, 1
			}
			continue
		}
		// Keep the two best ranked, ties in config order, as plan sorts.
		r := u.rank()
		switch {
		case picked < 2:
			best[picked], ranks[picked] = j, r
			picked++
		case r.compare(ranks[1]) < 0:
			best[1], ranks[1] = j, r
		default:
			continue
		}
		if picked == 2 && ranks[1].compare(ranks[0]) < 0 {
			best[0], best[1], ranks[0], ranks[1] = best[1], best[0], ranks[1], ranks[0]
		}
	}
	for i := range picked {
		t, isUDP := f.ups[best[i]].tr.(*udpTransport)
		if !isUDP {
			return 0, 0
		}
		addrs[i], idxs[i] = t.addr, best[i]
	}
	return picked, f.timeout
}

// ReportDirect records the result of a query sent to DirectUDP's choice:
// err nil for a good answer, else the timeout or socket error.
func (f *Forwarder) ReportDirect(idx int, err error, elapsed time.Duration) {
	u := f.ups[idx]
	r := result{outcome: OutcomeSuccess}
	if err != nil {
		r = result{err: fmt.Errorf("%s: %w", u.name, err), outcome: OutcomeError}
		if isTimeout(err) {
			r.outcome = OutcomeTimeout
		}
	}
	f.account(u, r, elapsed, true)
}
