package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnstest"
)

// An RPZ feed and a list of networks, end to end through the binary's
// pipeline: every RPZ action, exact against wildcard triggers, and
// answers blocked by the address they point at.
const testRPZ = `$TTL 300
@ SOA ns.rpz.test. hostmaster.rpz.test. 7 3600 600 86400 60
  NS ns.rpz.test.
exact.test          CNAME .
*.wild.test         CNAME .
nodata.test         CNAME *.
quiet.test          CNAME rpz-drop.
tcp.test            CNAME rpz-tcp-only.
garden.test         CNAME walled.example.
page.test           A 192.0.2.80
page.test           TXT "blocked by policy"
ok.exact.test       CNAME rpz-passthru.
`

func startRPZApp(t *testing.T) (*app, *zoneServer) {
	t.Helper()
	z := &zoneServer{ipv4: map[string]net.IP{"cdn.example.": net.IPv4(71, 18, 3, 4), "walled.example.": net.IPv4(192, 0, 2, 99)}}
	z.addr, _ = dnstest.Serve(t, z)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "feed.rpz"), []byte(testRPZ), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nets.txt"), []byte("# networks\n71.18.0.0/21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, dir, z.addr, `
lists:
  feed: {sources: ["feed.rpz"]}
  nets: {sources: ["nets.txt"]}
groups:
  - name: everyone
    clients: ["127.0.0.0/8"]
    block: [feed, nets]
`)
	return startApp(t, path), z
}

func TestRPZActionsEndToEnd(t *testing.T) {
	a, _ := startRPZApp(t)
	addr := a.dnsAddr()
	type want struct {
		rcode  int
		answer string // the answer section's first record data, "" for none
	}
	for _, tc := range []struct {
		name  string
		qtype uint16
		want  want
	}{
		{"exact.test.", dns.TypeA, want{dns.RcodeNameError, ""}},
		{"www.exact.test.", dns.TypeA, want{dns.RcodeSuccess, "192.0.2.1"}}, // an exact trigger covers only its name
		{"ok.exact.test.", dns.TypeA, want{dns.RcodeSuccess, "192.0.2.1"}},  // passthru
		{"wild.test.", dns.TypeA, want{dns.RcodeSuccess, "192.0.2.1"}},      // *.name does not cover name
		{"a.b.wild.test.", dns.TypeA, want{dns.RcodeNameError, ""}},
		{"nodata.test.", dns.TypeA, want{dns.RcodeSuccess, ""}},
		{"page.test.", dns.TypeA, want{dns.RcodeSuccess, "192.0.2.80"}},
		{"page.test.", dns.TypeTXT, want{dns.RcodeSuccess, `"blocked by policy"`}},
		{"page.test.", dns.TypeAAAA, want{dns.RcodeSuccess, ""}},               // local data has no AAAA: NODATA
		{"garden.test.", dns.TypeA, want{dns.RcodeSuccess, "walled.example."}}, // then the garden's address
		{"cdn.example.", dns.TypeA, want{dns.RcodeNameError, ""}},              // response-IP: 71.18.3.4 is listed
	} {
		m := query(t, "127.0.0.1", addr, tc.name, tc.qtype)
		got := want{rcode: m.Rcode}
		if len(m.Answer) > 0 {
			got.answer = strings.TrimPrefix(m.Answer[0].String(), m.Answer[0].Header().String())
		}
		if got != tc.want {
			t.Errorf("%s %s: rcode %s answer %q, want %s %q", tc.name, dns.TypeToString[tc.qtype],
				dns.RcodeToString[got.rcode], got.answer, dns.RcodeToString[tc.want.rcode], tc.want.answer)
		}
	}
	garden := query(t, "127.0.0.1", addr, "garden.test.", dns.TypeA)
	if len(garden.Answer) != 2 || !strings.Contains(garden.Answer[1].String(), "192.0.2.99") {
		t.Errorf("walled garden: %v, want the CNAME and the garden's address", garden.Answer)
	}
	if e := ede(query(t, "127.0.0.1", addr, "cdn.example.", dns.TypeA)); !strings.Contains(e, "list nets (rule 71.18.0.0/21)") {
		t.Errorf("response-IP EDE %q, want the list and the network", e)
	}
}

// rpz-drop sends nothing; rpz-tcp-only answers TC over UDP and resolves
// over TCP.
func TestRPZDropAndTCPOnly(t *testing.T) {
	a, _ := startRPZApp(t)
	addr := a.dnsAddr()
	c := &dns.Client{Net: "udp", Timeout: 500 * time.Millisecond}
	if m, _, err := c.Exchange(new(dns.Msg).SetQuestion("quiet.test.", dns.TypeA), addr); err == nil {
		t.Errorf("rpz-drop answered: %v", m)
	}
	m, _, err := c.Exchange(new(dns.Msg).SetQuestion("tcp.test.", dns.TypeA), addr)
	if err != nil || !m.Truncated || len(m.Answer) != 0 {
		t.Fatalf("rpz-tcp-only over UDP: %v %v, want TC with no records", m, err)
	}
	m, err = dnstest.Exchange(new(dns.Msg).SetQuestion("tcp.test.", dns.TypeA), "tcp", "", addr)
	if err != nil || m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
		t.Fatalf("rpz-tcp-only over TCP: %v %v, want the real answer", m, err)
	}
}
