package blocklist

import (
	"errors"
	"fmt"
	"io"

	"github.com/miekg/dns"
)

// maxIXFRChanges bounds the records one incremental transfer may change;
// beyond it the diff would cost more memory than a full transfer.
const maxIXFRChanges = 4 << 20

// ixfr asks for the changes since have (RFC 1995) and applies them to old,
// the text of the zone at have's serial. The primary may instead answer
// with the whole zone (kind "axfr"), or with only its SOA when nothing
// changed (text nil). An error means: fall back to AXFR.
func (p xfrPeer) ixfr(have *dns.SOA, old packedContent) (*zoneResult, error) {
	q := new(dns.Msg)
	q.SetIxfr(p.zone, have.Serial, have.Ns, have.Mbox)
	s, err := p.openTransfer(q)
	if err != nil {
		return nil, err
	}
	defer s.close()
	first, err := s.next()
	if err != nil {
		return nil, err
	}
	soa, ok := first.(*dns.SOA)
	if !ok {
		return nil, fmt.Errorf("IXFR answer did not start with the SOA")
	}
	if !serialNewer(soa.Serial, have.Serial) {
		return &zoneResult{soa: soa, kind: "ixfr"}, nil
	}
	if len(s.buf) == 0 {
		// A first message of only the newer SOA means "no incremental
		// copy; use AXFR" (RFC 1995 section 4). Waiting for more would
		// wait for the primary's idle timeout. A primary that really
		// sends one record per message just costs an AXFR.
		return nil, fmt.Errorf("primary answered IXFR with only its SOA (serial %d); it has no incremental copy", soa.Serial)
	}
	second, err := s.next()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("primary answered IXFR with only its SOA (serial %d); it has no incremental copy", soa.Serial)
	}
	if err != nil {
		return nil, err
	}
	if from, ok := second.(*dns.SOA); !ok || from.Serial != have.Serial {
		return p.fullInIXFR(s, soa, second, old.size)
	}
	d, err := readDiffs(s, soa)
	if err != nil {
		return nil, err
	}
	text, err := applyDiff(old.reader(), old.size, soa, d)
	if err != nil {
		return nil, err
	}
	return &zoneResult{text: text, soa: soa, kind: "ixfr"}, nil
}

// fullInIXFR reads an IXFR answer that is the whole zone (RFC 1995 allows
// it: AXFR format inside an IXFR response).
func (p xfrPeer) fullInIXFR(s *rrStream, soa *dns.SOA, second dns.RR, sizeHint int) (*zoneResult, error) {
	text := newZoneText(sizeHint)
	if err := text.add(soa); err != nil {
		return nil, err
	}
	if end, ok := second.(*dns.SOA); ok && end.Serial == soa.Serial {
		return &zoneResult{text: text, soa: soa, kind: "axfr"}, nil // a zone of only its SOA
	}
	if err := text.add(second); err != nil {
		return nil, err
	}
	if err := readFullZone(s, soa, text); err != nil {
		return nil, err
	}
	return &zoneResult{text: text, soa: soa, kind: "axfr"}, nil
}

// readDiffs reads the difference sequences that follow the first old SOA:
// (deletions, SOA of the step's new version, additions) repeated, until the
// additions end with the current SOA again.
func readDiffs(s *rrStream, cur *dns.SOA) (*zoneDiff, error) {
	d := newZoneDiff()
	adding := false
	for {
		rr, err := s.next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("IXFR ended before the closing SOA")
		}
		if err != nil {
			return nil, err
		}
		if soa, ok := rr.(*dns.SOA); ok {
			if adding && soa.Serial == cur.Serial {
				return d, nil
			}
			adding = !adding // a step's new SOA starts additions; an old one, deletions
			continue
		}
		if !inZone(rr.Header().Name, cur.Hdr.Name) {
			return nil, fmt.Errorf("IXFR record %s is outside the zone %s", rr.Header().Name, cur.Hdr.Name)
		}
		if adding {
			d.add(rr)
		} else {
			d.del(rr)
		}
		if d.changes() > maxIXFRChanges {
			return nil, fmt.Errorf("IXFR changes more than %d records; a full transfer is cheaper", maxIXFRChanges)
		}
	}
}
