package resolver

import (
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnstest"
)

// sendRaw writes pkt over UDP to addr and returns the reply's bytes.
func sendRaw(t *testing.T, addr string, pkt []byte) []byte {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(pkt); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 65535)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no reply: %v", err)
	}
	return buf[:n]
}

func TestEDNSVersionAboveZeroGetsBADVERS(t *testing.T) {
	up := startUpstream(t, testZone...)
	srv := startResolver(t, Config{}, Options{}, up.addr)
	for _, network := range []string{"udp", "tcp"} {
		m := new(dns.Msg).SetQuestion("a.example.", dns.TypeA)
		m.SetEdns0(1232, false)
		m.IsEdns0().SetVersion(1)
		resp, err := dnstest.Exchange(m, network, "", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		opt := resp.IsEdns0()
		if resp.Rcode != dns.RcodeBadVers || opt == nil || opt.Version() != 0 || len(resp.Answer) != 0 {
			t.Errorf("%s: rcode %s, OPT %v, %d answers; want BADVERS with an EDNS 0 OPT and no answer",
				network, dns.RcodeToString[resp.Rcode], opt, len(resp.Answer))
		}
	}
	if up.queries.Load() != 0 {
		t.Error("an EDNS 1 query was forwarded")
	}
}

func TestMalformedQueriesGetFORMERR(t *testing.T) {
	up := startUpstream(t, testZone...)
	srv := startResolver(t, Config{}, Options{}, up.addr)

	// Two OPT records (RFC 6891 §6.1.1).
	m := new(dns.Msg).SetQuestion("a.example.", dns.TypeA)
	m.SetEdns0(1232, false)
	m.Extra = append(m.Extra, m.Extra[0])
	twoOPT, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	// A question cut off after its name (no type, no class).
	full, _ := new(dns.Msg).SetQuestion("a.example.", dns.TypeA).Pack()
	cut := full[:len(full)-4]
	// A question name that points elsewhere (compression in a question).
	pointer := append(append([]byte{}, full[:12]...), 0xC0, 0x0C, 0, 1, 0, 1)

	for name, pkt := range map[string][]byte{"two OPT records": twoOPT, "question cut after the name": cut, "compressed question": pointer} {
		resp := new(dns.Msg)
		out := sendRaw(t, srv.addr, pkt)
		if err := resp.Unpack(out); err != nil {
			t.Fatalf("%s: reply does not unpack: %v", name, err)
		}
		if resp.Rcode != dns.RcodeFormatError || len(resp.Answer) != 0 {
			t.Errorf("%s: rcode %s with %d answers, want FORMERR", name, dns.RcodeToString[resp.Rcode], len(resp.Answer))
		}
		for _, q := range resp.Question {
			if q.Qtype == 0 || q.Qclass == 0 {
				t.Errorf("%s: reply echoes an invented question %v", name, q)
			}
		}
		if len(out) > len(pkt)+11 {
			t.Errorf("%s: %d-byte reply to a %d-byte query", name, len(out), len(pkt))
		}
	}
	if up.queries.Load() != 0 {
		t.Error("a malformed query was forwarded")
	}
}
