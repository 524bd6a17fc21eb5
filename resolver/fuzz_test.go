package resolver

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/resolver/upstream"
)

// FuzzServe feeds arbitrary packets through the whole pipeline (policy,
// cache, a real upstream on loopback). A reply, when there is one, must
// unpack, carry the query's ID, never exceed what the client can take
// over UDP, and answer the question that was asked.
func FuzzServe(f *testing.F) {
	for _, m := range []*dns.Msg{
		new(dns.Msg).SetQuestion("a.example.", dns.TypeA),
		new(dns.Msg).SetQuestion("www.tiktok.com.", dns.TypeAAAA),
		new(dns.Msg).SetQuestion("big.example.", dns.TypeTXT),
		new(dns.Msg).SetQuestion("alias.example.", dns.TypeANY),
		new(dns.Msg).SetQuestion("a.example.", dns.TypeA).SetEdns0(512, true),
		new(dns.Msg).SetQuestion("mail.example.", dns.TypeMX).SetEdns0(1232, false),
	} {
		wire, _ := m.Pack()
		f.Add(wire)
	}
	up := startUpstreamF(f, append(testZone, bigTXT("big.example.", 3000))...)
	fwd, err := upstream.New(upstream.Config{Servers: []string{up.addr}, Strategy: "failover", Timeout: 300 * time.Millisecond}, upstream.Options{})
	if err != nil {
		f.Fatal(err)
	}
	r, err := New(Options{Config: DefaultConfig(), Upstream: fwd, Policy: &suffixPolicy{block: map[string]string{"tiktok.com": "tiktok"}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, packet []byte) {
		out := serveWire(t, r, packet, "127.0.0.1")
		if out == nil {
			return
		}
		resp := new(dns.Msg)
		if err := resp.Unpack(out); err != nil {
			t.Fatalf("reply does not unpack: %v\n% x", err, out)
		}
		if resp.Id != binary.BigEndian.Uint16(packet) {
			t.Fatalf("reply ID %d, query ID %d", resp.Id, binary.BigEndian.Uint16(packet))
		}
		req := new(dns.Msg)
		if req.Unpack(packet) == nil && len(req.Question) == 1 {
			if req.IsEdns0() == nil && len(out) > dns.MinMsgSize {
				t.Fatalf("UDP reply of %d bytes without EDNS", len(out))
			}
			if len(resp.Question) == 1 && !strings.EqualFold(resp.Question[0].Name, req.Question[0].Name) {
				t.Fatalf("reply answers %v, query asked %v", resp.Question, req.Question)
			}
		}
	})
}

// FuzzParseQuery checks the pipeline's wire parser against miekg/dns's:
// whatever both accept, they must read the same question and EDNS
// fields, and the text name must pack back to the wire name.
func FuzzParseQuery(f *testing.F) {
	for _, m := range []*dns.Msg{
		new(dns.Msg).SetQuestion("a.example.", dns.TypeA),
		new(dns.Msg).SetQuestion(`We\.ird\032na\\me.Example.`, dns.TypeAAAA),
		new(dns.Msg).SetQuestion("alias.example.", dns.TypeA).SetEdns0(1232, true),
		new(dns.Msg).SetQuestion(".", dns.TypeNS),
	} {
		wire, _ := m.Pack()
		f.Add(wire)
	}
	f.Fuzz(func(t *testing.T, packet []byte) {
		var name [maxNameText]byte
		q, verdict := parseQuery(packet, name[:])
		m := new(dns.Msg)
		if verdict != parsedQuery || m.Unpack(packet) != nil {
			return
		}
		got := m.Question[0]
		if string(q.qname) != strings.ToLower(got.Name) || q.qtype != got.Qtype || q.qclass != got.Qclass {
			t.Fatalf("parsed %q %d %d, miekg %q %d %d", q.qname, q.qtype, q.qclass, got.Name, got.Qtype, got.Qclass)
		}
		opt := m.IsEdns0()
		if q.edns != (opt != nil) || opt != nil && (q.do != opt.Do() || q.udpSize != opt.UDPSize() || q.version != opt.Version()) {
			t.Fatalf("EDNS %v do=%v size=%d v=%d, miekg %v", q.edns, q.do, q.udpSize, q.version, opt)
		}
		buf := make([]byte, 256)
		n, err := dns.PackDomainName(string(q.qname), buf, 0, nil, false)
		if err != nil || !strings.EqualFold(string(buf[:n]), string(q.rawQName)) {
			t.Fatalf("text name %q packs to % x (%v), wire name % x", q.qname, buf[:n], err, q.rawQName)
		}
	})
}
