package resolver

import (
	"context"
	"time"

	"github.com/miekg/dns"
)

// probeUntilReady asks the upstreams for the root NS set until one
// answers, so /readyz turns green without waiting for client traffic (a
// load balancer sends none until it is green). Backoff from 1 s to 30 s.
func (r *Resolver) probeUntilReady(ctx context.Context) {
	wait := time.Second
	for !r.upstream.Ready() {
		q := new(dns.Msg).SetQuestion(".", dns.TypeNS)
		q.SetEdns0(ourUDPSize, false)
		pctx, cancel := context.WithTimeout(ctx, r.timeout)
		_, err := r.upstream.Exchange(pctx, q)
		cancel()
		if err == nil || ctx.Err() != nil {
			return
		}
		r.log.Warn("no upstream answered the readiness probe yet", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, 30*time.Second)
	}
}
