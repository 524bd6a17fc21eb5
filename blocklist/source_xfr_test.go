package blocklist

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestXFRTransfersAndBlocks(t *testing.T) {
	p := startTestPrimary(t, "rpz.test", true, "bad.example", "*.wild.example")
	e := newEngine(t, xfrConfig(p.source(), true), Options{})
	expect(t, e, "10.0.0.1", "bad.example", Block, "rpz")
	expect(t, e, "10.0.0.1", "x.wild.example", Block, "rpz")
	expect(t, e, "10.0.0.1", "good.example", Allow, "")
	z := zoneOf(t, e, "rpz")
	if !z.Loaded || z.Serial != 1 || z.LastTransfer != "axfr" || z.Records != 4 || z.Zone != "rpz.test." {
		t.Errorf("zone status = %+v; want serial 1 by axfr, 4 records (SOA, NS, 2 CNAME)", z)
	}
	if z.Transfers["axfr"].OK != 1 || z.NextRefresh.IsZero() || z.ExpiresAt.IsZero() {
		t.Errorf("zone status = %+v; want one AXFR counted and the timers set", z)
	}
}

func TestXFRNotifyTriggersIXFR(t *testing.T) {
	p := startTestPrimary(t, "rpz.test", true, "bad.example", "old.example")
	e := newEngine(t, xfrConfig(p.source(), true), Options{PollInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx)

	p.publish("bad.example", "new.example")
	reply := new(dns.Msg)
	raw := e.HandleNotify(notifyMsg(t, "rpz.test.", testSecret), p.addrPort().Addr())
	if err := reply.Unpack(raw); err != nil || reply.Rcode != dns.RcodeSuccess || !reply.Authoritative || reply.Opcode != dns.OpcodeNotify {
		t.Fatalf("NOTIFY reply = %v (err %v); want an authoritative NOERROR NOTIFY response", reply, err)
	}
	took := waitUntil(t, 2*time.Second, "new.example to be blocked", func() bool {
		return e.Decide(addr("10.0.0.1"), "new.example").Action == Block
	})
	t.Logf("NOTIFY to enforcement: %s", took)
	expect(t, e, "10.0.0.1", "old.example", Allow, "")
	expect(t, e, "10.0.0.1", "bad.example", Block, "rpz")
	z := zoneOf(t, e, "rpz")
	if z.Serial != 2 || z.LastTransfer != "ixfr" || z.Transfers["ixfr"].OK != 1 || p.count(dns.TypeAXFR) != 1 {
		t.Errorf("zone = %+v, primary saw %d AXFR; want serial 2 by one IXFR after the first AXFR", z, p.count(dns.TypeAXFR))
	}
}

func TestXFRFallsBackToAXFR(t *testing.T) {
	for _, tc := range []struct {
		name string
		knob func(*testPrimary)
		ixfr TransferCounts
	}{
		{"refused", func(p *testPrimary) { p.refuseIX = true }, TransferCounts{Failed: 1}},
		{"answered with the full zone", func(p *testPrimary) { p.fullIX = true }, TransferCounts{}},
		{"answered with only a newer SOA", func(p *testPrimary) { p.soaOnlyIX = true }, TransferCounts{Failed: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startTestPrimary(t, "rpz.test", false, "bad.example")
			e := newEngine(t, xfrConfig(p.source(), false), Options{})
			p.set(tc.knob)
			p.publish("bad.example", "new.example")
			if err := e.Reload(context.Background()); err != nil {
				t.Fatal(err)
			}
			expect(t, e, "10.0.0.1", "new.example", Block, "rpz")
			z := zoneOf(t, e, "rpz")
			if z.Serial != 2 || z.LastTransfer != "axfr" || z.Transfers["ixfr"] != tc.ixfr || z.Transfers["axfr"].OK != 2 {
				t.Errorf("zone = %+v; want serial 2 by AXFR, ixfr counts %+v", z, tc.ixfr)
			}
		})
	}
}

func TestXFRUpToDateDoesNotTransfer(t *testing.T) {
	p := startTestPrimary(t, "rpz.test", false, "bad.example")
	e := newEngine(t, xfrConfig(p.source(), false), Options{})
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := p.count(dns.TypeAXFR) + p.count(dns.TypeIXFR); n != 1 || p.count(dns.TypeSOA) != 2 {
		t.Errorf("primary saw %d transfers and %d SOA queries; want 1 transfer, 2 SOA checks", n, p.count(dns.TypeSOA))
	}
}

func TestXFRRestartUsesSavedCopyAndIXFR(t *testing.T) {
	dir := t.TempDir()
	p := startTestPrimary(t, "rpz.test", true, "bad.example")
	newEngine(t, xfrConfig(p.source(), true), Options{StateDir: dir})

	// Restart with the primary changed: IXFR from the saved serial.
	p.publish("bad.example", "new.example")
	e2 := newEngine(t, xfrConfig(p.source(), true), Options{StateDir: dir})
	expect(t, e2, "10.0.0.1", "new.example", Block, "rpz")
	if p.count(dns.TypeIXFR) != 1 || p.count(dns.TypeAXFR) != 1 {
		t.Errorf("primary saw %d IXFR and %d AXFR; want the restart to ask IXFR from the saved serial", p.count(dns.TypeIXFR), p.count(dns.TypeAXFR))
	}

	// Restart with the primary down: the saved copy (serial 2) is enforced.
	p.stop()
	e3 := newEngine(t, xfrConfig(p.source(), true), Options{StateDir: dir})
	expect(t, e3, "10.0.0.1", "new.example", Block, "rpz")
	z, ls := zoneOf(t, e3, "rpz"), listStatus(t, e3, "rpz")
	if z.Serial != 2 || ls.OK || ls.Sources[0].Error == "" || !strings.Contains(ls.Sources[0].Outcome, "saved") {
		t.Errorf("after a restart with the primary down: zone %+v, list %+v; want serial 2 from the saved copy and the error shown", z, ls)
	}
}

func TestXFRWrongKeyKeepsPolicy(t *testing.T) {
	p := startTestPrimary(t, "rpz.test", true, "bad.example")
	cfg := xfrConfig(p.source(), true)
	e := newEngine(t, cfg, Options{})
	wrong := xfrConfig(p.source(), true)
	wrong.TSIGKeys["transfer-key"] = TSIGKeyConfig{Algorithm: "hmac-sha256", Secret: "d3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmc="}
	if err := e.Apply(context.Background(), wrong); err != nil {
		t.Fatal(err)
	}
	p.publish("bad.example", "new.example")
	err := e.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "NOTAUTH") || !strings.Contains(err.Error(), "TSIG") {
		t.Errorf("Reload with the wrong secret: %v; want the primary's NOTAUTH and the TSIG error", err)
	}
	expect(t, e, "10.0.0.1", "bad.example", Block, "rpz")
	expect(t, e, "10.0.0.1", "new.example", Allow, "")
	if ls := listStatus(t, e, "rpz"); ls.OK || !strings.Contains(ls.Sources[0].Error, "TSIG") {
		t.Errorf("list status %+v; want the TSIG failure shown", ls)
	}

	// Nothing is accepted from a key the engine does not have either.
	if _, err := NewEngine(context.Background(), wrong, Options{Logger: quiet()}); err == nil {
		t.Errorf("NewEngine with a wrong key and no saved copy succeeded; want it to fail loudly")
	}
}

