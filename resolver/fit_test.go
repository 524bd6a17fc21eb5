package resolver

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnstest"
)

// mxWithGlue answers mx.example MX with ten exchangers, an authority NS
// set and the addresses of every host in the additional section: about
// 900 bytes, of which the answer alone is about 300.
func mxWithGlue(t *testing.T) string {
	addr, _ := dnstest.Serve(t, dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg).SetReply(req)
		m.Authoritative = true
		if req.Question[0].Qtype == dns.TypeMX {
			for i := range 10 {
				host := fmt.Sprintf("mail%d.example.", i)
				m.Answer = append(m.Answer, dnstest.RR(t, fmt.Sprintf("mx.example. 300 IN MX %d %s", i, host)))
				m.Extra = append(m.Extra, dnstest.RR(t, host+" 300 IN AAAA 2001:db8::"+fmt.Sprint(i+1)))
				m.Extra = append(m.Extra, dnstest.RR(t, host+" 300 IN A 192.0.2."+fmt.Sprint(i+1)))
			}
			m.Ns = append(m.Ns, dnstest.RR(t, "example. 300 IN NS ns1.example."), dnstest.RR(t, "example. 300 IN NS ns2.example."))
		}
		if opt := req.IsEdns0(); opt != nil {
			m.SetEdns0(4096, opt.Do())
		}
		_ = w.WriteMsg(m)
	}))
	return addr
}

// Dropping additional (or, for a positive answer, authority) records to
// fit does not set TC (RFC 2181 §9, RFC 4035 §3.1.1): the client has what
// it asked for and must not retry over TCP.
func TestFittingDropsExtraRecordsWithoutTC(t *testing.T) {
	srv := startResolver(t, Config{Cache: CacheConfig{MaxEntries: 100}}, Options{}, mxWithGlue(t))
	for _, tc := range []struct {
		name   string
		edns   bool
		size   uint16
		do     bool
		wantNS bool
	}{
		{"no EDNS", false, 0, false, false},
		{"EDNS 512 with DO", true, 512, true, true},
		{"EDNS 1232", true, 1232, false, true},
	} {
		for range 2 { // from upstream, then from the cache
			m := new(dns.Msg).SetQuestion("mx.example.", dns.TypeMX)
			if tc.edns {
				m.SetEdns0(tc.size, tc.do)
			}
			resp, err := dnstest.Exchange(m, "udp", "", srv.addr)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Truncated || len(resp.Answer) != 10 {
				t.Fatalf("%s: TC=%v with %d answers; want all 10 MX records without TC", tc.name, resp.Truncated, len(resp.Answer))
			}
			if tc.wantNS && len(resp.Ns) != 2 {
				t.Errorf("%s: %d authority records, want the NS set (it fits)", tc.name, len(resp.Ns))
			}
			if resp.Authoritative {
				t.Errorf("%s: AA set on an answer from a forwarder's cache", tc.name)
			}
		}
	}
	// Over TCP nothing is dropped.
	resp, err := dnstest.Exchange(new(dns.Msg).SetQuestion("mx.example.", dns.TypeMX), "tcp", "", srv.addr)
	if err != nil || len(resp.Answer) != 10 || len(resp.Ns) != 2 || len(resp.Extra) != 20 {
		t.Fatalf("TCP: %v %v", resp, err)
	}
}
