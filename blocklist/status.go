package blocklist

import (
	"fmt"
	"slices"
	"time"
)

// ListStatus is one list's health, for GET /v1/lists and metrics.
type ListStatus struct {
	Name    string         `json:"name"`
	Sources []SourceStatus `json:"sources"`
	// Rules is how many of the list's rules are in the index (after the guard).
	Rules int `json:"rules"`
	// Rejected counts lines the parser refused plus rules the guard dropped.
	Rejected int `json:"rejected"`
	// LastReload is when the index now serving the list was built.
	LastReload time.Time `json:"last_reload,omitzero"`
	// OK is false when any source's latest fetch failed (its last good content is used).
	OK      bool   `json:"ok"`
	Outcome string `json:"outcome"` // one line for humans
}

// SourceStatus is one source of a list.
type SourceStatus struct {
	Source      string    `json:"source"` // as configured, URL passwords redacted
	Format      string    `json:"format,omitempty"`
	LastFetch   time.Time `json:"last_fetch,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	Outcome     string    `json:"outcome"`         // what the latest fetch did
	Error       string    `json:"error,omitempty"` // why the latest fetch failed
	Bytes       int       `json:"bytes"`           // size of the content in use
	Rules       int       `json:"rules"`           // rules parsed from the content in use
	Indexed     int       `json:"indexed"`         // of those, rules that passed the guard
	Rejected    int       `json:"rejected"`        // parser-refused lines plus guard-dropped rules
	// RejectedLines are the first few of them, parser ones first.
	RejectedLines []RejectedLine `json:"rejected_lines,omitempty"`
	// Zone is the transfer state of an axfr:// source.
	Zone *ZoneStatus `json:"zone,omitempty"`
}

// RejectedLine is one refused line of a source.
type RejectedLine struct {
	Line   int    `json:"line"`
	Text   string `json:"text"`
	Reason string `json:"reason"`
}

// publish recomputes every list's status and stores it for Lists. It returns
// the statuses of the lists to notify: those using one of touched, or all
// lists when touched is nil. Engine.mu is held.
func (e *Engine) publish(touched []*source) []ListStatus {
	built := e.snap.Load().built
	names := sortedListNames(e.cfg.Lists)
	all := make([]ListStatus, 0, len(names))
	var notes []ListStatus
	for _, name := range names {
		ls := ListStatus{Name: name, LastReload: built, OK: true}
		failing, notify := 0, touched == nil
		for _, spec := range e.cfg.Lists[name].Sources {
			s := e.sources[spec]
			ss := s.status()
			ls.Sources = append(ls.Sources, ss)
			ls.Rules += ss.Indexed
			ls.Rejected += ss.Rejected
			if ss.Error != "" {
				failing++
			}
			notify = notify || slices.Contains(touched, s)
		}
		ls.OK = failing == 0
		switch {
		case failing > 0:
			ls.Outcome = fmt.Sprintf("%d of %d sources failing; serving their last good content (%d rules)", failing, len(ls.Sources), ls.Rules)
		case ls.Rules == 0:
			ls.Outcome = "loaded, but no usable rules"
		default:
			ls.Outcome = fmt.Sprintf("ok, %d rules", ls.Rules)
		}
		all = append(all, ls)
		if notify {
			notes = append(notes, ls)
		}
	}
	e.status.Store(&all)
	return notes
}

func (e *Engine) notify(statuses []ListStatus) {
	if e.opts.OnListUpdate == nil {
		return
	}
	for _, ls := range statuses {
		e.opts.OnListUpdate(ls)
	}
}

func (s *source) status() SourceStatus {
	ss := SourceStatus{
		Source: s.display, Format: s.format,
		LastFetch: s.lastFetch, LastSuccess: s.lastSuccess,
		Outcome: s.outcome, Error: s.lastErr,
		Bytes: s.content.size, Rules: s.rules, Indexed: s.indexed,
		Rejected: s.parseRejN + s.guardRejN,
		Zone:     s.zoneStatus(),
	}
	for _, r := range slices.Concat(s.parseRej, s.guardRej) {
		if len(ss.RejectedLines) == maxShownRejected*2 {
			break
		}
		ss.RejectedLines = append(ss.RejectedLines, RejectedLine{Line: r.Line, Text: r.Text, Reason: r.Reason})
	}
	return ss
}
