package metrics

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	topSlots           = 60 // time slots in the ring; the window is split evenly
	topQueueLen        = 4096
	defaultTopWindow   = time.Hour
	maxTopWindow       = 7 * 24 * time.Hour
	defaultTopCapacity = 1000
	maxTopCapacity     = 100_000
)

// TopCounter keeps the most-blocked query names and clients over a sliding
// window without putting them in metric labels. Memory is bounded: a ring
// of topSlots time slots, each with two Space-Saving summaries of at most
// capacity entries; a read merges the slots the window covers. Counts are
// upper bounds when more distinct keys than capacity arrive in a slot.
//
// Observe never blocks: events go through a buffered channel drained by
// the goroutine Start runs; when it is full, events are dropped and counted.
type TopCounter struct {
	in       chan topQueued
	dropped  atomic.Uint64
	window   time.Duration
	slotDur  time.Duration
	capacity int
	now      func() time.Time

	mu    sync.Mutex
	slots [topSlots]topSlot

	startOnce sync.Once
	cancel    context.CancelFunc
	done      chan struct{}
}

type topSlot struct {
	epoch   int64 // time / slotDur of the slot's contents; 0 = empty
	names   *spaceSaving[string]
	clients *spaceSaving[netip.Addr]
}

type topEvent struct {
	name      string
	client    netip.Addr
	at        time.Time
	monitored bool
}

// topQueued is a topEvent on its way to the drainer. The name travels as
// bytes in the queue's own memory, so observing never allocates and the
// caller's string may be a borrowed view (the resolver's fast path).
type topQueued struct {
	name      [255]byte
	nameLen   uint8
	client    netip.Addr
	at        time.Time
	monitored bool
	synced    chan struct{} // test hook: closed when the drainer reaches it
}

// TopEntry is one row of a top list.
type TopEntry struct {
	Key       string `json:"key"`
	Count     uint64 `json:"count"`     // blocked plus monitored (would-block) queries
	Monitored uint64 `json:"monitored"` // of Count, matches of monitor-mode lists
}

// NewTopCounter returns a counter covering window (0: 1h; 1m..7d) with
// capacity entries per slot and kind (0: 1000).
func NewTopCounter(window time.Duration, capacity int) (*TopCounter, error) {
	if window == 0 {
		window = defaultTopWindow
	}
	if window < time.Minute || window > maxTopWindow {
		return nil, fmt.Errorf("metrics: top window %v out of range: must be 1m to %v", window, maxTopWindow)
	}
	if capacity == 0 {
		capacity = defaultTopCapacity
	}
	if capacity < 1 || capacity > maxTopCapacity {
		return nil, fmt.Errorf("metrics: top capacity %d out of range: must be 1 to %d", capacity, maxTopCapacity)
	}
	return &TopCounter{
		in:       make(chan topQueued, topQueueLen),
		window:   window,
		slotDur:  window / topSlots,
		capacity: capacity,
		now:      time.Now,
		done:     make(chan struct{}),
	}, nil
}

// Window returns the longest window Top can answer.
func (t *TopCounter) Window() time.Duration { return t.window }

// Dropped returns how many events were lost because the queue was full.
func (t *TopCounter) Dropped() uint64 { return t.dropped.Load() }

// Observe counts a blocked (or, with monitored, would-be blocked) query
// for name and client. It never blocks; a zero at means now.
func (t *TopCounter) Observe(name string, client netip.Addr, monitored bool, at time.Time) {
	select {
	case t.in <- queuedEvent(name, client, at, monitored):
	default:
		t.dropped.Add(1)
	}
}

// Start runs the goroutine that drains observed events until ctx ends or
// Close is called. Calls after the first do nothing.
func (t *TopCounter) Start(ctx context.Context) {
	t.startOnce.Do(func() {
		ctx, t.cancel = context.WithCancel(ctx)
		go t.run(ctx)
	})
}

// Close stops the goroutine started by Start and waits for it.
func (t *TopCounter) Close() {
	started := true
	t.startOnce.Do(func() { started = false })
	if started {
		t.cancel()
		<-t.done
	}
}

func (t *TopCounter) run(ctx context.Context) {
	defer close(t.done)
	pause := time.NewTimer(0)
	defer pause.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-t.in:
			t.handle(ev)
		}
		// Take what queued meanwhile, then rest: under load one wake-up
		// serves a batch instead of costing a thread switch per blocked
		// query. The queue holds far more than arrives in one pause.
		for more := true; more; {
			select {
			case ev := <-t.in:
				t.handle(ev)
			default:
				more = false
			}
		}
		pause.Reset(topBatchPause)
		select {
		case <-ctx.Done():
			return
		case <-pause.C:
		}
	}
}

