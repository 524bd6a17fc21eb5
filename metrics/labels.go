package metrics

import (
	"strconv"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/miekg/dns"
)

const (
	// maxLabelValues caps the distinct values of a config-derived label
	// (group, list, upstream). Names come from config, so the cap only
	// guards against a wiring bug turning a label into an unbounded set.
	maxLabelValues = 256
	otherLabel     = "other"
	noneLabel      = "none"
)

// qtypeLabels is the fixed allowlist for the qtype label; anything else is "other".
var qtypeLabels = [...]string{"A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "PTR", "SRV",
	"HTTPS", "SVCB", "ANY", "DS", "DNSKEY", "CAA", "NAPTR", otherLabel}

const numQtypeLabels = len(qtypeLabels)

// qtypeIndex maps a query type to its slot in qtypeLabels without a map lookup.
func qtypeIndex(t uint16) int {
	switch t {
	case dns.TypeA:
		return 0
	case dns.TypeAAAA:
		return 1
	case dns.TypeCNAME:
		return 2
	case dns.TypeMX:
		return 3
	case dns.TypeTXT:
		return 4
	case dns.TypeNS:
		return 5
	case dns.TypeSOA:
		return 6
	case dns.TypePTR:
		return 7
	case dns.TypeSRV:
		return 8
	case dns.TypeHTTPS:
		return 9
	case dns.TypeSVCB:
		return 10
	case dns.TypeANY:
		return 11
	case dns.TypeDS:
		return 12
	case dns.TypeDNSKEY:
		return 13
	case dns.TypeCAA:
		return 14
	case dns.TypeNAPTR:
		return 15
	}
	return numQtypeLabels - 1
}

// qtypeString names a query type for the audit log (any type, not only the allowlist).
func qtypeString(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return "TYPE" + strconv.FormatUint(uint64(t), 10)
}

// Rcodes 0..maxRcode get their own label when miekg/dns names them; the
// rest share the last slot, "other".
const maxRcode = 23

const numRcodeSlots = maxRcode + 2

func rcodeLabel(i int) string {
	if s, ok := dns.RcodeToString[i]; ok && i >= 0 && i <= maxRcode {
		return s
	}
	return otherLabel
}

func rcodeIndex(rcode int) int {
	if rcode < 0 || rcode > maxRcode {
		return numRcodeSlots - 1
	}
	return rcode
}

// seriesMap hands out the pre-resolved series for a config-derived name.
// Reads are one atomic load and a map lookup; a new name is added under a
// mutex by copying the map (names are few and arrive once). Past limit
// distinct names, unknown names share the series built for "other".
type seriesMap[V any] struct {
	m        atomic.Pointer[map[string]V]
	overflow atomic.Pointer[V]
	mu       sync.Mutex
	limit    int
	build    func(name string) V // called under mu
}

func newSeriesMap[V any](limit int, build func(name string) V) *seriesMap[V] {
	s := &seriesMap[V]{limit: limit, build: build}
	empty := map[string]V{}
	s.m.Store(&empty)
	return s
}

func (s *seriesMap[V]) get(name string) V {
	m := *s.m.Load()
	if v, ok := m[name]; ok {
		return v
	}
	if len(m) >= s.limit {
		if o := s.overflow.Load(); o != nil {
			return *o
		}
	}
	return s.add(name)
}

func (s *seriesMap[V]) add(name string) V {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.m.Load()
	if v, ok := old[name]; ok {
		return v
	}
	if len(old) >= s.limit {
		if o := s.overflow.Load(); o != nil {
			return *o
		}
		v := s.build(otherLabel)
		s.overflow.Store(&v)
		return v
	}
	next := make(map[string]V, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	v := s.build(name)
	next[name] = v
	s.m.Store(&next)
	return v
}

// validLabel maps a name to a usable label value: "" → "none", and invalid
// UTF-8 (which client_golang rejects with a panic) → "other".
func validLabel(name string) string {
	if name == "" {
		return noneLabel
	}
	if !utf8.ValidString(name) {
		return otherLabel
	}
	return name
}

// labelSet bounds the distinct values of one label across all its uses
// (a list name appears under every group). Off the hot path only.
type labelSet struct {
	mu    sync.Mutex
	seen  map[string]struct{}
	limit int
}

func newLabelSet(limit int) *labelSet {
	return &labelSet{seen: map[string]struct{}{}, limit: limit}
}

// label returns name itself while fewer than limit names were seen, else "other".
func (l *labelSet) label(name string) string {
	name = validLabel(name)
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seen[name]; ok {
		return name
	}
	if len(l.seen) >= l.limit {
		return otherLabel
	}
	l.seen[name] = struct{}{}
	return name
}
