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
