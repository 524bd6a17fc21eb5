package blocklist

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// maxSourceBytes bounds what one source may deliver (a 1M-rule list is ~30 MB).
const maxSourceBytes = 256 << 20

type sourceKind uint8

const (
	sourceFile sourceKind = iota
	sourceBuiltin
	sourceURL
	sourceXFR // axfr://PRIMARY:PORT/ZONE, see source_xfr.go
	sourceBadScheme
)

func sourceKindOf(src string) sourceKind {
	lower := strings.ToLower(src)
	switch {
	case strings.HasPrefix(src, builtinPrefix):
		return sourceBuiltin
	case strings.HasPrefix(lower, "http://"), strings.HasPrefix(lower, "https://"):
		return sourceURL
	case strings.HasPrefix(lower, xfrScheme):
		return sourceXFR
	case strings.Contains(src, "://"):
		return sourceBadScheme
	default:
		return sourceFile
	}
}

func checkURL(src string) error {
	u, err := url.Parse(src)
	if err != nil {
		return fmt.Errorf("%q is not a valid URL: %v", src, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q has scheme %q; only http and https are supported", src, u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", src)
	}
	return nil
}

// source is one place rules come from, with its last good content. Content is
// kept as the bytes the source delivered, compressed (see packedContent), not
// as parsed rules: a []Rule costs ~60 bytes per rule, the packed text a few,
// and the index is rebuilt by parsing it again. All fields are guarded by
// Engine.mu.
type source struct {
	spec    string // as written in the config; key of the source set
	kind    sourceKind
	path    string // file: resolved path; url: the URL
	display string // for status and logs: URL with any password redacted

	content     packedContent // last good content
	haveContent bool          // false until the first success
	rules       int           // rules Parse found in content, before the guard
	format      string
	parseRej    []Rejected
	parseRejN   int
	guardRej    []Rejected // filled by the last build
	guardRejN   int
	indexed     int // rules that passed the guard into the last build

	lastFetch, lastSuccess time.Time
	outcome                string // what the latest attempt did
	lastErr                string // why the latest attempt failed; "" if it did not

	stamp   fileStamp // file: size and mtime when last read
	statErr string    // file: last stat error, so a missing file is logged once

	etag, lastModified string        // url: validators for conditional GET
	refresh            time.Duration // url: refetch interval
	nextFetch          time.Time     // url: when Run fetches it next
	failures           int           // url: consecutive failures, for retry backoff

	xfr *xfrState // axfr: serial, timers, transfer counts (source_xfr.go)
}

func newSource(spec, baseDir string) *source {
	s := &source{spec: spec, kind: sourceKindOf(spec), display: spec}
	switch s.kind {
	case sourceFile:
		s.path = resolvePath(baseDir, spec)
	case sourceURL:
		s.path = spec
		if u, err := url.Parse(spec); err == nil {
			s.display = u.Redacted()
		}
	}
	return s
}

// fetched is what one attempt to read a source produced.
type fetched struct {
	body        []byte
	notModified bool
	etag        string
	modified    string
	stamp       fileStamp
	zone        *zoneResult    // axfr: what the transfer was
	packed      *packedContent // set instead of body by sources that pack as they read
}

