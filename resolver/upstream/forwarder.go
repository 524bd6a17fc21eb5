package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Outcomes reported to Observer.UpstreamResult. REFUSED is reported as
// OutcomeServfail: both are "the upstream answered, but not usefully".
const (
	OutcomeSuccess     = "success"
	OutcomeServfail    = "servfail"
	OutcomeError       = "error"
	OutcomeTimeout     = "timeout"
	OutcomeBadResponse = "bad_response"
)

// Observer receives per-attempt results and health transitions (metrics).
// It is called from several goroutines at once and must not block.
type Observer interface {
	UpstreamResult(upstream string, outcome string, d time.Duration)
	UpstreamUp(upstream string, up bool)
	// UpstreamResend: a UDP query went to the upstream again, unanswered so far.
	UpstreamResend(upstream string)
}

// Options carries dependencies; all fields are optional.
type Options struct {
	Logger     *slog.Logger
	Observer   Observer
	TLSConfig  *tls.Config  // base for DoT and DoH, e.g. test root CAs
	HTTPClient *http.Client // used as is for DoH instead of the built-in client
}

// ErrClosed is returned by Exchange after Close.
var ErrClosed = errors.New("upstream: forwarder closed")

// Forwarder sends queries to the configured upstreams. It is safe for
// concurrent use.
type Forwarder struct {
	strategy      strategy
	timeout       time.Duration
	probeInterval time.Duration
	ups           []*upstream
	twice         []*upstream  // ups, ups: a rotation of them is a sub-slice
	down          atomic.Int32 // upstreams marked down
	names         []string
	log           *slog.Logger
	obs           Observer
	ownHTTP       *http.Client // built here, so closed here
	udp           *udpPoller   // nil without plain-DNS upstreams

	ready atomic.Bool

	closeMu   sync.Mutex // orders probe starts against Close
	closed    atomic.Bool
	bg        context.Context // background probes; cancelled by Close
	cancelBG  context.CancelFunc
	probesRun sync.WaitGroup
}

// New validates cfg (an empty strategy or zero timeout take the defaults) and
// builds a Forwarder. Every upstream starts out up.
func New(cfg Config, opts Options) (*Forwarder, error) {
	if cfg.Strategy == "" {
		cfg.Strategy = StrategyParallelBest
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := &Forwarder{
		strategy:      newStrategy(cfg.Strategy),
		timeout:       cfg.Timeout,
		probeInterval: defaultProbeInterval,
		names:         slices.Clone(cfg.Servers),
		log:           opts.Logger,
		obs:           opts.Observer,
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.obs == nil {
		f.obs = noObserver{}
	}
	f.bg, f.cancelBG = context.WithCancel(context.Background())
	if err := f.buildTransports(cfg, opts); err != nil {
		f.Close()
		return nil, err
	}
	f.twice = append(slices.Clone(f.ups), f.ups...)
	for _, u := range f.ups {
		f.obs.UpstreamUp(u.name, true) // so dashboards show every upstream from the start
	}
	return f, nil
}

func (f *Forwarder) buildTransports(cfg Config, opts Options) error {
	httpClient := opts.HTTPClient
	for _, s := range cfg.Servers {
		ep, _ := parseEndpoint(s) // Validate accepted it
		var tr transport
		switch ep.scheme {
		case "udp":
			if f.udp == nil {
				var err error
				if f.udp, err = newUDPPoller(); err != nil {
					return fmt.Errorf("upstream: %w", err)
				}
			}
			tr = newUDPTransport(ep.addr, f.udp, newStreamTransport(tcpDialer(ep.addr)))
		case "tcp":
			tr = newStreamTransport(tcpDialer(ep.addr))
		case "tls":
			tr = newStreamTransport(tlsDialer(ep.addr, tlsConfig(opts.TLSConfig, ep.serverName)))
		case "https":
			if httpClient == nil {
				f.ownHTTP = newHTTPClient(opts.TLSConfig, cfg.Timeout)
				httpClient = f.ownHTTP
			}
			tr = &dohTransport{url: ep.url, client: httpClient}
		}
		f.ups = append(f.ups, &upstream{name: s, tr: tr})
	}
	return nil
}

// Names returns the upstreams as written in the config, in config order.
func (f *Forwarder) Names() []string { return slices.Clone(f.names) }

// Ready reports whether any upstream has answered successfully since start.
func (f *Forwarder) Ready() bool { return f.ready.Load() }

// Close stops background probes and closes sockets and pooled
// connections. Exchanges still running finish with errors; new ones get
// ErrClosed.
func (f *Forwarder) Close() error {
	f.closeMu.Lock()
	if f.closed.Swap(true) {
		f.closeMu.Unlock()
		return nil
	}
	f.closeMu.Unlock()
	f.cancelBG()
	f.probesRun.Wait()
	var errs []error
	for _, u := range f.ups {
		errs = append(errs, u.tr.close())
	}
	if f.udp != nil {
		errs = append(errs, f.udp.close())
	}
	if f.ownHTTP != nil {
		f.ownHTTP.CloseIdleConnections()
	}
	return errors.Join(errs...)
}

// Start sends q to the upstreams in the strategy's order and calls done
// exactly once, from any goroutine, with the validated reply (ID 0,
// question as sent) or an error. When every upstream fails, done gets an
// upstream's own SERVFAIL or REFUSED reply if there was one. No attempt
// runs past deadline. done must not block: it runs on the goroutine that
// reads upstream replies.
func (f *Forwarder) Start(q Query, deadline time.Time, done func(*dns.Msg, error)) {
	order, healthy := f.order()
	f.start(order, healthy, q, deadline, nil, done)
}

func (f *Forwarder) start(order []*upstream, healthy int, q Query, deadline time.Time, lane *udpPoller, done func(*dns.Msg, error)) *exchange {
	if f.closed.Load() {
		done(nil, ErrClosed)
		return nil
	}
	wire, qlen, err := packQuery(q)
	if err != nil {
		done(nil, fmt.Errorf("upstream: %w", err))
		return nil
	}
	ex := &exchange{f: f, wire: wire, qlen: qlen, order: order, width: f.strategy.width(), done: done, poller: lane}
	// parallel_best gives the whole exchange one timeout; failover and
	// round_robin spend up to a timeout per upstream, within the deadline.
	ex.budget = deadline
	if ex.width > 1 {
		ex.budget = minTime(deadline, time.Now().Add(f.timeout))
	}
	ex.begin(healthy)
	return ex
}

// order is the strategy's order for the next query.
func (f *Forwarder) order() ([]*upstream, int) {
	return f.strategy.order(f.twice, f.down.Load() > 0)
}

// Exchange is Start for callers that wait: it forwards m's question (with
// its DO and CD bits) and returns the answer with m's ID and question.
func (f *Forwarder) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	if len(m.Question) != 1 {
		return nil, fmt.Errorf("upstream: query has %d questions, want 1", len(m.Question))
	}
	q := m.Question[0]
	opt := m.IsEdns0()
	order, healthy := f.order()
	reply, err := f.exchangeWithOrder(ctx, order, healthy, Query{Name: q.Name, Type: q.Qtype, Class: q.Qclass,
		DO: opt != nil && opt.Do(), CD: m.CheckingDisabled})
	if err != nil {
		return nil, err
	}
	reply.Id = m.Id
	reply.Question = append(reply.Question[:0], m.Question...)
	if opt == nil { // a client without EDNS gets no OPT record
		reply.Extra = slices.DeleteFunc(reply.Extra, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeOPT })
	}
	return reply, nil
}

