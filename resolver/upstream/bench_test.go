package upstream

import (
	"context"
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkExchangeUDP measures one forwarded query over loopback UDP. The
// test server runs in the same process, so its work and allocations (about
// 40 of them in miekg's server) are included in the numbers.
func BenchmarkExchangeUDP(b *testing.B) {
	rr, _ := dns.NewRR("a.test. 300 IN A 192.0.2.1")
	addr, _ := startUDPTCP(b, dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg).SetReply(req)
		m.Answer = []dns.RR{rr}
		w.WriteMsg(m)
	}))
	f, err := New(Config{Servers: []string{addr}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	q := query("a.test.", dns.TypeA)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Exchange(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckRecordData measures the completeness check every reply
// gets: a positive answer takes the type switch only; the SOA of a
// negative answer is packed alone and read back.
func BenchmarkCheckRecordData(b *testing.B) {
	a, _ := dns.NewRR("a.test. 300 IN A 192.0.2.1")
	cname, _ := dns.NewRR("www.test. 300 IN CNAME a.test.")
	soa, _ := dns.NewRR("test. 300 IN SOA ns.test. host.test. 1 3600 600 86400 30")
	q := query("www.test.", dns.TypeA)
	positive := new(dns.Msg).SetReply(q)
	positive.Answer = []dns.RR{cname, a}
	negative := new(dns.Msg).SetRcode(q, dns.RcodeNameError)
	negative.Ns = []dns.RR{soa}
	for name, m := range map[string]*dns.Msg{"positive": positive, "negative": negative} {
		wire, err := m.Pack()
		if err != nil {
			b.Fatal(err)
		}
		unpacked := new(dns.Msg)
		if err := unpacked.Unpack(wire); err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := CheckRecordData(unpacked); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
