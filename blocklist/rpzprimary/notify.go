package rpzprimary

import (
	"context"
	"time"

	"github.com/miekg/dns"
)

// NOTIFY retries: a secondary that misses every try still catches up at
// its SOA refresh.
const (
	notifyTries   = 5
	notifyTimeout = 2 * time.Second
)

// sendNotifies tells every configured secondary that z changed.
func (s *Server) sendNotifies(ctx context.Context, z *servedZone) {
	for _, target := range s.notify {
		s.done.Go(func() { s.notifyOne(ctx, z, target.String()) })
	}
}

// notifyOne sends a signed NOTIFY (RFC 1996) over UDP until the secondary
// answers, backing off from 1 s, at most notifyTries times.
func (s *Server) notifyOne(ctx context.Context, z *servedZone, target string) {
	serial := z.cur.Load().serial
	c := &dns.Client{Net: "udp", Timeout: notifyTimeout, TsigSecret: map[string]string{s.opts.Key.Name: s.opts.Key.Secret}}
	wait := time.Second
	for try := 1; try <= notifyTries; try++ {
		m := new(dns.Msg)
		m.SetNotify(z.name)
		m.Answer = []dns.RR{z.soa(serial)}
		m.SetTsig(s.opts.Key.Name, s.opts.Key.Algorithm, 300, time.Now().Unix())
		r, _, err := c.ExchangeContext(ctx, m, target)
		if err == nil && r.Rcode == dns.RcodeSuccess {
			s.log.Info("rpz primary: NOTIFY acknowledged", "zone", z.name, "secondary", target, "serial", serial)
			return
		}
		why := ""
		if err != nil {
			why = err.Error()
		} else {
			why = "answered " + dns.RcodeToString[r.Rcode]
		}
		s.log.Warn("rpz primary: NOTIFY not acknowledged", "zone", z.name, "secondary", target, "try", try, "error", why)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait *= 2
	}
}
