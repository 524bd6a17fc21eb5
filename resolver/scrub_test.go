package resolver

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/resolver/upstream"
)

// scrubCase is an upstream reply written as zone-file lines, and what must
// survive scrubbing in each section.
type scrubCase struct {
	name           string
	qname          string
	qtype          uint16
	rcode          int
	an, ns, ar     []string
	wantAn, wantNs []string
	wantAr         []string
	synthesized    int
}

// packet builds the reply and sends it through Pack and Unpack, so scrub
// sees what the wire delivers.
func (c scrubCase) packet(t testing.TB) (dns.Question, *dns.Msg) {
	t.Helper()
	q := new(dns.Msg).SetQuestion(c.qname, c.qtype)
	m := new(dns.Msg).SetRcode(q, c.rcode)
	m.RecursionAvailable = true
	parse := func(lines []string) []dns.RR {
		var out []dns.RR
		for _, l := range lines {
			rr, err := dns.NewRR(l)
			if err != nil {
				t.Fatalf("%s: bad record %q: %v", c.name, l, err)
			}
			out = append(out, rr)
		}
		return out
	}
	m.Answer, m.Ns, m.Extra = parse(c.an), parse(c.ns), parse(c.ar)
	m.SetEdns0(1232, true)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeOther, ExtraText: "upstream note"})
	wire, err := m.Pack()
	if err != nil {
		t.Fatalf("%s: pack: %v", c.name, err)
	}
	out := new(dns.Msg)
	if err := out.Unpack(wire); err != nil {
		t.Fatalf("%s: unpack: %v", c.name, err)
	}
	return q.Question[0], out
}

// texts renders records in canonical presentation form, for comparing.
func texts(t testing.TB, rrs []dns.RR) []string {
	t.Helper()
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	return out
}

func canon(t testing.TB, lines []string) []string {
	t.Helper()
	var out []string
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("bad want record %q: %v", l, err)
		}
		out = append(out, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	return out
}

func TestScrub(t *testing.T) {
	for _, c := range scrubCases {
		t.Run(c.name, func(t *testing.T) {
			q, m := c.packet(t)
			inAn, inNs, inAr := len(m.Answer), len(m.Ns), len(m.Extra)
			got := scrub(q, m)
			check := func(section string, got []dns.RR, want []string) {
				g, w := texts(t, got), canon(t, want)
				if !slices.Equal(g, w) {
					t.Errorf("%s:\n got  %s\n want %s", section, strings.Join(g, "\n      "), strings.Join(w, "\n      "))
				}
			}
			check("answer", m.Answer, c.wantAn)
			check("authority", m.Ns, c.wantNs)
			check("additional", m.Extra, c.wantAr)
			if got.Synthesized != c.synthesized {
				t.Errorf("synthesized %d CNAMEs, want %d", got.Synthesized, c.synthesized)
			}
			if got.Answer != inAn-len(m.Answer)+got.Synthesized || got.Ns != inNs-len(m.Ns) || got.Extra != inAr-len(m.Extra) {
				t.Errorf("counts %+v do not match the sections (%d→%d, %d→%d, %d→%d)", got, inAn, len(m.Answer), inNs, len(m.Ns), inAr, len(m.Extra))
			}
			if opt := m.IsEdns0(); opt == nil || !opt.Do() || len(opt.Option) != 1 {
				t.Errorf("OPT record changed: %v", opt)
			}
			if _, err := m.Pack(); err != nil {
				t.Errorf("scrubbed reply does not pack: %v", err)
			}
			if again := scrub(q, m); again.Total() != 0 || again.Synthesized != 0 {
				t.Errorf("a second scrub removed %+v: scrubbing must be idempotent", again)
			}
		})
	}
}