func TestXFRExpiry(t *testing.T) {
	for _, onExpire := range []string{"", OnExpireDrop} {
		t.Run("on_expire="+onExpire, func(t *testing.T) {
			p := startTestPrimary(t, "rpz.test", false, "bad.example")
			p.set(func(p *testPrimary) { p.expire = 1 })
			cfg := xfrConfig(p.source(), false)
			l := cfg.Lists["rpz"]
			l.OnExpire = onExpire
			cfg.Lists["rpz"] = l
			e := newEngine(t, cfg, Options{})
			p.stop()
			time.Sleep(1100 * time.Millisecond)
			err := e.Reload(context.Background())
			if err == nil || !strings.Contains(err.Error(), "ZONE EXPIRED") {
				t.Fatalf("Reload after expire: %v; want ZONE EXPIRED", err)
			}
			if !zoneOf(t, e, "rpz").Expired {
				t.Errorf("zone status does not say expired")
			}
			want, list := Block, "rpz"
			if onExpire == OnExpireDrop {
				want, list = Allow, ""
			}
			expect(t, e, "10.0.0.1", "bad.example", want, list)
		})
	}
}

func TestSerialNewer(t *testing.T) {
	for _, c := range []struct {
		a, b uint32
		want bool
	}{
		{2, 1, true}, {1, 2, false}, {1, 1, false},
		{0, 0xffffffff, true}, {0xffffffff, 0, false}, // wrap
		{0x7fffffff, 0, true}, {0x80000000, 0, false}, // half the space is undefined: not newer
	} {
		if got := serialNewer(c.a, c.b); got != c.want {
			t.Errorf("serialNewer(%d, %d) = %v; want %v", c.a, c.b, got, c.want)
		}
	}
}

