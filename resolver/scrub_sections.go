package resolver

import (
	"strings"

	"github.com/miekg/dns"
)

// keepAuthority filters the authority section for a chain ending at final:
// the first SOA at or above it; for positive answers the first NS set at or
// above it; NSEC and NSEC3 records of the zone that signed them, when final
// is in that zone; and the RRSIGs over what is kept.
func keepAuthority(class uint16, final string, positive bool, ns []dns.RR) []dns.RR {
	keep := make([]bool, len(ns))
	soaOwner, nsOwner := "", ""
	for i, rr := range ns {
		h := rr.Header()
		if h.Class != class {
			continue
		}
		switch h.Rrtype {
		case dns.TypeSOA:
			if soaOwner == "" && dns.IsSubDomain(h.Name, final) {
				soaOwner, keep[i] = h.Name, true
			}
		case dns.TypeNS:
			if !positive || !dns.IsSubDomain(h.Name, final) {
				continue
			}
			if nsOwner == "" {
				nsOwner = h.Name
			}
			keep[i] = strings.EqualFold(h.Name, nsOwner) // one NS set
		case dns.TypeNSEC, dns.TypeNSEC3:
			keep[i] = denialInZone(rr, ns, final)
		}
	}
	for i, rr := range ns {
		if s, ok := rr.(*dns.RRSIG); ok && coversKept(ns, keep, s) {
			keep[i] = true
		}
	}
	return filterKept(ns, keep)
}

// denialInZone accepts an NSEC or NSEC3 record when an RRSIG over it names
// a signer zone that holds both the record and final (and, for NSEC, the
// next name): a proof about another zone says nothing about this answer.
func denialInZone(rr dns.RR, ns []dns.RR, final string) bool {
	h := rr.Header()
	for _, s := range ns {
		sig, ok := s.(*dns.RRSIG)
		if !ok || sig.TypeCovered != h.Rrtype || !strings.EqualFold(sig.Hdr.Name, h.Name) {
			continue
		}
		zone := sig.SignerName
		if !dns.IsSubDomain(zone, h.Name) || !dns.IsSubDomain(zone, final) {
			continue
		}
		if n, isNSEC := rr.(*dns.NSEC); isNSEC && !dns.IsSubDomain(zone, n.NextDomain) {
			continue // Unbound's "overreaching NSEC"
		}
		return true
	}
	return false
}

// coversKept reports whether sig covers a kept record of its owner.
func coversKept(rrs []dns.RR, keep []bool, sig *dns.RRSIG) bool {
	for i, rr := range rrs {
		h := rr.Header()
		if keep[i] && h.Rrtype == sig.TypeCovered && strings.EqualFold(h.Name, sig.Hdr.Name) {
			return true
		}
	}
	return false
}

// additionalTargets lists the names kept records point at, whose addresses
// may ride along in the additional section (Unbound: has_additional, plus
// the SVCB/HTTPS target of RFC 9460 §4.3).
func additionalTargets(answer, ns []dns.RR) []string {
	var out []string
	add := func(rr dns.RR, fromAuthority bool) {
		var name string
		switch r := rr.(type) {
		case *dns.NS:
			name = r.Ns
		case *dns.MX:
			name = r.Mx
		case *dns.SRV:
			name = r.Target
		case *dns.KX:
			name = r.Exchanger
		case *dns.SVCB:
			name = r.Target
		case *dns.HTTPS:
			name = r.Target
		case *dns.MB:
			name = r.Mb
		case *dns.MD:
			name = r.Md
		case *dns.MF:
			name = r.Mf
		}
		if _, isNS := rr.(*dns.NS); fromAuthority && !isNS {
			return // only NS in the authority section brings glue
		}
		if name != "" && name != "." {
			out = append(out, name)
		}
	}
	for _, rr := range answer {
		add(rr, false)
	}
	for _, rr := range ns {
		add(rr, true)
	}
	return out
}

// keepAdditional keeps the OPT record, A and AAAA records of the targets,
// and the RRSIGs over those.
func keepAdditional(class uint16, targets []string, extra []dns.RR) []dns.RR {
	keep := make([]bool, len(extra))
	for i, rr := range extra {
		h := rr.Header()
		switch h.Rrtype {
		case dns.TypeOPT:
			keep[i] = true
		case dns.TypeA, dns.TypeAAAA:
			keep[i] = h.Class == class && containsFold(targets, h.Name)
		}
	}
	for i, rr := range extra {
		if s, ok := rr.(*dns.RRSIG); ok && coversKept(extra, keep, s) {
			keep[i] = true
		}
	}
	return filterKept(extra, keep)
}

// filterKept compacts rrs to the kept records, in their order.
func filterKept(rrs []dns.RR, keep []bool) []dns.RR {
	kept := rrs[:0]
	for i, rr := range rrs {
		if keep[i] {
			kept = append(kept, rr)
		}
	}
	clear(rrs[len(kept):])
	return kept
}
