package upstream

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// replyWithRecord packs a reply holding rr in the authority section, its
// data cut to keep bytes (-1 keeps it whole).
func replyWithRecord(t *testing.T, rr string, keep int) []byte {
	t.Helper()
	m := new(dns.Msg).SetQuestion("a.test.", dns.TypeA)
	m.Response = true
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	record, err := dns.NewRR(rr)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, dns.Len(record)+1)
	n, err := dns.PackRR(record, buf, 0, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	buf = buf[:n]
	if keep >= 0 {
		dataAt := n - int(record.Header().Rdlength) // PackRR set it
		binary.BigEndian.PutUint16(buf[dataAt-2:], uint16(keep))
		buf = buf[:dataAt+keep]
	}
	binary.BigEndian.PutUint16(wire[8:], 1) // NSCOUNT
	return append(wire, buf...)
}

func TestCheckRecordData(t *testing.T) {
	soa := "test. 300 IN SOA ns.test. host.test. 1 3600 600 86400 30"
	cases := []struct {
		name string
		wire []byte
		ok   bool
	}{
		{"whole SOA", replyWithRecord(t, soa, -1), true},
		{"SOA with no data", replyWithRecord(t, soa, 0), false},
		{"SOA cut after its first name", replyWithRecord(t, soa, len("\x02ns\x04test\x00")), false},
		{"whole MX", replyWithRecord(t, "test. 300 IN MX 10 mx.test.", -1), true},
		{"whole SRV", replyWithRecord(t, "_x._tcp.test. 300 IN SRV 1 2 3 t.test.", -1), true},
		{"CNAME with no data", replyWithRecord(t, "a.test. 300 IN CNAME b.test.", 0), false},
		{"A with no data", replyWithRecord(t, "a.test. 300 IN A 192.0.2.1", 0), false},
		{"NULL with no data", replyWithRecord(t, `a.test. 300 IN NULL \# 1 00`, 0), true},
		{"unknown type with no data", replyWithRecord(t, `a.test. 300 IN TYPE65400 \# 1 00`, 0), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := new(dns.Msg)
			if err := m.Unpack(c.wire); err != nil {
				t.Fatalf("test reply does not unpack: %v", err)
			}
			err := CheckRecordData(m)
			if (err == nil) != c.ok {
				t.Fatalf("CheckRecordData = %v, want ok %v", err, c.ok)
			}
			if err == nil {
				requireRepacks(t, m)
			}
		})
	}
}

// FuzzCheckRecordData: whatever unpacks and passes the check must pack
// again, into bytes that unpack, since that is what clients and the cache
// get.
func FuzzCheckRecordData(f *testing.F) {
	q := query("a.test.", dns.TypeA)
	for _, rr := range []string{
		"test. 300 IN SOA ns.test. host.test. 1 3600 600 86400 30",
		"test. 300 IN MX 10 mx.test.",
		"_x._tcp.test. 300 IN SRV 1 2 3 t.test.",
		`a.test. 300 IN TXT "v=spf1 -all"`,
		"a.test. 300 IN HTTPS 1 . alpn=h2 ipv4hint=192.0.2.1",
		"a.test. 300 IN CAA 0 issue \"ca.test\"",
		"a.test. 300 IN NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:a@test!\" .",
	} {
		m := new(dns.Msg).SetReply(q)
		record, err := dns.NewRR(rr)
		if err != nil {
			f.Fatal(err)
		}
		m.Answer = []dns.RR{record}
		wire, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(wire)
	}
	f.Fuzz(func(t *testing.T, wire []byte) {
		m := new(dns.Msg)
		if m.Unpack(wire) != nil || CheckRecordData(m) != nil {
			return
		}
		requireRepacks(t, m)
	})
}

// requireRepacks fails unless an accepted reply packs again (or the
// client would get no answer) into bytes that unpack.
func requireRepacks(t *testing.T, m *dns.Msg) {
	t.Helper()
	again, err := m.Pack()
	if err != nil {
		t.Fatalf("accepted reply does not pack: %v", err)
	}
	if err := new(dns.Msg).Unpack(again); err != nil {
		t.Fatalf("accepted reply packs into bytes that do not unpack: %v", err)
	}
}

// FuzzParseReply feeds arbitrary datagrams to the reply check every
// transport uses: what it accepts answers the query asked, and packs again
// into bytes that unpack (what the cache stores and clients get).
func FuzzParseReply(f *testing.F) {
	wire, qlen, err := packQuery(Query{Name: "a.test.", Type: dns.TypeA, Class: dns.ClassINET, DO: true})
	if err != nil {
		f.Fatal(err)
	}
	for _, rr := range []string{"a.test. 300 IN A 192.0.2.1", "a.test. 300 IN CNAME b.test."} {
		m := new(dns.Msg).SetQuestion("a.test.", dns.TypeA)
		m.Response = true
		m.Answer = []dns.RR{mustRR(f, rr)}
		b, _ := m.Pack()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, reply []byte) {
		if len(reply) < 2 {
			return
		}
		id := uint16(reply[0])<<8 | uint16(reply[1])
		m, err := parseReply(reply, wire, id, qlen)
		if err != nil {
			return
		}
		if len(m.Question) == 1 && !strings.EqualFold(m.Question[0].Name, "a.test.") {
			t.Fatalf("accepted a reply to %v", m.Question)
		}
		requireRepacks(t, m)
	})
}

func mustRR(t testing.TB, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}