func notifyMsg(t testing.TB, zone, secret string) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetNotify(zone)
	if secret == "" {
		out, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	m.SetTsig(testKeyName, dns.HmacSHA256, 300, time.Now().Unix())
	out, _, err := dns.TsigGenerate(m, secret, "", false)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestXFRMultiStepIXFR: two versions behind, the primary sends two
// difference sequences; a name added then removed ends up absent.
func TestXFRMultiStepIXFR(t *testing.T) {
	p := startTestPrimary(t, "rpz.test", false, "bad.example", "gone.example")
	e := newEngine(t, xfrConfig(p.source(), false), Options{})
	p.publish("bad.example", "brief.example", "kept.example")
	p.publish("bad.example", "kept.example", "late.example")
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]Action{"bad.example": Block, "kept.example": Block, "late.example": Block,
		"brief.example": Allow, "gone.example": Allow} {
		if got := e.Decide(addr("10.0.0.1"), name).Action; got != want {
			t.Errorf("%s: %s; want %s", name, actionName(got), actionName(want))
		}
	}
	if z := zoneOf(t, e, "rpz"); z.Serial != 3 || z.LastTransfer != "ixfr" || z.Records != 5 {
		t.Errorf("zone %+v; want serial 3 by IXFR with 5 records (SOA, NS, 3 CNAME)", z)
	}
}

func BenchmarkApplyDiff1M5(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("rpz.test.\t60\tIN\tSOA\tns.rpz.test. admin.rpz.test. 1 3600 60 604800 60\n")
	for i := range 1_500_000 {
		fmt.Fprintf(&sb, "host%07d.threat.example.rpz.test.\t60\tIN\tCNAME\t.\n", i)
	}
	old := packContent([]byte(sb.String()))
	d := newZoneDiff()
	for i := range 500 {
		rr, _ := dns.NewRR(fmt.Sprintf("host%07d.threat.example.rpz.test. 60 IN CNAME .", i))
		d.del(rr)
		rr, _ = dns.NewRR(fmt.Sprintf("new%07d.threat.example.rpz.test. 60 IN CNAME .", i))
		d.add(rr)
	}
	soa, _ := dns.NewRR("rpz.test. 60 IN SOA ns.rpz.test. admin.rpz.test. 2 3600 60 604800 60")
	b.ResetTimer()
	for b.Loop() {
		text, err := applyDiff(old.reader(), old.size, soa.(*dns.SOA), d)
		if err != nil || text.records != 1_500_001 {
			b.Fatalf("%v, %d records", err, text.records)
		}
		text.content()
	}
}

func TestInZone(t *testing.T) {
	for _, c := range []struct {
		name, zone string
		want       bool
	}{
		{"a.rpz.test.", "rpz.test.", true}, {"RPZ.Test.", "rpz.test.", true}, {"x.A.rpz.test.", "rpz.test.", true},
		{"xrpz.test.", "rpz.test.", false}, {"test.", "rpz.test.", false}, {"a.", ".", true},
	} {
		if got := inZone(c.name, c.zone); got != c.want {
			t.Errorf("inZone(%q, %q) = %v; want %v", c.name, c.zone, got, c.want)
		}
	}
}
