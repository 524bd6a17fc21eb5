package resolver

import (
	"strings"

	"github.com/miekg/dns"
)

// Reply scrubbing: an upstream answer keeps only the records that belong
// to the question, before it reaches a client or the cache. The rules are
// Unbound's (iterator/iter_scrub.c, scrub_normalize) as they apply to a
// forwarder, whose zone is the root:
//
//   - answer: the chain from the query name, CNAME and DNAME links
//     followed (a DNAME's CNAME is checked against the one it synthesizes,
//     and synthesized when missing or wrong), then the records of the
//     asked type at the chain's end; RRSIGs only over kept records.
//   - authority: one SOA, and for positive answers one NS set, at or above
//     the chain's final name; NSEC/NSEC3 inside the zone that signed them;
//     never CNAME, DNAME, A or AAAA. Unbound drops NS sets from negative
//     answers too: they are where spoofed fragments carry poison.
//   - additional: A and AAAA only for names that kept NS, MX, SRV and
//     similar records point at; the OPT record untouched.
//
// Unbound, being a full resolver, then cuts a chain after its first link
// and looks the rest up itself; a forwarder keeps the chain the upstream
// resolved, which is what clients expect of it.

// maxChainLinks bounds the CNAME/DNAME chain (Unbound: iter-scrub-cname 11).
const maxChainLinks = 12

// scrubbed counts what scrub removed from each section, for a counter.
type scrubbed struct {
	Answer, Ns, Extra int
	Synthesized       int // CNAMEs made from a DNAME
}

// Total is the number of records removed.
func (s scrubbed) Total() int { return s.Answer + s.Ns + s.Extra }

// scrub removes from m, the upstream reply to q, every record that does not
// belong to q. It edits m's sections in place and leaves its header alone.
func scrub(q dns.Question, m *dns.Msg) scrubbed {
	var out scrubbed
	var ch chain
	m.Answer, ch = keepChain(q, m.Answer, &out)
	ns := keepAuthority(q.Qclass, ch.final, len(ch.data) > 0 && m.Rcode == dns.RcodeSuccess, m.Ns)
	out.Ns = len(m.Ns) - len(ns)
	m.Ns = ns
	extra := keepAdditional(q.Qclass, additionalTargets(m.Answer, m.Ns), m.Extra)
	out.Extra = len(m.Extra) - len(extra)
	m.Extra = extra
	return out
}

// chain is the kept answer: the names it passes through and its data.
type chain struct {
	final string   // the last name of the chain, where the data is
	data  []dns.RR // kept records of the asked type (or every type, for ANY)
}

// picker collects kept answer records in chain order: each link, its
// RRSIGs, the next link, and the data last, whatever order they came in.
type picker struct {
	rrs  []dns.RR
	kept []bool
	out  []dns.RR
}

func (p *picker) take(i int) {
	if !p.kept[i] {
		p.kept[i] = true
		p.out = append(p.out, p.rrs[i])
	}
}

// keepChain filters the answer section down to the chain from q.Name.
func keepChain(q dns.Question, answer []dns.RR, out *scrubbed) ([]dns.RR, chain) {
	p := &picker{rrs: answer, kept: make([]bool, len(answer)), out: make([]dns.RR, 0, len(answer))}
	sname := q.Name
	seen := []string{sname}
	for range maxChainLinks + 1 {
		next, ok := "", false
		if i := findDNAME(answer, sname, q.Qclass); i >= 0 {
			next, ok = p.followDNAME(i, sname, q.Qclass, out)
			if !ok {
				break // the synthesized name is too long: YXDOMAIN, the chain ends
			}
		} else if q.Qtype != dns.TypeCNAME {
			next, ok = p.followCNAME(sname, q)
		}
		if !ok {
			p.keepData(sname, q)
			break
		}
		if containsFold(seen, next) {
			break // a loop: what is kept so far is all there is
		}
		sname = next
		seen = append(seen, sname)
	}
	ch := chain{final: sname}
	for _, rr := range p.out {
		if h := rr.Header(); strings.EqualFold(h.Name, sname) && (h.Rrtype == q.Qtype || q.Qtype == dns.TypeANY) {
			ch.data = append(ch.data, rr)
		}
	}
	out.Answer = len(answer) - (len(p.out) - out.Synthesized)
	return p.out, ch
}