// update reads the source once and, when the new content is acceptable, makes
// it the last good content. It reports whether the content changed. On
// failure the previous content stays.
func (e *Engine) update(ctx context.Context, s *source) (changed bool, err error) {
	// A URL source without content (first fetch since start) begins from its
	// saved copy, so an unreachable, empty or shrunken first answer is judged
	// against that copy instead of replacing it.
	var savedAt time.Time
	fromDisk := false
	if (s.kind == sourceURL || s.kind == sourceXFR) && !s.haveContent {
		savedAt, fromDisk = e.loadDiskCopy(s)
	}
	now := time.Now()
	s.lastFetch = now
	var f fetched
	switch s.kind {
	case sourceBuiltin:
		b, ok := Builtin(strings.TrimPrefix(s.spec, builtinPrefix))
		if !ok {
			err = fmt.Errorf("unknown built-in list")
		}
		f.body = b
	case sourceFile:
		f, err = readFile(s.path)
		s.stamp = f.stamp
	case sourceURL:
		f, err = e.fetchURL(ctx, s)
	case sourceXFR:
		f, err = e.fetchXFR(ctx, s)
	default:
		err = fmt.Errorf("unsupported source")
	}
	if err == nil {
		changed, err = e.accept(s, f)
	}
	changed = changed || fromDisk
	if s.kind == sourceXFR {
		changed, err = e.xfrDone(s, f, changed, err)
	}
	if err != nil {
		s.failures++
		s.lastErr = err.Error()
		switch {
		case fromDisk:
			s.outcome = "failed; using the copy saved " + savedAt.UTC().Format(time.RFC3339)
		case s.haveContent:
			s.outcome = "failed; kept last good content"
		default:
			s.outcome = "failed; no content"
		}
		e.log.Warn("blocklist source failed", "source", s.display, "error", err, "outcome", s.outcome, "rules", s.rules)
		return changed, err
	}
	s.failures = 0
	s.lastErr = ""
	s.lastSuccess = now
	return changed, nil
}

// parseFetched packs the fetched text (unless the source packed it as it
// read) and parses it to count and check it.
func parseFetched(f fetched) (packedContent, Parsed, ruleCounter, error) {
	var count ruleCounter
	if f.packed != nil {
		p, err := parseInto(f.packed.reader(), &count)
		return *f.packed, p, count, err
	}
	// Compress the copy kept as last good content on another core while
	// the parse checks the new content: both take a while for big lists.
	packed := make(chan packedContent, 1)
	go func() { packed <- packContent(f.body) }()
	p, err := parseInto(bytes.NewReader(f.body), &count)
	return <-packed, p, count, err
}

// accept applies the shrink and emptiness rules to freshly read content. It
// parses the content only to count and check it: the build parses the kept
// copy again, streaming it into the index, so no []Rule is ever held.
func (e *Engine) accept(s *source, f fetched) (bool, error) {
	if f.notModified {
		s.outcome = "not modified"
		return false, nil
	}
	sum := s.content.sum
	if f.packed != nil {
		sum = f.packed.sum
	} else if s.haveContent {
		sum = sha256.Sum256(f.body)
	}
	if s.haveContent && sum == s.content.sum {
		s.outcome = "unchanged"
		s.etag, s.lastModified = f.etag, f.modified
		return false, nil
	}
	content, p, count, err := parseFetched(f)
	if err != nil {
		return false, fmt.Errorf("parse: %w", err)
	}
	n := int(count)
	if s.haveContent && s.rules > 0 {
		if n == 0 {
			return false, fmt.Errorf("new content has no usable rules (%d lines, %d rejected); refusing to replace %d rules", p.Lines, p.RejectedCount, s.rules)
		}
		if n*2 < s.rules {
			return false, fmt.Errorf("new content has %d rules, less than half of the %d last loaded; refusing a sudden shrink", n, s.rules)
		}
	}
	s.content, s.haveContent = content, true
	s.rules, s.format = n, p.Format
	s.parseRej, s.parseRejN = p.Rejected, p.RejectedCount
	s.etag, s.lastModified = f.etag, f.modified
	s.outcome = "loaded"
	if n == 0 {
		// First content with nothing usable: nothing to keep instead, but say so.
		s.outcome = fmt.Sprintf("loaded, but no usable rules (%d lines, %d rejected)", p.Lines, p.RejectedCount)
	}
	if f.packed != nil {
		e.saveContent(s, content)
	} else if s.kind == sourceURL {
		e.saveDiskCopy(s, f.body)
	}
	e.log.Info("blocklist source loaded", "source", s.display, "format", p.Format, "rules", n, "rejected", p.RejectedCount)
	return true, nil
}
