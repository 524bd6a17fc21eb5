// Package resolver answers DNS queries: listeners for every transport, the
// one query pipeline they all hand queries to (pipeline.go), the answer
// cache and blocked-answer synthesis. Upstream forwarding lives in the
// upstream subpackage; policy is asked through the Policy interface.
package resolver

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/metrics"
	"github.com/dnsward/dnsward/resolver/upstream"
)

// Action is what policy decided for a name.
type Action uint8

const (
	ActionAllow   Action = iota
	ActionBlock          // answer with a synthesized blocked answer
	ActionMonitor        // resolve, but report "would block"
	ActionRefuse         // REFUSED: an identity policy does not accept (an unknown device token)
)

// Decision is policy's answer for one client and name. Answer, when set,
// overrides the configured blocked-answer mode (RPZ rules carry their own).
type Decision struct {
	Action  Action
	Group   string
	List    string
	Rule    string
	Answer  string
	TokenID string // the device token that chose the group, as its short hash; "" when the address did
	// Local is the rule's own records when Answer is AnswerLocal (a CNAME
	// to a walled garden, or A/AAAA/TXT...), owned by the rule's trigger
	// name. Shared by every query: never modified.
	Local []dns.RR
}

// Client is who asks: the address, and on encrypted transports the
// device token it presented in the DoH path or the TLS server name.
type Client struct {
	Addr  netip.Addr
	Token string // "" when none
}

// Policy decides per client and name. Implementations must be safe for
// concurrent use and fast: it is asked on every query and for every CNAME
// target of an answer.
//
// qname (and the token) are borrowed: it may point into the caller's scratch buffer, which
// is overwritten by the next query, so Decide must not keep it (nor let
// the returned Decision refer to it) after it returns. The strings of the
// returned Decision must stay valid and unchanged after the call (they
// point into policy's immutable snapshot).
type Policy interface {
	Decide(c Client, qname string) Decision
	// GroupOf is the client's group alone ("" for none), for rate limits
	// that differ by group; asked before the name is looked at.
	GroupOf(c Client) string
	// DecideAddrs judges the A/AAAA addresses of an answer (response-IP
	// policy): Block or Monitor with Rule naming the network, else Allow.
	// Fast when no list has networks: it is asked for every answer.
	DecideAddrs(c Client, addrs []netip.Addr) Decision
}

// Forwarder sends queries upstream (upstream.Forwarder implements it).
type Forwarder interface {
	// Start asks the upstreams and calls done exactly once, from any
	// goroutine, with the validated reply or an error.
	Start(q upstream.Query, deadline time.Time, done func(*dns.Msg, error))
	// StartOn is Start with UDP attempts waiting on lane, which the
	// caller's loop polls (nil: the forwarder's own poller).
	StartOn(lane *upstream.Lane, q upstream.Query, deadline time.Time, done func(*dns.Msg, error))
	// NewLane makes a lane for one loop; it fails where lanes are not
	// supported.
	NewLane() (*upstream.Lane, error)
	Ready() bool
}

// Options carries a Resolver's dependencies.
type Options struct {
	Config   Config
	Upstream Forwarder
	Policy   Policy            // nil: nothing is blocked
	Metrics  *metrics.Recorder // nil: nothing is recorded
	Logger   *slog.Logger
	Now      func() time.Time // for tests; time.Now by default
	Timeout  time.Duration    // whole-query budget for upstream work; default 5s
	// UDPReaders is how many read loops serve each UDP listen address's
	// socket: a leader, and helpers that read only when it has a backlog
	// (see udpHelpers); default GOMAXPROCS.
	UDPReaders int
	// Notify answers a NOTIFY message from client (RPZ zones by zone
	// transfer); nil: NOTIFY gets NOTIMP. It must not keep msg.
	Notify func(msg []byte, client netip.Addr) []byte
	// MaxPending bounds queries waiting on upstreams, over every
	// transport; past it, new ones get SERVFAIL at once. Default 10000.
	MaxPending int
}

// settings is the part of the configuration that a reload may change
// while queries run; it is swapped whole.
type settings struct {
	access   []netip.Prefix
	blocking blockedAnswers
	limiter  *RateLimiter // nil: no rate limit
	limits   RateLimitConfig
}

// Resolver is the query pipeline plus its listeners.
type Resolver struct {
	cfg        Config
	upstream   Forwarder
	policy     Policy
	onNotify   func([]byte, netip.Addr) []byte
	rec        *metrics.Recorder
	log        *slog.Logger
	now        func() time.Time
	timeout    time.Duration
	stale      time.Duration
	udpReaders int // read loops per UDP socket (udpLoops)
	cache      *answerCache
	flights    *flights
	live       atomic.Pointer[settings]
	scratches  sync.Pool // for answers built off a listener's goroutine
	waiters    sync.Pool // clients waiting on a flight (flight.go)
	inflight   sync.WaitGroup
	listeners  listeners
	ddr        DDREndpoints // what _dns.resolver.arpa answers; set at Start

	probeMu     sync.Mutex
	cancelProbe context.CancelFunc
}

// New builds a resolver; call Start to open its listeners.
func New(opts Options) (*Resolver, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	if opts.Upstream == nil {
		return nil, errors.New("resolver: no upstream forwarder")
	}
	r := &Resolver{
		cfg:        opts.Config,
		upstream:   opts.Upstream,
		policy:     opts.Policy,
		onNotify:   opts.Notify,
		rec:        opts.Metrics,
		log:        opts.Logger,
		now:        opts.Now,
		timeout:    opts.Timeout,
		stale:      opts.Config.Cache.ServeStale,
		udpReaders: opts.UDPReaders,
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.timeout <= 0 {
		r.timeout = 5 * time.Second
	}
	if r.udpReaders <= 0 {
		r.udpReaders = runtime.GOMAXPROCS(0)
	}
	r.udpReaders = udpLoops(r.udpReaders) // 1 where helpers cannot drain a socket
	if opts.MaxPending <= 0 {
		opts.MaxPending = 10000
	}
	r.flights = newFlights(opts.MaxPending)
	r.scratches.New = func() any { return newScratch() }
	r.waiters.New = func() any { return new(waiter) }
	var onEvict func(int)
	if r.rec != nil {
		onEvict = r.rec.CacheEvictions
	}
	r.cache = newAnswerCache(opts.Config.Cache, onEvict)
	if r.rec != nil && r.cache != nil {
		r.rec.SetCacheEntriesFunc(r.cache.len)
	}
	if err := r.Apply(opts.Config); err != nil {
		return nil, err
	}
	return r, nil
}

// Apply switches access control and blocked-answer settings at once, for
// a config reload. Listener and cache changes need a restart.
func (r *Resolver) Apply(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	access, _ := parsePrefixes(cfg.Access.Allow, "access.allow") // validated above
	next := &settings{access: access, blocking: newBlockedAnswers(cfg.Blocking), limits: cfg.RateLimit}
	if old := r.live.Load(); old != nil && reflect.DeepEqual(old.limits, cfg.RateLimit) {
		next.limiter = old.limiter // unchanged limits keep their buckets across a reload
	} else {
		next.limiter = NewRateLimiter(cfg.RateLimit, r.now())
	}
	r.live.Store(next)
	return nil
}

// Ready reports whether the listeners are up and an upstream has answered.
func (r *Resolver) Ready() error {
	switch {
	case !r.listeners.started.Load():
		return errors.New("listeners not started")
	case !r.upstream.Ready():
		return errors.New("no upstream has answered yet")
	}
	return nil
}