// findDNAME returns the index of the first DNAME whose owner is a proper
// ancestor of sname, or -1.
func findDNAME(answer []dns.RR, sname string, class uint16) int {
	for i, rr := range answer {
		d, ok := rr.(*dns.DNAME)
		if ok && d.Hdr.Class == class && !strings.EqualFold(d.Hdr.Name, sname) && dns.IsSubDomain(d.Hdr.Name, sname) {
			return i
		}
	}
	return -1
}

// followDNAME keeps the DNAME at i, its RRSIGs and the CNAME at sname it
// implies, dropping any CNAME at sname that disagrees; when the upstream
// sent none that agrees, one is synthesized (RFC 6672 §3.1: with the
// DNAME's TTL). ok is false when the new name would be too long.
func (p *picker) followDNAME(i int, sname string, class uint16, out *scrubbed) (next string, ok bool) {
	d := p.rrs[i].(*dns.DNAME)
	p.take(i)
	p.keepSigs(d.Hdr.Name, dns.TypeDNAME)
	labels := dns.SplitDomainName(sname)
	next = strings.Join(labels[:len(labels)-dns.CountLabel(d.Hdr.Name)], ".") + "."
	if d.Target != "." {
		next += d.Target
	}
	if _, valid := dns.IsDomainName(next); !valid { // over 255 octets
		return "", false
	}
	for j, rr := range p.rrs {
		if c, isCNAME := rr.(*dns.CNAME); isCNAME && c.Hdr.Class == class && strings.EqualFold(c.Hdr.Name, sname) &&
			strings.EqualFold(c.Target, next) {
			p.take(j)
			return next, true
		}
	}
	p.out = append(p.out, &dns.CNAME{Hdr: dns.RR_Header{Name: sname, Rrtype: dns.TypeCNAME, Class: class, Ttl: d.Hdr.Ttl}, Target: next})
	out.Synthesized++
	return next, true
}

// followCNAME keeps the first CNAME at sname (and its RRSIGs) and returns
// its target. For ANY, the other records at sname stay too, as Unbound
// keeps them.
func (p *picker) followCNAME(sname string, q dns.Question) (string, bool) {
	for i, rr := range p.rrs {
		c, ok := rr.(*dns.CNAME)
		if !ok || c.Hdr.Class != q.Qclass || !strings.EqualFold(c.Hdr.Name, sname) {
			continue
		}
		p.take(i)
		p.keepSigs(sname, dns.TypeCNAME)
		if q.Qtype == dns.TypeANY {
			p.keepData(sname, q)
		}
		return c.Target, true
	}
	return "", false
}

// keepData keeps the records of the asked type at name, and their RRSIGs.
func (p *picker) keepData(name string, q dns.Question) {
	for i, rr := range p.rrs {
		h := rr.Header()
		if h.Class == q.Qclass && (h.Rrtype == q.Qtype || q.Qtype == dns.TypeANY) && strings.EqualFold(h.Name, name) {
			p.take(i)
			if h.Rrtype != dns.TypeRRSIG {
				p.keepSigs(name, h.Rrtype)
			}
		}
	}
}

// keepSigs keeps the RRSIGs at name that cover rrtype.
func (p *picker) keepSigs(name string, rrtype uint16) {
	for i, rr := range p.rrs {
		if s, ok := rr.(*dns.RRSIG); ok && s.TypeCovered == rrtype && strings.EqualFold(s.Hdr.Name, name) {
			p.take(i)
		}
	}
}

func containsFold(names []string, name string) bool {
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

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
