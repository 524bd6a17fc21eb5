package blocklist

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// sourcesFor makes the source set for cfg, reusing sources from old by spec.
func (e *Engine) sourcesFor(cfg Config, old map[string]*source) map[string]*source {
	srcs := make(map[string]*source)
	add := func(spec string) {
		if srcs[spec] != nil {
			return
		}
		if s := old[spec]; s != nil {
			srcs[spec] = s
			return
		}
		srcs[spec] = newSource(spec, e.opts.BaseDir)
	}
	for _, l := range cfg.Lists {
		for _, spec := range l.Sources {
			add(spec)
		}
	}
	for _, spec := range cfg.Guard.NeverBlock {
		add(spec)
	}
	return srcs
}

// fetch updates srcs concurrently. It returns whether any content changed
// and the failures joined into one error.
func (e *Engine) fetch(ctx context.Context, srcs []*source) (bool, error) {
	type result struct {
		s       *source
		changed bool
		err     error
	}
	results := make([]result, len(srcs))
	sem := make(chan struct{}, fetchParallel)
	var wg sync.WaitGroup
	for i, s := range srcs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			changed, err := e.update(ctx, s)
			results[i] = result{s, changed, err}
		})
	}
	wg.Wait()
	anyChanged := false
	var errs []error
	for _, r := range results {
		anyChanged = anyChanged || r.changed
		if r.err != nil {
			errs = append(errs, fmt.Errorf("source %s: %w (previous content kept)", r.s.display, r.err))
		}
	}
	return anyChanged, errors.Join(errs...)
}

// scheduleAll sets each URL source's refresh interval (the shortest among the
// lists using it) and, after a fetch, when it is next due: a failing source is
// retried sooner, backing off from one minute up to its refresh interval.
func (e *Engine) scheduleAll(cfg Config, srcs map[string]*source) {
	for _, s := range srcs {
		if s.kind != sourceURL {
			continue
		}
		s.refresh = 0
		for _, l := range cfg.Lists {
			if slices.Contains(l.Sources, s.spec) {
				r := cmp.Or(l.Refresh, DefaultRefresh)
				if s.refresh == 0 || r < s.refresh {
					s.refresh = r
				}
			}
		}
		if s.refresh == 0 {
			s.refresh = DefaultRefresh // guard-only source
		}
		wait := s.refresh
		if s.failures > 0 {
			wait = min(s.refresh, time.Minute<<min(s.failures-1, 16))
		}
		s.nextFetch = s.lastFetch.Add(wait)
	}
}

// listsWithoutContent names lists (and guard sources) whose sources all
// failed with nothing to fall back on.
func listsWithoutContent(cfg Config, srcs map[string]*source) error {
	var errs []error
	for _, name := range sortedListNames(cfg.Lists) {
		var why []error
		for _, spec := range cfg.Lists[name].Sources {
			s := srcs[spec]
			if s.haveContent {
				why = nil
				break
			}
			why = append(why, fmt.Errorf("%s: %s", s.display, s.lastErr))
		}
		if why != nil {
			errs = append(errs, fmt.Errorf("list %q has no content, every source failed: %w", name, errors.Join(why...)))
		}
	}
	for i, spec := range cfg.Guard.NeverBlock {
		if s := srcs[spec]; !s.haveContent {
			errs = append(errs, fmt.Errorf("guard.never_block[%d] %s has no content: %s", i, s.display, s.lastErr))
		}
	}
	return errors.Join(errs...)
}
