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

// DirectUDP returns the upstream the next query should go to, its index for
// ReportDirect and the time to wait for it, when that upstream is a healthy
// plain-UDP server and no down upstream is due for a re-probe. parallel_best
// with two or more healthy upstreams races them, so it returns false too.
func (f *Forwarder) DirectUDP(now time.Time) (addr netip.AddrPort, idx int, timeout time.Duration, ok bool) {
	if f.closed.Load() {
		return addr, 0, 0, false
	}
	n := len(f.ups)
	start := 0
	if f.strategy == StrategyRoundRobin && n > 1 {
		start = int((f.rr.Add(1) - 1) % uint32(n))
	}
	pick, healthy := -1, 0
	for i := range n {
		j := (start + i) % n
		down, due := f.ups[j].downState(now)
		if due {
			return addr, 0, 0, false // Exchange claims the probe
		}
		if !down {
			healthy++
			if pick < 0 {
				pick = j
			}
		}
	}
	if pick < 0 || (f.strategy == StrategyParallelBest && healthy > 1) {
		return addr, 0, 0, false
	}
	t, isUDP := f.ups[pick].tr.(*udpTransport)
	if !isUDP {
		return addr, 0, 0, false
	}
	return t.addr, pick, f.timeout, true
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
