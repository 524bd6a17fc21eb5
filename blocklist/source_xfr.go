package blocklist

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// xfrConf is what the configuration says about one axfr:// source.
type xfrConf struct {
	spec         string
	src          xfrSource
	key          *TSIGKey    // nil: unsigned
	dropOnExpire bool        // every list using it says on_expire: drop
	queued       atomic.Bool // a NOTIFY refresh is waiting in Engine.wake
}

// xfrTable is the configured zones, for transfers and for NOTIFY (read
// without Engine.mu, so it is replaced whole, never changed).
type xfrTable struct {
	bySpec map[string]*xfrConf
	byZone map[string][]*xfrConf // canonical zone name
}

// newXFRTable builds the table for a validated cfg.
func newXFRTable(cfg Config, baseDir string) (*xfrTable, error) {
	keys, err := LoadTSIGKeys(cfg, baseDir)
	if err != nil {
		return nil, err
	}
	t := &xfrTable{bySpec: map[string]*xfrConf{}, byZone: map[string][]*xfrConf{}}
	for _, name := range sortedListNames(cfg.Lists) {
		l := cfg.Lists[name]
		for _, spec := range l.Sources {
			if sourceKindOf(spec) != sourceXFR {
				continue
			}
			c := t.bySpec[spec]
			if c == nil {
				src, _ := parseXFRSource(spec) // validated
				c = &xfrConf{spec: spec, src: src, dropOnExpire: true}
				t.bySpec[spec] = c
				t.byZone[src.zone] = append(t.byZone[src.zone], c)
			}
			if k, ok := keys[l.TSIG]; ok {
				c.key = &k
			}
			c.dropOnExpire = c.dropOnExpire && l.OnExpire == OnExpireDrop
		}
	}
	return t, nil
}

// xfrState is a zone source's transfer state. Guarded by Engine.mu.
type xfrState struct {
	soa            *dns.SOA // of the content in use; nil: none yet
	records        int
	lastContact    time.Time // the last refresh that succeeded (copy current or transferred)
	lastTransfer   string    // "axfr" or "ixfr"
	lastTransferAt time.Time
	expired        bool
	transfers      map[string]*TransferCounts // by "axfr", "ixfr"
}

// TransferCounts are a zone's transfer attempts since start.
type TransferCounts struct {
	OK     uint64 `json:"ok"`
	Failed uint64 `json:"failed"`
}

func (st *xfrState) count(kind string, err error) {
	if st.transfers == nil {
		st.transfers = map[string]*TransferCounts{"axfr": {}, "ixfr": {}}
	}
	if err != nil {
		st.transfers[kind].Failed++
	} else {
		st.transfers[kind].OK++
	}
}

func (e *Engine) xfrConfOf(s *source) (*xfrConf, error) {
	if t := e.xfr.Load(); t != nil && t.bySpec[s.spec] != nil {
		return t.bySpec[s.spec], nil
	}
	return nil, fmt.Errorf("zone source is not configured")
}

