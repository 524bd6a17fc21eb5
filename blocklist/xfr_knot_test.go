package blocklist

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dnsward/dnsward/internal/dnstest"
)

// knotConfig is xfrConfig for a knotd zone, with the test key.
func knotConfig(k *dnstest.Knot) Config { return xfrConfig(k.Source(), true) }

func runEngine(t testing.TB, e *Engine) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go e.Run(ctx)
}

// TestKnotPrimary drives a real knotd: TSIG transfer, NOTIFY, IXFR of a
// change, enforcement within 2 s.
func TestKnotPrimary(t *testing.T) {
	sink := newNotifyListener(t)
	k := dnstest.StartKnot(t, "rpz.test", []string{"bad.example", "old.example"}, []string{sink.addr})
	e := newEngine(t, knotConfig(k), Options{PollInterval: time.Hour, StateDir: t.TempDir()})
	sink.engine.Store(e)
	runEngine(t, e)
	expect(t, e, "10.0.0.1", "bad.example", Block, "rpz")
	expect(t, e, "10.0.0.1", "new.example", Allow, "")

	start := time.Now()
	k.Change([]string{"new.example"}, []string{"old.example"})
	waitUntil(t, 2*time.Second, "new.example blocked after the change on knotd", func() bool {
		return e.Decide(addr("10.0.0.1"), "new.example").Action == Block
	})
	t.Logf("knotc zone-commit to enforcement: %s (NOTIFY, SOA check, IXFR, rebuild)", time.Since(start))
	expect(t, e, "10.0.0.1", "old.example", Allow, "")
	z := zoneOf(t, e, "rpz")
	if z.LastTransfer != "ixfr" || z.Serial != 2 || z.Transfers["ixfr"].OK != 1 {
		t.Errorf("zone %+v; want serial 2 by IXFR", z)
	}
	waitUntil(t, 2*time.Second, "knotd to log the IXFR", func() bool {
		return strings.Contains(k.Log(), "IXFR, outgoing")
	})
	if !strings.Contains(k.Log(), "notify, outgoing") {
		t.Errorf("knotd's log shows no NOTIFY sent:\n%s", k.Log())
	}
}

// TestKnotPrimaryDownAtStart: a restart while knotd is down enforces the
// saved copy; once it is back, IXFR continues from the saved serial.
func TestKnotPrimaryDownAtStart(t *testing.T) {
	dir := t.TempDir()
	k := dnstest.StartKnot(t, "rpz.test", []string{"bad.example"}, nil)
	newEngine(t, knotConfig(k), Options{StateDir: dir})
	k.Stop()

	e := newEngine(t, knotConfig(k), Options{StateDir: dir})
	expect(t, e, "10.0.0.1", "bad.example", Block, "rpz")
	ls := listStatus(t, e, "rpz")
	if ls.OK || ls.Sources[0].Error == "" || zoneOf(t, e, "rpz").Serial != 1 {
		t.Errorf("list %+v; want serial 1 from the saved copy and the primary's failure shown", ls)
	}
}

// TestKnotWrongKey: knotd refuses a transfer signed with the wrong secret;
// the old policy stays and the status says why.
func TestKnotWrongKey(t *testing.T) {
	k := dnstest.StartKnot(t, "rpz.test", []string{"bad.example"}, nil)
	e := newEngine(t, knotConfig(k), Options{})
	wrong := knotConfig(k)
	wrong.TSIGKeys["transfer-key"] = TSIGKeyConfig{Algorithm: "hmac-sha256", Secret: "d3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmc="}
	if err := e.Apply(context.Background(), wrong); err != nil {
		t.Fatal(err)
	}
	k.Change([]string{"new.example"}, nil)
	err := e.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "NOTAUTH") {
		t.Fatalf("Reload with the wrong secret: %v; want knotd's NOTAUTH", err)
	}
	expect(t, e, "10.0.0.1", "bad.example", Block, "rpz")
	expect(t, e, "10.0.0.1", "new.example", Allow, "")
	src := listStatus(t, e, "rpz").Sources[0]
	if !strings.Contains(src.Error, "TSIG") || src.Zone.Serial != 1 {
		t.Errorf("source status %+v; want the TSIG error and serial 1 kept", src)
	}
	t.Logf("status error: %s", src.Error)
}

// TestKnotConvergence: one knotd primary, three engines as secondaries,
// each with its own NOTIFY listener; one change; each blocks the new name
// within 2 s.
func TestKnotConvergence(t *testing.T) {
	sinks := []*notifyListener{newNotifyListener(t), newNotifyListener(t), newNotifyListener(t)}
	k := dnstest.StartKnot(t, "rpz.test", []string{"bad.example"}, []string{sinks[0].addr, sinks[1].addr, sinks[2].addr})
	var engines []*Engine
	for _, s := range sinks {
		e := newEngine(t, knotConfig(k), Options{PollInterval: time.Hour})
		s.engine.Store(e)
		runEngine(t, e)
		engines = append(engines, e)
	}
	start := time.Now()
	k.Change([]string{"new.example"}, nil)
	var slowest time.Duration
	for i, e := range engines {
		waitUntil(t, 2*time.Second, "a replica to block new.example", func() bool {
			return e.Decide(addr("10.0.0.1"), "new.example").Action == Block
		})
		took := time.Since(start)
		slowest = max(slowest, took)
		t.Logf("replica %d enforces the change %s after zone-commit", i, took)
	}
	t.Logf("all three replicas converged within %s", slowest)
}