// exchangeWith asks exactly these upstreams, in order (probes).
func (f *Forwarder) exchangeWith(ctx context.Context, ups []*upstream, q Query) (*dns.Msg, error) {
	return f.exchangeWithOrder(ctx, ups, len(ups), q)
}

func (f *Forwarder) exchangeWithOrder(ctx context.Context, order []*upstream, healthy int, q Query) (*dns.Msg, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	type outcome struct {
		msg *dns.Msg
		err error
	}
	got := make(chan outcome, 1)
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Duration(len(order)) * f.timeout)
	}
	ex := f.start(order, healthy, q, deadline, nil, func(m *dns.Msg, err error) { got <- outcome{m, err} })
	select {
	case o := <-got:
		if o.err != nil && pastDeadline(ctx) {
			o.err = fmt.Errorf("upstream: %w", errorList{context.DeadlineExceeded, o.err})
		}
		return o.msg, o.err
	case <-ctx.Done():
		if ex != nil {
			ex.abort(fmt.Errorf("upstream: %w", ctx.Err()))
		}
		o := <-got
		// The attempt may have ended on its own deadline just before the
		// abort: the caller's deadline is still why it failed.
		if o.err != nil && !errors.Is(o.err, ctx.Err()) {
			o.err = fmt.Errorf("upstream: %w", errorList{ctx.Err(), o.err})
		}
		return o.msg, o.err
	}
}

// account records one attempt's outcome: metrics, readiness and health.
// A transition to down starts probing the upstream in the background.
func (f *Forwarder) account(a *attempt, r result) {
	u, elapsed := a.up, time.Since(a.started)
	f.obs.UpstreamResult(u.name, r.outcome, elapsed)
	if r.outcome == OutcomeSuccess {
		f.ready.Store(true)
	}
	// A timeout cut short by the exchange's budget says nothing about the upstream.
	hadBudget := a.deadline.Sub(a.started) >= f.timeout*9/10
	sample := elapsed
	if a.resent.Load() {
		sample = 0 // the reply may be to either copy: no round-trip time (Karn)
	}
	changed, up := u.record(effectOf(r, hadBudget), sample)
	if !changed {
		return
	}
	f.obs.UpstreamUp(u.name, up)
	if up {
		f.down.Add(-1)
	} else {
		f.down.Add(1)
	}
	if up {
		f.log.Info("upstream is answering again", "upstream", u.name)
		return
	}
	f.log.Warn("upstream marked down; probing it every few seconds until it answers",
		"upstream", u.name, "consecutive_failures", downAfter, "last_error", r.err)
	f.closeMu.Lock()
	defer f.closeMu.Unlock()
	if !f.closed.Load() {
		f.probesRun.Add(1)
		go f.probeWhileDown(u)
	}
}

// pastDeadline reports a context whose deadline has passed, or is about
// to (within deadlineSlack), even if its own timer has not fired yet: an
// attempt capped at the same instant can report first.
func pastDeadline(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ctx.Err() != nil || ok && !time.Now().Add(deadlineSlack).Before(d)
}

const deadlineSlack = 5 * time.Millisecond

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

type noObserver struct{}

func (noObserver) UpstreamResult(string, string, time.Duration) {}
func (noObserver) UpstreamUp(string, bool)                      {}
func (noObserver) UpstreamResend(string)                        {}

// Query is one question for the upstreams. Nothing else of the client's
// message is forwarded: not its ID, not its EDNS options (an ECS option
// would tell the upstream where the client is).
type Query struct {
	Name   string // fully qualified; sent as written (the resolver lower-cases it)
	Type   uint16
	Class  uint16
	DO, CD bool
}
