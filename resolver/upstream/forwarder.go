package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
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
	strategy      string
	timeout       time.Duration
	probeInterval time.Duration
	ups           []*upstream
	names         []string
	log           *slog.Logger
	obs           Observer
	ownHTTP       *http.Client // built here, so closed here

	rr    atomic.Uint32 // round_robin start position
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
		strategy:      cfg.Strategy,
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
	httpClient := opts.HTTPClient
	for _, s := range cfg.Servers {
		ep, _ := parseEndpoint(s) // Validate accepted it
		var tr transport
		switch ep.scheme {
		case "udp":
			tr = newUDPTransport(ep.addr, newStreamTransport(tcpDialer(ep.addr)))
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
	for _, u := range f.ups {
		f.obs.UpstreamUp(u.name, true) // so dashboards show every upstream from the start
	}
	return f, nil
}

// Names returns the upstreams as written in the config, in config order.
func (f *Forwarder) Names() []string { return slices.Clone(f.names) }

// Ready reports whether any upstream has answered successfully since start.
func (f *Forwarder) Ready() bool { return f.ready.Load() }

// Close stops background probes and closes pooled connections. Exchanges
// still running finish with errors; new ones return ErrClosed.
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
	if f.ownHTTP != nil {
		f.ownHTTP.CloseIdleConnections()
	}
	return errors.Join(errs...)
}

// Exchange forwards q and returns the answer with q's ID and question. q is
// not modified. When every upstream fails, a SERVFAIL or REFUSED answer from
// one of them is returned if there was one, else an error.
func (f *Forwarder) Exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	if f.closed.Load() {
		return nil, ErrClosed
	}
	if len(q.Question) != 1 {
		return nil, fmt.Errorf("upstream: query has %d questions, want 1", len(q.Question))
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	wire, clientEDNS, err := packQuery(q)
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	now := time.Now()
	order, probes := f.plan(now)
	// failover and round_robin may spend a timeout per upstream, capped by ctx;
	// parallel_best gives the whole exchange one timeout.
	var budget time.Time
	width := 1
	if f.strategy == StrategyParallelBest {
		width = 2
		budget = now.Add(f.timeout)
	}
	var reply *dns.Msg
	if len(probes) == 0 && (width == 1 || len(order) == 1) {
		reply, err = f.sequential(ctx, order, budget, wire, q.Question[0])
	} else {
		reply, err = f.race(ctx, order, probes, width, budget, wire, q.Question[0])
	}
	if err != nil {
		return nil, err
	}
	finish(reply, q, clientEDNS)
	return reply, nil
}

// plan returns the upstreams to try in order (healthy ones first, by
// strategy; down ones last) and the down ones due for a re-probe, which ride
// along with real traffic when a healthy upstream exists.
func (f *Forwarder) plan(now time.Time) (order, probes []*upstream) {
	n := len(f.ups)
	if n == 1 {
		return f.ups, nil
	}
	start := 0
	if f.strategy == StrategyRoundRobin {
		start = int((f.rr.Add(1) - 1) % uint32(n))
	}
	order = make([]*upstream, 0, n)
	var down []*upstream
	for i := range n {
		u := f.ups[(start+i)%n]
		isDown, probe := u.probeState(now, f.nextProbeWait())
		switch {
		case !isDown:
			order = append(order, u)
		case probe:
			probes = append(probes, u)
		default:
			down = append(down, u)
		}
	}
	if f.strategy == StrategyParallelBest && len(order) > 2 {
		ranks := make(map[*upstream]rank, len(order))
		for _, u := range order {
			ranks[u] = u.rank()
		}
		slices.SortStableFunc(order, func(a, b *upstream) int { return ranks[a].compare(ranks[b]) })
	}
	if len(order) == 0 { // nothing healthy: the due ones first, then the rest
		return append(probes, down...), nil
	}
	return append(order, down...), probes
}

// nextProbeWait is the interval plus jitter, so probes of several down
// upstreams spread out.
func (f *Forwarder) nextProbeWait() time.Duration {
	return f.probeInterval + rand.N(f.probeInterval+1)
}

type noObserver struct{}

func (noObserver) UpstreamResult(string, string, time.Duration) {}
func (noObserver) UpstreamUp(string, bool)                      {}