// fetchXFR refreshes a zone: SOA check, then IXFR from the serial in use
// (AXFR when there is none, or when IXFR fails or is refused).
func (e *Engine) fetchXFR(ctx context.Context, s *source) (fetched, error) {
	conf, err := e.xfrConfOf(s)
	if err != nil {
		return fetched{}, err
	}
	if s.xfr == nil {
		s.xfr = &xfrState{}
	}
	st := s.xfr
	if st.soa == nil && s.haveContent && s.content.size > 0 {
		st.restore(s) // a saved copy was just loaded
	}
	peer := xfrPeer{addr: conf.src.primary.String(), zone: conf.src.zone, key: conf.key}
	soa, err := peer.querySOA(ctx)
	if err != nil {
		return fetched{}, err
	}
	if st.soa != nil && s.haveContent && !serialNewer(soa.Serial, st.soa.Serial) {
		if soa.Serial != st.soa.Serial {
			e.log.Warn("blocklist: primary's zone serial is behind ours (RFC 1982); not transferring",
				"source", s.display, "primary_serial", soa.Serial, "our_serial", st.soa.Serial)
		}
		return fetched{notModified: true, zone: &zoneResult{soa: st.soa}}, nil
	}
	var res *zoneResult
	if st.soa != nil && s.haveContent {
		res, err = peer.ixfr(st.soa, s.content)
		if err == nil && res.kind == "axfr" {
			st.count("axfr", nil) // answered with the whole zone
		} else {
			st.count("ixfr", err)
		}
		if err != nil {
			e.log.Info("blocklist: IXFR failed; falling back to AXFR", "source", s.display, "error", err)
		}
	}
	if res == nil {
		res, err = peer.axfr(s.content.size + 4096)
		st.count("axfr", err)
		if err != nil {
			return fetched{}, fmt.Errorf("AXFR: %w", err)
		}
	}
	if res.text == nil {
		return fetched{notModified: true, zone: &zoneResult{soa: st.soa}}, nil
	}
	content := res.text.content()
	return fetched{packed: &content, zone: res}, nil
}

// restore takes the serial from a saved copy's SOA line, and its file
// time as the last contact, so expiry counts across restarts.
func (st *xfrState) restore(s *source) {
	soa, err := keptSOA(s.content.reader())
	if err != nil {
		return // transfer the whole zone
	}
	st.soa = soa
	st.records = s.content.lines - 1
	st.lastContact = s.lastSuccess
}

// xfrDone records the outcome of a zone refresh after accept, schedules
// the next one from the SOA timers, and handles expiry. It returns
// whether the content changed, and the error to report.
func (e *Engine) xfrDone(s *source, f fetched, changed bool, err error) (bool, error) {
	st, now := s.xfr, time.Now()
	conf, _ := e.xfrConfOf(s)
	if st == nil || conf == nil {
		return changed, err
	}
	if err == nil {
		if z := f.zone; z != nil && z.text != nil {
			// A new serial always changes the text (its SOA line), so
			// accept saved the copy with it.
			st.soa, st.records = z.soa, z.text.records
			st.lastTransfer, st.lastTransferAt = z.kind, now
		} else if path := e.diskCopyPath(s); path != "" {
			_ = os.Chtimes(path, now, now) // the file time is the last contact, for expiry after a restart
		}
		st.expired, st.lastContact = false, now
		s.nextFetch = now.Add(soaTimer(st.soa, func(x *dns.SOA) uint32 { return x.Refresh }, time.Hour))
		return changed, nil
	}
	s.nextFetch = now.Add(soaTimer(st.soa, func(x *dns.SOA) uint32 { return x.Retry }, time.Minute))
	if st.soa == nil || st.lastContact.IsZero() {
		return changed, err
	}
	expire := time.Duration(st.soa.Expire) * time.Second
	if since := now.Sub(st.lastContact); since > expire {
		st.expired = true
		err = fmt.Errorf("%w; ZONE EXPIRED: no contact with the primary for %s (SOA expire %s)", err, since.Round(time.Second), expire)
		if conf.dropOnExpire && s.content.size > 0 {
			s.content, s.rules, st.soa, st.records = packedContent{}, 0, nil, 0
			changed = true
			err = fmt.Errorf("%w; on_expire drop: its rules are no longer enforced", err)
		} else if s.content.size > 0 {
			err = fmt.Errorf("%w; on_expire keep: still enforcing serial %d", err, st.soa.Serial)
		}
		e.log.Error("blocklist: RPZ zone expired", "source", s.display, "error", err)
	}
	return changed, err
}

// soaTimer reads a refresh or retry timer, bounded so that a zone saying
// 0 cannot make a busy loop and one saying a year still gets checked.
func soaTimer(soa *dns.SOA, field func(*dns.SOA) uint32, def time.Duration) time.Duration {
	if soa == nil {
		return def
	}
	d := time.Duration(field(soa)) * time.Second
	return min(max(d, time.Second), 24*time.Hour)
}