// topBatchPause is how long the counter rests between batches.
const topBatchPause = 20 * time.Millisecond

func queuedEvent(name string, client netip.Addr, at time.Time, monitored bool) topQueued {
	q := topQueued{client: client, at: at, monitored: monitored}
	q.nameLen = uint8(copy(q.name[:], name))
	return q
}

func (t *TopCounter) handle(q topQueued) {
	if q.synced != nil {
		close(q.synced)
		return
	}
	t.add(topEvent{name: string(q.name[:q.nameLen]), client: q.client, at: q.at, monitored: q.monitored})
}

// sync waits until every event observed before the call has been counted.
func (t *TopCounter) sync() {
	c := make(chan struct{})
	t.in <- topQueued{synced: c}
	<-c
}

func (t *TopCounter) epoch(at time.Time) int64 { return at.UnixNano() / int64(t.slotDur) }

func (t *TopCounter) add(ev topEvent) {
	if ev.at.IsZero() {
		ev.at = t.now()
	}
	e := t.epoch(ev.at)
	if e <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := &t.slots[e%topSlots]
	if s.epoch > e {
		return // older than the ring reaches
	}
	if s.epoch != e {
		*s = topSlot{epoch: e, names: newSpaceSaving[string](t.capacity), clients: newSpaceSaving[netip.Addr](t.capacity)}
	}
	s.names.add(strings.ToLower(ev.name), ev.monitored)
	if ev.client.IsValid() {
		s.clients.add(ev.client.Unmap(), ev.monitored)
	}
}

// TopResult is the answer to one top query.
type TopResult struct {
	By      string     `json:"by"`
	Window  string     `json:"window"`
	Since   time.Time  `json:"since"`
	Entries []TopEntry `json:"entries"`
	Dropped uint64     `json:"dropped"` // events lost since start (queue full)
}

// Top returns up to limit most-blocked names (by "name") or clients (by
// "client") over the last window (0: the whole retained window).
func (t *TopCounter) Top(by string, window time.Duration, limit int) (TopResult, error) {
	if by != "name" && by != "client" {
		return TopResult{}, fmt.Errorf("by %q: must be name or client", by)
	}
	if window == 0 {
		window = t.window
	}
	if window < 0 || window > t.window {
		return TopResult{}, fmt.Errorf("window %v: must be more than 0 and at most %v", window, t.window)
	}
	if limit < 1 {
		return TopResult{}, fmt.Errorf("limit %d: must be at least 1", limit)
	}
	n := int64((window + t.slotDur - 1) / t.slotDur)
	last := t.epoch(t.now())
	first := last - n + 1
	res := TopResult{By: by, Window: window.String(), Since: time.Unix(0, first*int64(t.slotDur)).UTC(), Dropped: t.Dropped()}

	t.mu.Lock()
	var names []*spaceSaving[string]
	var clients []*spaceSaving[netip.Addr]
	for i := range t.slots {
		if s := &t.slots[i]; s.epoch >= first && s.epoch <= last {
			names, clients = append(names, s.names), append(clients, s.clients)
		}
	}
	if by == "name" {
		res.Entries = merge(names, func(k string) string { return k })
	} else {
		res.Entries = merge(clients, netip.Addr.String)
	}
	t.mu.Unlock()

	slices.SortFunc(res.Entries, func(a, b TopEntry) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	if len(res.Entries) > limit {
		res.Entries = res.Entries[:limit]
	}
	return res, nil
}

// merge sums the slots' counters per key. Called with t.mu held.
func merge[K comparable](sketches []*spaceSaving[K], str func(K) string) []TopEntry {
	sum := make(map[K]*TopEntry)
	for _, sk := range sketches {
		for _, e := range sk.heap {
			te, ok := sum[e.key]
			if !ok {
				te = &TopEntry{Key: str(e.key)}
				sum[e.key] = te
			}
			te.Count += e.count
			te.Monitored += e.monitored
		}
	}
	out := make([]TopEntry, 0, len(sum))
	for _, te := range sum {
		out = append(out, *te)
	}
	return out
}

// entries counts the counters held across all slots (for memory-bound tests).
func (t *TopCounter) entries() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, s := range t.slots {
		if s.names != nil {
			n += s.names.len() + s.clients.len()
		}
	}
	return n
}