var scrubCases = []scrubCase{
	{
		name: "issue 11: out-of-chain answer, foreign NS and its glue", qname: "poison.acme.test.", qtype: dns.TypeA,
		an: []string{"poison.acme.test. 300 IN A 192.0.2.1", "pay.example. 300 IN A 6.6.6.6"},
		ns: []string{"example. 300 IN NS ns.evil.test."},
		ar: []string{"ns.evil.test. 300 IN A 6.6.6.7", "ns.evil.test. 300 IN AAAA 2001:db8:666::7"},

		wantAn: []string{"poison.acme.test. 300 IN A 192.0.2.1"},
	},
	{
		name: "CNAME chain kept, an injected record dropped", qname: "www.a.test.", qtype: dns.TypeA,
		an: []string{
			"www.a.test. 300 IN CNAME edge.cdn.test.", "bank.test. 300 IN A 6.6.6.6",
			"edge.cdn.test. 60 IN CNAME e1.cdn2.test.", "e1.cdn2.test. 20 IN A 192.0.2.10", "e1.cdn2.test. 20 IN A 192.0.2.11",
		},
		wantAn: []string{"www.a.test. 300 IN CNAME edge.cdn.test.", "edge.cdn.test. 60 IN CNAME e1.cdn2.test.",
			"e1.cdn2.test. 20 IN A 192.0.2.10", "e1.cdn2.test. 20 IN A 192.0.2.11"},
	},
	{
		name: "chain out of order comes out in order", qname: "www.a.test.", qtype: dns.TypeA,
		an:     []string{"b.test. 300 IN A 192.0.2.2", "www.a.test. 300 IN CNAME b.test."},
		wantAn: []string{"www.a.test. 300 IN CNAME b.test.", "b.test. 300 IN A 192.0.2.2"},
	},
	{
		name: "CNAME loop ends", qname: "a.test.", qtype: dns.TypeA,
		an:     []string{"a.test. 300 IN CNAME b.test.", "b.test. 300 IN CNAME a.test.", "c.test. 300 IN A 192.0.2.3"},
		wantAn: []string{"a.test. 300 IN CNAME b.test.", "b.test. 300 IN CNAME a.test."},
	},
	{
		name: "second CNAME at a name dropped", qname: "a.test.", qtype: dns.TypeA,
		an:     []string{"a.test. 300 IN CNAME b.test.", "a.test. 300 IN CNAME evil.test.", "b.test. 300 IN A 192.0.2.4", "evil.test. 300 IN A 6.6.6.6"},
		wantAn: []string{"a.test. 300 IN CNAME b.test.", "b.test. 300 IN A 192.0.2.4"},
	},
	{
		name: "DNAME with its CNAME", qname: "www.old.test.", qtype: dns.TypeA,
		an: []string{"old.test. 300 IN DNAME new.test.", "www.old.test. 300 IN CNAME www.new.test.", "www.new.test. 300 IN A 192.0.2.5"},
		wantAn: []string{"old.test. 300 IN DNAME new.test.", "www.old.test. 300 IN CNAME www.new.test.",
			"www.new.test. 300 IN A 192.0.2.5"},
	},
	{
		name: "DNAME without CNAME: synthesized with the DNAME's TTL", qname: "a.b.old.test.", qtype: dns.TypeA,
		an:          []string{"old.test. 120 IN DNAME new.test.", "a.b.new.test. 300 IN A 192.0.2.6"},
		wantAn:      []string{"old.test. 120 IN DNAME new.test.", "a.b.old.test. 120 IN CNAME a.b.new.test.", "a.b.new.test. 300 IN A 192.0.2.6"},
		synthesized: 1,
	},
	{
		name: "DNAME beats a CNAME that disagrees", qname: "www.old.test.", qtype: dns.TypeA,
		an: []string{"old.test. 300 IN DNAME new.test.", "www.old.test. 300 IN CNAME evil.test.",
			"evil.test. 300 IN A 6.6.6.6", "www.new.test. 300 IN A 192.0.2.7"},
		wantAn:      []string{"old.test. 300 IN DNAME new.test.", "www.old.test. 300 IN CNAME www.new.test.", "www.new.test. 300 IN A 192.0.2.7"},
		synthesized: 1,
	},
	{
		name: "DNAME for another name dropped", qname: "www.a.test.", qtype: dns.TypeA,
		an:     []string{"other.test. 300 IN DNAME evil.test.", "www.a.test. 300 IN A 192.0.2.8"},
		wantAn: []string{"www.a.test. 300 IN A 192.0.2.8"},
	},
	{
		name: "DNAME asked for is data", qname: "old.test.", qtype: dns.TypeDNAME,
		an:     []string{"old.test. 300 IN DNAME new.test."},
		wantAn: []string{"old.test. 300 IN DNAME new.test."},
	},
	{
		name: "YXDOMAIN: DNAME kept, nothing synthesized", qname: strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + ".x.test.", qtype: dns.TypeA,
		rcode:  dns.RcodeYXDomain,
		an:     []string{"x.test. 300 IN DNAME " + strings.Repeat("c", 63) + "." + strings.Repeat("d", 60) + ".test."},
		wantAn: []string{"x.test. 300 IN DNAME " + strings.Repeat("c", 63) + "." + strings.Repeat("d", 60) + ".test."},
	},
	{
		name: "other types, classes and names at the answer dropped", qname: "a.test.", qtype: dns.TypeA,
		an:     []string{"a.test. 300 IN A 192.0.2.9", "a.test. 300 IN AAAA 2001:db8::9", "a.test. 300 CH A 192.0.2.99", "A.TEST. 300 IN A 192.0.2.10"},
		wantAn: []string{"a.test. 300 IN A 192.0.2.9", "A.TEST. 300 IN A 192.0.2.10"},
	},
	{
		name: "ANY keeps everything at the name", qname: "a.test.", qtype: dns.TypeANY,
		an:     []string{"a.test. 300 IN A 192.0.2.9", "a.test. 300 IN TXT \"hi\"", "b.test. 300 IN A 6.6.6.6"},
		wantAn: []string{"a.test. 300 IN A 192.0.2.9", "a.test. 300 IN TXT \"hi\""},
	},
	{
		name: "a CNAME question is not followed", qname: "a.test.", qtype: dns.TypeCNAME,
		an:     []string{"a.test. 300 IN CNAME b.test.", "b.test. 300 IN A 192.0.2.1"},
		wantAn: []string{"a.test. 300 IN CNAME b.test."},
	},
	{
		name: "NXDOMAIN keeps its zone's SOA, not another's, and no NS", qname: "nope.acme.test.", qtype: dns.TypeA, rcode: dns.RcodeNameError,
		ns: []string{"evil. 300 IN SOA ns.evil. h.evil. 1 2 3 4 5", "acme.test. 300 IN SOA ns1.acme.test. h.acme.test. 1 2 3 4 60",
			"acme.test. 300 IN SOA ns2.acme.test. h.acme.test. 1 2 3 4 60", "acme.test. 300 IN NS ns1.acme.test."},
		ar:     []string{"ns1.acme.test. 300 IN A 192.0.2.53"},
		wantNs: []string{"acme.test. 300 IN SOA ns1.acme.test. h.acme.test. 1 2 3 4 60"},
	},
	{
		name: "NODATA after a CNAME: the SOA of the target's zone", qname: "www.a.test.", qtype: dns.TypeAAAA,
		an:     []string{"www.a.test. 300 IN CNAME host.cdn.test."},
		ns:     []string{"a.test. 300 IN SOA ns.a.test. h.a.test. 1 2 3 4 60", "cdn.test. 300 IN SOA ns.cdn.test. h.cdn.test. 1 2 3 4 60"},
		wantAn: []string{"www.a.test. 300 IN CNAME host.cdn.test."},
		wantNs: []string{"cdn.test. 300 IN SOA ns.cdn.test. h.cdn.test. 1 2 3 4 60"},
	},
	{
		name: "positive answer: one NS set at or above the name, with its glue", qname: "www.acme.test.", qtype: dns.TypeA,
		an: []string{"www.acme.test. 300 IN A 192.0.2.1"},
		ns: []string{"acme.test. 300 IN NS ns1.acme.test.", "acme.test. 300 IN NS ns2.other.test.", "test. 300 IN NS ns.tld.test.",
			"sub.www.acme.test. 300 IN NS ns.sub.test.", "acme.test. 300 IN A 6.6.6.6", "acme.test. 300 IN CNAME evil.test.", "acme.test. 300 IN DS 1 8 2 AABB"},
		ar: []string{"ns1.acme.test. 300 IN A 192.0.2.53", "ns2.other.test. 300 IN AAAA 2001:db8::53", "ns.tld.test. 300 IN A 6.6.6.1",
			"ns.sub.test. 300 IN A 6.6.6.2", "ns1.acme.test. 300 IN TXT \"x\"", "ns1.acme.test. 300 IN NS evil.test."},
		wantAn: []string{"www.acme.test. 300 IN A 192.0.2.1"},
		wantNs: []string{"acme.test. 300 IN NS ns1.acme.test.", "acme.test. 300 IN NS ns2.other.test."},
		wantAr: []string{"ns1.acme.test. 300 IN A 192.0.2.53", "ns2.other.test. 300 IN AAAA 2001:db8::53"},
	},
	{
		name: "MX, SRV and HTTPS targets bring their addresses, nothing else does", qname: "acme.test.", qtype: dns.TypeMX,
		an:     []string{"acme.test. 300 IN MX 10 mail.acme.test."},
		ar:     []string{"mail.acme.test. 300 IN A 192.0.2.25", "mail.acme.test. 300 IN TXT \"v=spf1\"", "www.acme.test. 300 IN A 192.0.2.80"},
		wantAn: []string{"acme.test. 300 IN MX 10 mail.acme.test."},
		wantAr: []string{"mail.acme.test. 300 IN A 192.0.2.25"},
	},
	{
		name: "SRV target glue", qname: "_sip._udp.acme.test.", qtype: dns.TypeSRV,
		an:     []string{"_sip._udp.acme.test. 300 IN SRV 0 5 5060 sip.acme.test."},
		ar:     []string{"sip.acme.test. 300 IN AAAA 2001:db8::5060", "other.acme.test. 300 IN AAAA 2001:db8::1"},
		wantAn: []string{"_sip._udp.acme.test. 300 IN SRV 0 5 5060 sip.acme.test."},
		wantAr: []string{"sip.acme.test. 300 IN AAAA 2001:db8::5060"},
	},
	{
		name: "HTTPS target glue", qname: "acme.test.", qtype: dns.TypeHTTPS,
		an:     []string{"acme.test. 300 IN HTTPS 1 svc.cdn.test. alpn=h2"},
		ar:     []string{"svc.cdn.test. 300 IN A 192.0.2.44", "svc.cdn.test. 300 IN HTTPS 1 . alpn=h3"},
		wantAn: []string{"acme.test. 300 IN HTTPS 1 svc.cdn.test. alpn=\"h2\""},
		wantAr: []string{"svc.cdn.test. 300 IN A 192.0.2.44"},
	},
	{
		name: "RRSIGs only over kept records", qname: "a.acme.test.", qtype: dns.TypeA,
		an: []string{"a.acme.test. 300 IN A 192.0.2.1", sig("a.acme.test.", "A", "acme.test."), sig("a.acme.test.", "AAAA", "acme.test."),
			"pay.example. 300 IN A 6.6.6.6", sig("pay.example.", "A", "example.")},
		wantAn: []string{"a.acme.test. 300 IN A 192.0.2.1", sig("a.acme.test.", "A", "acme.test.")},
	},
	{
		name: "NXDOMAIN proof: NSEC of the signing zone only", qname: "nope.acme.test.", qtype: dns.TypeA, rcode: dns.RcodeNameError,
		ns: []string{
			"acme.test. 300 IN SOA ns1.acme.test. h.acme.test. 1 2 3 4 60", sig("acme.test.", "SOA", "acme.test."),
			"mail.acme.test. 60 IN NSEC www.acme.test. A RRSIG NSEC", sig("mail.acme.test.", "NSEC", "acme.test."),
			"evil.example. 60 IN NSEC zzz.example. A RRSIG NSEC", sig("evil.example.", "NSEC", "example."),
			"b.acme.test. 60 IN NSEC c.other.test. A RRSIG NSEC", sig("b.acme.test.", "NSEC", "acme.test."),
			"d.acme.test. 60 IN NSEC e.acme.test. A",
		},
		wantNs: []string{
			"acme.test. 300 IN SOA ns1.acme.test. h.acme.test. 1 2 3 4 60", sig("acme.test.", "SOA", "acme.test."),
			"mail.acme.test. 60 IN NSEC www.acme.test. A RRSIG NSEC", sig("mail.acme.test.", "NSEC", "acme.test."),
		},
	},
	{
		name: "long chain cut at the limit", qname: "c0.test.", qtype: dns.TypeA,
		an:     chainOf(20),
		wantAn: chainOf(maxChainLinks + 1)[:maxChainLinks+1],
	},
}

