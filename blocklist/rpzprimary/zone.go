package rpzprimary

import (
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/blocklist"
)

// Journal bounds: IXFR can start from any of the last maxJournalVersions
// serials, while their changes add up to at most maxJournalRecords;
// secondaries further behind get the whole zone.
const (
	maxJournalVersions = 32
	maxJournalRecords  = 1 << 20
)

// SOA values: secondaries hear of changes by NOTIFY, so refresh is only
// the fallback; expire is long because a lapsed RPZ stops a ban.
const (
	recordTTL  = 60
	soaRefresh = 300
	soaRetry   = 60
	soaExpire  = 30 * 24 * 3600
)

// version is one immutable state of a zone, with the changes that led to
// it from older serials.
type version struct {
	serial  uint32
	names   []blocklist.PolicyName // sorted by name
	records int                    // in the zone, SOA and NS included
	journal []*delta               // oldest first; the last one ends at serial
	built   time.Time
}

// delta is the change from one serial to the next, as records.
type delta struct {
	from, to uint32
	del, add []dns.RR
}

func (v *version) journalRecords() int {
	n := 0
	for _, d := range v.journal {
		n += len(d.del) + len(d.add)
	}
	return n
}

// zone is one served RPZ zone.
type zone struct {
	name  string // canonical FQDN
	group string
}

func (z *zone) soa(serial uint32) *dns.SOA {
	return &dns.SOA{
		Hdr: dns.RR_Header{Name: z.name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: recordTTL},
		Ns:  "localhost.", Mbox: "hostmaster." + z.name,
		Serial: serial, Refresh: soaRefresh, Retry: soaRetry, Expire: soaExpire, Minttl: recordTTL,
	}
}

// ns is the apex NS record a zone must have; RPZ consumers never use it.
func (z *zone) ns() *dns.NS {
	return &dns.NS{Hdr: dns.RR_Header{Name: z.name, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: recordTTL}, Ns: "localhost."}
}

// target is the RPZ action for an effect.
func target(e blocklist.Effect) string {
	switch e {
	case blocklist.EffectNoData:
		return "*."
	case blocklist.EffectAllow:
		return "rpz-passthru."
	case blocklist.EffectDrop:
		return "rpz-drop."
	case blocklist.EffectTCPOnly:
		return "rpz-tcp-only."
	default: // block with the default answer: NXDOMAIN, the RPZ norm
		return "."
	}
}

func (z *zone) cname(owner string, e blocklist.Effect) dns.RR {
	return &dns.CNAME{Hdr: dns.RR_Header{Name: owner + "." + z.name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: recordTTL}, Target: target(e)}
}

// appendRecords appends the records of one policy name: the name itself
// and "*.name" for the names below it.
func (z *zone) appendRecords(rrs []dns.RR, pn blocklist.PolicyName) []dns.RR {
	if pn.Self != blocklist.EffectNone {
		rrs = append(rrs, z.cname(pn.Name, pn.Self))
	}
	if pn.Below != blocklist.EffectNone {
		rrs = append(rrs, z.cname("*."+pn.Name, pn.Below))
	}
	return rrs
}

func countRecords(names []blocklist.PolicyName) int {
	n := 2 // SOA, NS
	for _, pn := range names {
		if pn.Self != blocklist.EffectNone {
			n++
		}
		if pn.Below != blocklist.EffectNone {
			n++
		}
	}
	return n
}

// diff returns the records to delete and add to go from old to cur; both
// are sorted by name.
func (z *zone) diff(old, cur []blocklist.PolicyName) (del, add []dns.RR) {
	i, j := 0, 0
	none := blocklist.PolicyName{}
	for i < len(old) || j < len(cur) {
		var o, c blocklist.PolicyName
		switch {
		case j == len(cur) || i < len(old) && old[i].Name < cur[j].Name:
			o, c = old[i], none
			c.Name = o.Name
			i++
		case i == len(old) || cur[j].Name < old[i].Name:
			o, c = none, cur[j]
			o.Name = c.Name
			j++
		default:
			o, c = old[i], cur[j]
			i, j = i+1, j+1
		}
		if o.Self != c.Self {
			del, add = z.change(del, add, o.Name, o.Self, c.Self)
		}
		if o.Below != c.Below {
			del, add = z.change(del, add, "*."+o.Name, o.Below, c.Below)
		}
	}
	return del, add
}

func (z *zone) change(del, add []dns.RR, owner string, from, to blocklist.Effect) ([]dns.RR, []dns.RR) {
	if from != blocklist.EffectNone {
		del = append(del, z.cname(owner, from))
	}
	if to != blocklist.EffectNone {
		add = append(add, z.cname(owner, to))
	}
	return del, add
}

// next returns the version after v with names, or v itself when the zone
// does not change. Serials follow the clock where they can (as BIND's
// serial-update-method unixtime), so a restarted primary is ahead of the
// serial its secondaries hold.
func (z *zone) next(v *version, names []blocklist.PolicyName, now time.Time) *version {
	if v == nil {
		return &version{serial: uint32(now.Unix()), names: names, records: countRecords(names), built: now}
	}
	del, add := z.diff(v.names, names)
	if len(del)+len(add) == 0 {
		return v
	}
	serial := v.serial + 1
	if clock := uint32(now.Unix()); int32(clock-serial) > 0 {
		serial = clock
	}
	nv := &version{serial: serial, names: names, records: countRecords(names), built: now}
	d := &delta{from: v.serial, to: serial, del: del, add: add}
	if len(del)+len(add) <= maxJournalRecords {
		nv.journal = append(append(nv.journal, v.journal...), d)
	}
	for len(nv.journal) > maxJournalVersions || len(nv.journal) > 0 && nv.journalRecords() > maxJournalRecords {
		nv.journal = nv.journal[1:]
	}
	return nv
}

// since returns the deltas from serial to v, or nil when serial is not in
// the journal.
func (v *version) since(serial uint32) []*delta {
	for i, d := range v.journal {
		if d.from == serial {
			return v.journal[i:]
		}
	}
	return nil
}
