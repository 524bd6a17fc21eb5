package resolver

import (
	"context"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/resolver/upstream"
)

// probeContext starts the readiness probe's lifetime; stopProbe ends it.
func (r *Resolver) probeContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	r.probeMu.Lock()
	r.cancelProbe = cancel
	r.probeMu.Unlock()
	return ctx
}

func (r *Resolver) stopProbe() {
	r.probeMu.Lock()
	defer r.probeMu.Unlock()
	if r.cancelProbe != nil {
		r.cancelProbe()
	}
}

// probeUntilReady asks the upstreams for the root NS set until one
// answers, so /readyz turns green without waiting for client traffic (a
// load balancer sends none until it is green). Backoff from 1 s to 30 s.
func (r *Resolver) probeUntilReady(ctx context.Context) {
	wait := time.Second
	for !r.upstream.Ready() {
		got := make(chan error, 1)
		r.upstream.Start(upstream.Query{Name: ".", Type: dns.TypeNS, Class: dns.ClassINET}, time.Now().Add(r.timeout),
			func(_ *dns.Msg, err error) { got <- err })
		var err error
		select {
		case err = <-got:
		case <-ctx.Done():
			return
		}
		if err == nil {
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
