package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// result is one attempt at one upstream. outcome is empty when the attempt
// was cancelled (another upstream won, or the caller gave up).
type result struct {
	msg     *dns.Msg
	err     error
	outcome string
}

// sequential tries upstreams one at a time, each with its own timeout, until
// one answers well, ctx ends or the budget (zero: none) runs out.
func (f *Forwarder) sequential(ctx context.Context, order []*upstream, budget time.Time, wire []byte, q dns.Question) (*dns.Msg, error) {
	var fails failures
	for _, u := range order {
		if ctxDone(ctx) != nil || (!budget.IsZero() && !time.Now().Before(budget)) {
			break
		}
		r := f.attempt(ctx, u, budget, wire, q)
		if r.outcome == OutcomeSuccess {
			return r.msg, nil
		}
		fails.add(r)
	}
	return fails.result(ctx)
}

// race keeps up to width attempts in flight, starting the next upstream
// whenever one fails, plus any re-probes; the first good answer wins and the
// rest are cancelled.
func (f *Forwarder) race(ctx context.Context, order, probes []*upstream, width int, budget time.Time, wire []byte, q dns.Question) (*dns.Msg, error) {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan result, len(order)+len(probes)) // never blocks a sender
	inflight := 0
	for _, u := range probes {
		if f.startProbe(u, wire, q, results) {
			inflight++
		}
	}
	next := 0
	launch := func() {
		u := order[next]
		next++
		inflight++
		go func() { results <- f.attempt(rctx, u, budget, wire, q) }()
	}
	for next < len(order) && next < width {
		launch()
	}
	var fails failures
	for inflight > 0 {
		select {
		case r := <-results:
			inflight--
			if r.outcome == OutcomeSuccess {
				return r.msg, nil
			}
			fails.add(r)
			if next < len(order) && ctxDone(ctx) == nil && (budget.IsZero() || time.Now().Before(budget)) {
				launch()
			}
		case <-ctx.Done():
			return fails.result(ctx)
		}
	}
	return fails.result(ctx)
}

// startProbe sends the query to a down upstream in the background. Its
// result is used if it comes first, and updates health either way; it is not
// cancelled when another upstream wins, or a slower upstream could never
// prove it is back. Close waits for it.
func (f *Forwarder) startProbe(u *upstream, wire []byte, q dns.Question, results chan<- result) bool {
	f.closeMu.Lock()
	defer f.closeMu.Unlock()
	if f.closed.Load() {
		return false
	}
	f.probesRun.Add(1)
	go func() {
		defer f.probesRun.Done()
		results <- f.attempt(f.bg, u, time.Time{}, wire, q)
	}()
	return true
}

// attempt runs one exchange with u, then reports and records its outcome.
func (f *Forwarder) attempt(ctx context.Context, u *upstream, budget time.Time, wire []byte, q dns.Question) result {
	start := time.Now()
	deadline := start.Add(f.timeout)
	if !budget.IsZero() && budget.Before(deadline) {
		deadline = budget
	}
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	msg, err := u.tr.exchange(ctx, deadline, wire, q)
	elapsed := time.Since(start)
	r := classify(ctx, msg, err)
	if r.outcome == "" {
		return r
	}
	if r.err != nil {
		r.err = fmt.Errorf("%s: %w", u.name, r.err)
	}
	// A timeout cut short by the caller's deadline says nothing about u.
	hadBudget := deadline.Sub(start) >= f.timeout*9/10
	f.account(u, r, elapsed, hadBudget)
	return r
}

// account records one attempt's outcome: metrics, readiness and health.
func (f *Forwarder) account(u *upstream, r result, elapsed time.Duration, hadBudget bool) {
	f.obs.UpstreamResult(u.name, r.outcome, elapsed)
	if r.outcome == OutcomeSuccess {
		f.ready.Store(true)
	}
	if changed, up := u.record(effectOf(r, hadBudget), elapsed, time.Now(), f.nextProbeWait()); changed {
		f.obs.UpstreamUp(u.name, up)
		if up {
			f.log.Info("upstream is answering again", "upstream", u.name)
		} else {
			f.log.Warn("upstream marked down; trying it again every few seconds",
				"upstream", u.name, "consecutive_failures", downAfter, "last_error", r.err)
		}
	}
}

func classify(ctx context.Context, msg *dns.Msg, err error) result {
	switch {
	case err == nil && (msg.Rcode == dns.RcodeFormatError || msg.Rcode == dns.RcodeNotImplemented):
		return result{err: fmt.Errorf("%w: rcode %s", errBadResponse, dns.RcodeToString[msg.Rcode]), outcome: OutcomeBadResponse}
	case err == nil && (msg.Rcode == dns.RcodeServerFailure || msg.Rcode == dns.RcodeRefused):
		return result{msg: msg, err: fmt.Errorf("rcode %s", dns.RcodeToString[msg.Rcode]), outcome: OutcomeServfail}
	case err == nil:
		return result{msg: msg, outcome: OutcomeSuccess}
	case errors.Is(ctx.Err(), context.Canceled):
		return result{err: err}
	case errors.Is(err, errBadResponse):
		return result{err: err, outcome: OutcomeBadResponse}
	case isTimeout(err):
		return result{err: err, outcome: OutcomeTimeout}
	default:
		return result{err: err, outcome: OutcomeError}
	}
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

// ctxDone is ctx.Err(), but also reports a deadline that has passed when
// ctx's own timer has not fired yet (socket deadlines can fire first).
func ctxDone(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// failures collects what went wrong so the caller gets one clear error, or
// an upstream's own SERVFAIL/REFUSED answer when there is one.
type failures struct {
	errs  []error
	reply *dns.Msg
}

func (fs *failures) add(r result) {
	if r.msg != nil && fs.reply == nil {
		fs.reply = r.msg
	}
	if r.err != nil {
		fs.errs = append(fs.errs, r.err)
	}
}

func (fs *failures) result(ctx context.Context) (*dns.Msg, error) {
	if fs.reply != nil {
		return fs.reply, nil
	}
	if err := ctxDone(ctx); err != nil {
		return nil, fmt.Errorf("upstream: %w", append(errorList{err}, fs.errs...))
	}
	if len(fs.errs) == 0 {
		return nil, errors.New("upstream: no upstream could be tried before the deadline")
	}
	return nil, fmt.Errorf("upstream: every upstream failed: %w", errorList(fs.errs))
}

// errorList is errors.Join on one line, which reads better in logs.
type errorList []error

func (l errorList) Unwrap() []error { return l }

func (l errorList) Error() string {
	parts := make([]string, len(l))
	for i, err := range l {
		parts[i] = err.Error()
	}
	return strings.Join(parts, "; ")
}
