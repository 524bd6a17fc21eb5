package resolver

import (
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestDDRAnswerParsesAndNamesEndpoints(t *testing.T) {
	cfg := EncryptedConfig{
		ListenTLS:   []string{"192.0.2.53:853", "[2001:db8::53]:853"},
		ListenHTTPS: []string{"0.0.0.0:8443"},
		ListenQUIC:  []string{"192.0.2.53:853"},
	}
	eps := DDREndpointsFrom(cfg, "dns.agency.example")
	answer, extra, handled := eps.DDRAnswer("_DNS.resolver.arpa", dns.TypeSVCB)
	if !handled || len(answer) != 3 || len(extra) != 2 {
		t.Fatalf("handled=%v answer=%v extra=%v", handled, answer, extra)
	}
	// Through the wire and back, as a client sees it.
	m := new(dns.Msg).SetQuestion(DDRName, dns.TypeSVCB)
	m.Response, m.Authoritative = true, true
	m.Answer, m.Extra = answer, extra
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	back := new(dns.Msg)
	if err := back.Unpack(b); err != nil {
		t.Fatalf("miekg/dns cannot parse the DDR answer: %v", err)
	}
	want := []struct {
		alpn    string
		port    uint16
		dohpath string
	}{{"dot", 853, ""}, {"h2", 8443, "/dns-query{?dns}"}, {"doq", 853, ""}}
	for i, rr := range back.Answer {
		s, ok := rr.(*dns.SVCB)
		if !ok {
			t.Fatalf("answer %d is %T", i, rr)
		}
		if s.Hdr.Name != DDRName || s.Target != "dns.agency.example." || s.Priority != uint16(i+1) {
			t.Errorf("record %d: %s", i, s)
		}
		var alpn, dohpath string
		var port uint16
		var v4, v6 []string
		for _, kv := range s.Value {
			switch kv := kv.(type) {
			case *dns.SVCBAlpn:
				alpn = strings.Join(kv.Alpn, ",")
			case *dns.SVCBPort:
				port = kv.Port
			case *dns.SVCBDoHPath:
				dohpath = kv.Template
			case *dns.SVCBIPv4Hint:
				for _, ip := range kv.Hint {
					v4 = append(v4, ip.String())
				}
			case *dns.SVCBIPv6Hint:
				for _, ip := range kv.Hint {
					v6 = append(v6, ip.String())
				}
			}
		}
		if alpn != want[i].alpn || port != want[i].port || dohpath != want[i].dohpath {
			t.Errorf("record %d: alpn %q port %d dohpath %q; want %+v", i, alpn, port, dohpath, want[i])
		}
		if !slices.Equal(v4, []string{"192.0.2.53"}) || !slices.Equal(v6, []string{"2001:db8::53"}) {
			t.Errorf("record %d hints: %v %v", i, v4, v6)
		}
	}
	if a, ok := back.Extra[0].(*dns.A); !ok || a.Hdr.Name != "dns.agency.example." || a.A.String() != "192.0.2.53" {
		t.Errorf("glue %v", back.Extra)
	}
}

func TestDDROtherQuestions(t *testing.T) {
	eps := DDREndpoints{ServerName: "dns.agency.example", TLSPort: 853}
	for _, tt := range []struct {
		name    string
		qtype   uint16
		handled bool
		records int
	}{
		{DDRName, dns.TypeA, true, 0},
		{DDRName, dns.TypeHTTPS, true, 0},
		{"resolver.arpa.", dns.TypeSOA, true, 0},
		{"x.y.resolver.arpa.", dns.TypeSVCB, true, 0},
		{"_dns.dns.agency.example.", dns.TypeSVCB, true, 1},
		{"_dns.dns.agency.example.", dns.TypeTXT, true, 0},
		{"www.example.org.", dns.TypeSVCB, false, 0},
		{"notresolver.arpa.", dns.TypeSVCB, false, 0},
	} {
		answer, _, handled := eps.DDRAnswer(tt.name, tt.qtype)
		if handled != tt.handled || len(answer) != tt.records {
			t.Errorf("%s %s: handled=%v records=%d; want %v %d", tt.name, dns.TypeToString[tt.qtype], handled, len(answer), tt.handled, tt.records)
		}
	}
	if answer, _, handled := (DDREndpoints{}).DDRAnswer(DDRName, dns.TypeSVCB); !handled || answer != nil {
		t.Errorf("no encrypted listener: %v %v; want NODATA", answer, handled)
	}
	loop := DDREndpointsFrom(EncryptedConfig{ListenTLS: []string{"127.0.0.1:853"}}, "dns.test")
	if len(loop.IPv4Hints) != 0 || loop.TLSPort != 853 {
		t.Errorf("loopback listener as a hint: %+v", loop)
	}
}