// sig is an RRSIG over rrtype at name, signed by zone.
func sig(name, rrtype, zone string) string {
	return fmt.Sprintf("%s 300 IN RRSIG %s 13 %d 300 20300101000000 20200101000000 12345 %s AAAA", name, rrtype, dns.CountLabel(name), zone)
}

// chainOf is n CNAME links c0 → c1 → … and an A at the end.
func chainOf(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("c%d.test. 300 IN CNAME c%d.test.", i, i+1))
	}
	return append(out, fmt.Sprintf("c%d.test. 300 IN A 192.0.2.1", n))
}

// FuzzScrub: whatever an upstream sends, the scrubbed reply packs and
// unpacks, a second scrub changes nothing, and every answer record is on
// the chain from the question's name.
func FuzzScrub(f *testing.F) {
	for _, c := range scrubCases {
		q, m := c.packet(f)
		m.Question = []dns.Question{q}
		wire, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(wire)
	}
	f.Fuzz(func(t *testing.T, wire []byte) {
		m := new(dns.Msg)
		// Replies reach scrub only after the forwarder's own checks.
		if m.Unpack(wire) != nil || len(m.Question) != 1 || upstream.CheckRecordData(m) != nil {
			return
		}
		q := m.Question[0]
		scrub(q, m)
		out, err := m.Pack()
		if err != nil {
			t.Fatalf("scrubbed reply does not pack: %v", err)
		}
		back := new(dns.Msg)
		if err := back.Unpack(out); err != nil {
			t.Fatalf("scrubbed reply does not unpack: %v", err)
		}
		if again := scrub(q, m); again.Total() != 0 || again.Synthesized != 0 {
			t.Fatalf("second scrub removed %+v", again)
		}
		onChain := []string{q.Name}
		for _, rr := range m.Answer {
			switch r := rr.(type) {
			case *dns.CNAME:
				onChain = append(onChain, r.Target)
			}
		}
		for _, rr := range m.Answer {
			h := rr.Header()
			if d, ok := rr.(*dns.DNAME); ok && !containsFold(onChain, d.Hdr.Name) {
				if !slices.ContainsFunc(onChain, func(n string) bool { return dns.IsSubDomain(d.Hdr.Name, n) }) {
					t.Fatalf("DNAME %s is above no name of the chain %v", d.Hdr.Name, onChain)
				}
				continue
			}
			if !containsFold(onChain, h.Name) {
				t.Fatalf("answer record %s is not on the chain %v", rr, onChain)
			}
		}
	})
}
