package blocklist

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Options are the engine's dependencies and knobs. Zero values get defaults.
type Options struct {
	Logger       *slog.Logger // default: slog.Default()
	HTTPClient   *http.Client // for URL sources; default: 30 s timeout
	BaseDir      string       // relative file sources are resolved against it
	StateDir     string       // where URL sources' last good bodies are kept; "" = not kept
	PollInterval time.Duration
	// OnListUpdate is called after each fetch round or rebuild, once per list
	// it touched, outside the engine's lock (it may call Lists or Decide).
	OnListUpdate func(ListStatus)
}

// DefaultPollInterval is how often file sources are checked for changes and
// URL sources for being due.
const DefaultPollInterval = 5 * time.Second

// fetchParallel bounds concurrent source fetches in one round.
const fetchParallel = 8

// Engine holds the policy: sources with their last good content, and an
// immutable snapshot (index + groups) that queries read without locking.
type Engine struct {
	opts   Options
	log    *slog.Logger
	snap   atomic.Pointer[snapshot]
	status atomic.Pointer[[]ListStatus]

	mu      sync.Mutex // serialises fetching and building; guards the fields below and every *source
	cfg     Config
	sources map[string]*source // by spec

	xfr   atomic.Pointer[xfrTable] // axfr:// zones, for transfers and NOTIFY
	wake  chan string              // specs of zones to refresh now (NOTIFY)
	watch policyWatch              // tells the RPZ primary a new snapshot is in
}

// NewEngine validates cfg, loads every source once and builds the first
// snapshot. A source that fails to load is reported in Lists and, for URL
// sources, replaced by its copy in StateDir when there is one. NewEngine fails
// only when cfg is invalid, the index cannot be built, or some list ends up
// with no content at all because every one of its sources failed: starting
// without a configured list would silently let its names through, so the
// operator must hear about it (fix the source, or drop the list).
func NewEngine(ctx context.Context, cfg Config, opts Options) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	e := &Engine{opts: opts, log: opts.Logger, wake: make(chan string, wakeQueue)}
	xt, err := newXFRTable(cfg, opts.BaseDir)
	if err != nil {
		return nil, err
	}
	e.xfr.Store(xt)
	srcs := e.sourcesFor(cfg, nil)
	e.fetch(ctx, slices.Collect(maps.Values(srcs)))
	if err := listsWithoutContent(cfg, srcs); err != nil {
		return nil, err
	}
	snap, err := e.build(cfg, srcs)
	if err != nil {
		return nil, err
	}
	e.cfg, e.sources = cfg, srcs
	e.scheduleAll(cfg, srcs)
	e.storeSnapshot(snap)
	e.notify(e.publish(nil))
	releaseMemory()
	return e, nil
}

// Reload fetches every source now and rebuilds the snapshot. Sources that
// fail keep their last good content; the returned error lists them (the
// rebuild happened anyway) or says why the rebuild failed (old snapshot kept).
func (e *Engine) Reload(ctx context.Context) error {
	e.mu.Lock()
	_, fetchErr := e.fetch(ctx, slices.Collect(maps.Values(e.sources)))
	snap, err := e.build(e.cfg, e.sources)
	if err == nil {
		e.storeSnapshot(snap)
	}
	e.scheduleAll(e.cfg, e.sources)
	changed := e.publish(nil)
	e.mu.Unlock()
	e.notify(changed)
	releaseMemory()
	if err != nil {
		return fmt.Errorf("blocklist reload: %w; previous index kept", err)
	}
	return fetchErr
}

// Apply switches to a new configuration (e.g. on SIGHUP). Sources that are
// in both configurations keep their state and last good content; new ones are
// loaded now. If cfg is invalid, a new list has no content, or the build
// fails, the old configuration and snapshot stay and the error says why.
func (e *Engine) Apply(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	xt, err := newXFRTable(cfg, e.opts.BaseDir)
	if err != nil {
		return err
	}
	e.mu.Lock()
	oldXFR := e.xfr.Swap(xt)
	srcs := e.sourcesFor(cfg, e.sources)
	var added []*source
	for spec, s := range srcs {
		if e.sources[spec] == nil {
			added = append(added, s)
		}
	}
	e.fetch(ctx, added)
	err = listsWithoutContent(cfg, srcs)
	var snap *snapshot
	if err == nil {
		snap, err = e.build(cfg, srcs)
	}
	if err != nil {
		e.xfr.Store(oldXFR)
		e.mu.Unlock()
		e.log.Error("blocklist: new configuration not applied; keeping the old one", "error", err)
		return err
	}
	e.cfg, e.sources = cfg, srcs
	e.scheduleAll(cfg, srcs)
	e.storeSnapshot(snap)
	changed := e.publish(nil)
	e.mu.Unlock()
	e.notify(changed)
	releaseMemory()
	e.log.Info("blocklist: configuration applied", "lists", len(cfg.Lists), "groups", len(cfg.Groups))
	return nil
}

// Run polls file sources for changes and refetches URL sources when their
// list's refresh is due, rebuilding when content changed, until ctx is done.
func (e *Engine) Run(ctx context.Context) {
	t := time.NewTicker(e.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.poll(ctx, "")
		case spec := <-e.wake:
			e.takeWake(spec)
			e.poll(ctx, spec)
		}
	}
}

// poll does one round of Run. A NOTIFY names a zone source in now: it is
// refreshed at once, whatever its timer says.
func (e *Engine) poll(ctx context.Context, now string) {
	e.mu.Lock()
	var due []*source
	if s := e.sources[now]; s != nil {
		s.nextFetch = time.Time{}
	}
	for _, s := range e.sources {
		switch s.kind {
		case sourceFile:
			if fileChanged(s) {
				due = append(due, s)
			}
		case sourceURL, sourceXFR:
			if !time.Now().Before(s.nextFetch) {
				due = append(due, s)
			}
		}
	}
	if len(due) == 0 {
		e.mu.Unlock()
		return
	}
	changed, _ := e.fetch(ctx, due)
	if changed {
		if snap, err := e.build(e.cfg, e.sources); err != nil {
			e.log.Error("blocklist: rebuild failed; previous index kept", "error", err)
		} else {
			e.storeSnapshot(snap)
		}
	}
	e.scheduleAll(e.cfg, e.sources)
	var touched []*source
	if !changed {
		touched = due
	}
	notes := e.publish(touched)
	e.mu.Unlock()
	e.notify(notes)
	if changed {
		releaseMemory()
	}
}

// releaseMemory hands the memory of a replaced snapshot and of a build back
// to the OS: a 1M-rule rebuild leaves tens of MB the runtime would otherwise
// keep for minutes, and RSS is what operators size machines by. Call it
// after a build, off the query path and outside Engine.mu.
func releaseMemory() { debug.FreeOSMemory() }

// Lists reports every list's sources and health, in list (bit) order.
func (e *Engine) Lists() []ListStatus {
	if p := e.status.Load(); p != nil {
		return slices.Clone(*p)
	}
	return nil
}

// Groups returns the configured group names in config order.
func (e *Engine) Groups() []string { return groupOrder(e.snap.Load().cfg.Groups) }

// ListNames returns the configured list names, sorted (their bit order).
func (e *Engine) ListNames() []string {
	s := e.snap.Load()
	names := make([]string, len(s.lists))
	for i, l := range s.lists {
		names[i] = l.name
	}
	return names
}
