package rpzprimary

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/blocklist"
	"github.com/dnsward/dnsward/internal/dnstest"
)

const (
	keyName = dnstest.TSIGKeyName
	secret  = dnstest.TSIGSecret
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// policyFixture is an engine over two list files the test rewrites.
type policyFixture struct {
	dir    string
	cfg    blocklist.Config
	engine *blocklist.Engine
}

func newPolicy(t testing.TB, block, allow string) *policyFixture {
	t.Helper()
	f := &policyFixture{dir: t.TempDir()}
	f.write(t, block, allow)
	f.cfg = blocklist.Config{
		Lists: map[string]blocklist.ListConfig{
			"block": {Sources: []string{filepath.Join(f.dir, "block.txt")}},
			"allow": {Sources: []string{filepath.Join(f.dir, "allow.txt")}},
		},
		Groups: []blocklist.GroupConfig{
			{Name: "managed", Clients: []string{"10.0.0.0/8"}, Block: []string{"block"}, Allow: []string{"allow"}},
			{Name: "guests", Clients: []string{"192.168.0.0/16"}},
		},
		TSIGKeys: map[string]blocklist.TSIGKeyConfig{keyName: {Algorithm: "hmac-sha256", Secret: secret}},
	}
	e, err := blocklist.NewEngine(context.Background(), f.cfg, blocklist.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	f.engine = e
	return f
}

func (f *policyFixture) write(t testing.TB, block, allow string) {
	t.Helper()
	for name, body := range map[string]string{"block.txt": block, "allow.txt": allow} {
		if err := os.WriteFile(filepath.Join(f.dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// change rewrites the lists and reloads the engine.
func (f *policyFixture) change(t testing.TB, block, allow string) {
	t.Helper()
	f.write(t, block, allow)
	if err := f.engine.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func testKey() blocklist.TSIGKey {
	return blocklist.TSIGKey{Name: keyName + ".", Algorithm: dns.HmacSHA256, Secret: secret}
}

func startPrimary(t testing.TB, f *policyFixture, edit func(*Config)) (*Server, string) {
	t.Helper()
	addr := dnstest.FreeAddr(t)
	cfg := Config{Listen: []string{addr}, Zones: []ZoneConfig{{Name: "rpz.test", Group: "managed"}},
		TSIG: keyName, Allow: []string{"127.0.0.0/8"}}
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := cfg.CheckPolicy(&f.cfg); err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Options{Policy: f.engine, Key: testKey(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s, addr
}

func signed(m *dns.Msg) *dns.Msg {
	m.SetTsig(keyName+".", dns.HmacSHA256, 300, time.Now().Unix())
	return m
}

func exchange(t testing.TB, network, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 2 * time.Second, TsigSecret: map[string]string{keyName + ".": secret}}
	r, _, err := c.Exchange(m, addr)
	if err != nil && r == nil {
		t.Fatalf("%s exchange: %v", network, err)
	}
	return r
}

func soaQuery() *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion("rpz.test.", dns.TypeSOA)
	return m
}

// transfer runs an AXFR or IXFR and returns its records as text lines.
func transfer(t testing.TB, addr string, q *dns.Msg) []string {
	t.Helper()
	tr := &dns.Transfer{TsigSecret: map[string]string{keyName + ".": secret}}
	ch, err := tr.In(signed(q), addr)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for env := range ch {
		if env.Error != nil {
			t.Fatalf("transfer: %v", env.Error)
		}
		for _, rr := range env.RR {
			out = append(out, strings.ReplaceAll(rr.String(), "\t", " "))
		}
	}
	return out
}

func TestPrimaryServesGroupPolicy(t *testing.T) {
	f := newPolicy(t, "tiktok.com\n*.below.example\n", "safe.tiktok.com\n")
	_, addr := startPrimary(t, f, nil)
	for _, network := range []string{"udp", "tcp"} {
		r := exchange(t, network, addr, signed(soaQuery()))
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 || r.Answer[0].Header().Rrtype != dns.TypeSOA || r.IsTsig() == nil {
			t.Errorf("signed SOA query over %s: %v; want a signed authoritative SOA", network, r)
		}
	}
	var q dns.Msg
	q.SetAxfr("rpz.test.")
	got := transfer(t, addr, &q)
	want := []string{
		"tiktok.com.rpz.test. 60 IN CNAME .",
		"*.tiktok.com.rpz.test. 60 IN CNAME .",
		"safe.tiktok.com.rpz.test. 60 IN CNAME rpz-passthru.",
		"*.safe.tiktok.com.rpz.test. 60 IN CNAME rpz-passthru.",
		"*.below.example.rpz.test. 60 IN CNAME .",
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("AXFR lacks %q; got:\n%s", w, strings.Join(got, "\n"))
		}
	}
	if len(got) != len(want)+3 || !strings.Contains(got[0], "SOA") || !strings.Contains(got[len(got)-1], "SOA") {
		t.Errorf("AXFR has %d records; want SOA, NS, %d policy records, SOA:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
}

func TestPrimaryRefusesUnsignedAndStrangers(t *testing.T) {
	f := newPolicy(t, "tiktok.com\n", "")
	_, addr := startPrimary(t, f, nil)
	if r := exchange(t, "udp", addr, soaQuery()); r.Rcode != dns.RcodeRefused {
		t.Errorf("unsigned SOA query: %s; want REFUSED", dns.RcodeToString[r.Rcode])
	}
	m := soaQuery()
	m.SetTsig("other-key.", dns.HmacSHA256, 300, time.Now().Unix())
	c := &dns.Client{Timeout: 2 * time.Second, TsigSecret: map[string]string{"other-key.": secret}}
	if r, _, _ := c.Exchange(m, addr); r == nil || r.Rcode != dns.RcodeNotAuth || r.IsTsig() == nil || r.IsTsig().Error != dns.RcodeBadKey {
		t.Errorf("SOA query with an unknown key: %v; want NOTAUTH, TSIG error BADKEY", r)
	}
	c.TsigSecret = map[string]string{keyName + ".": "d3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmc="}
	if r, _, _ := c.Exchange(signed(soaQuery()), addr); r == nil || r.Rcode != dns.RcodeNotAuth || r.IsTsig().Error != dns.RcodeBadSig {
		t.Errorf("SOA query with a wrong secret: %v; want NOTAUTH, TSIG error BADSIG", r)
	}
	other := new(dns.Msg)
	other.SetQuestion("other.zone.", dns.TypeSOA)
	if r := exchange(t, "udp", addr, signed(other)); r.Rcode != dns.RcodeRefused {
		t.Errorf("SOA query for a zone not served: %s; want REFUSED", dns.RcodeToString[r.Rcode])
	}
	var axfr dns.Msg
	axfr.SetAxfr("rpz.test.")
	if r := exchange(t, "udp", addr, signed(&axfr)); r.Rcode != dns.RcodeFormatError {
		t.Errorf("AXFR over UDP: %s; want FORMERR (TCP only)", dns.RcodeToString[r.Rcode])
	}

	_, closed := startPrimary(t, f, func(c *Config) { c.Allow = []string{"10.0.0.0/8"} })
	if r := exchange(t, "tcp", closed, signed(soaQuery())); r.Rcode != dns.RcodeRefused {
		t.Errorf("SOA query from outside allow: %s; want REFUSED", dns.RcodeToString[r.Rcode])
	}
}

func TestPrimaryIXFRAndNotify(t *testing.T) {
	notified := make(chan *dns.Msg, 4)
	sec := &dns.Server{Addr: "127.0.0.1:0", Net: "udp", TsigSecret: map[string]string{keyName + ".": secret}}
	sec.Handler = dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if w.TsigStatus() != nil || r.IsTsig() == nil {
			m.Rcode = dns.RcodeRefused
		} else {
			m.SetTsig(keyName+".", dns.HmacSHA256, 300, time.Now().Unix())
			notified <- r
		}
		w.WriteMsg(m)
	})
	ready := make(chan struct{})
	sec.NotifyStartedFunc = func() { close(ready) }
	go sec.ListenAndServe()
	<-ready
	t.Cleanup(func() { sec.Shutdown() })

	f := newPolicy(t, "tiktok.com\nold.example\n", "")
	s, addr := startPrimary(t, f, func(c *Config) { c.Notify = []string{sec.PacketConn.LocalAddr().String()} })
	before := s.Zones()[0].Serial

	f.change(t, "tiktok.com\nold.example\n", "") // the same policy: no new serial
	time.Sleep(200 * time.Millisecond)           // the primary follows the engine asynchronously
	if s.Zones()[0].Serial != before {
		t.Errorf("a reload without change moved the serial")
	}
	f.change(t, "tiktok.com\nnew.example\n", "") // a different file size, so the poll sees it too
	var after uint32
	deadline := time.Now().Add(2 * time.Second)
	for after == 0 && time.Now().Before(deadline) {
		if z := s.Zones()[0]; z.Serial != before {
			after = z.Serial
		}
		time.Sleep(5 * time.Millisecond)
	}
	if after == 0 {
		t.Fatalf("serial did not change after a policy change")
	}
	select {
	case n := <-notified:
		if n.Opcode != dns.OpcodeNotify || n.Question[0].Name != "rpz.test." {
			t.Errorf("NOTIFY = %v", n)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no signed NOTIFY reached the secondary")
	}

	var q dns.Msg
	q.SetIxfr("rpz.test.", before, "localhost.", "hostmaster.rpz.test.")
	got := transfer(t, addr, &q)
	want := []string{
		fmt.Sprintf("rpz.test. 60 IN SOA localhost. hostmaster.rpz.test. %d", after),
		fmt.Sprintf("rpz.test. 60 IN SOA localhost. hostmaster.rpz.test. %d", before),
		"old.example.rpz.test. 60 IN CNAME .", "*.old.example.rpz.test. 60 IN CNAME .",
		fmt.Sprintf("rpz.test. 60 IN SOA localhost. hostmaster.rpz.test. %d", after),
		"new.example.rpz.test. 60 IN CNAME .", "*.new.example.rpz.test. 60 IN CNAME .",
		fmt.Sprintf("rpz.test. 60 IN SOA localhost. hostmaster.rpz.test. %d", after),
	}
	if len(got) != len(want) {
		t.Fatalf("IXFR:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("IXFR record %d = %q; want %q", i, got[i], want[i])
		}
	}

	q.SetIxfr("rpz.test.", before-1000, "localhost.", "hostmaster.rpz.test.")
	if full := transfer(t, addr, &q); len(full) != 7 {
		t.Errorf("IXFR from an unknown serial: %d records; want the whole zone (SOA, NS, 4 policy records, SOA)", len(full))
	}
	q.SetIxfr("rpz.test.", after, "localhost.", "hostmaster.rpz.test.")
	if r := exchange(t, "udp", addr, signed(&q)); len(r.Answer) != 1 || r.Answer[0].(*dns.SOA).Serial != after {
		t.Errorf("IXFR over UDP: %v; want only the current SOA", r)
	}
}
