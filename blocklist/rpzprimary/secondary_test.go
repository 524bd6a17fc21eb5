package rpzprimary

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/dnsward/dnsward/blocklist"
)

// secondaryEngine is a dnsward engine whose list is this primary's zone,
// with a UDP listener of its own handing NOTIFY to it.
type secondaryEngine struct {
	engine *blocklist.Engine
	notify string // its NOTIFY listener
}

func notifySocket(t testing.TB) (net.PacketConn, string) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc, pc.LocalAddr().String()
}

func serveNotify(pc net.PacketConn, e *blocklist.Engine) {
	buf := make([]byte, 65535)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return // closed
		}
		ap := from.(*net.UDPAddr).AddrPort()
		if reply := e.HandleNotify(buf[:n], ap.Addr()); reply != nil {
			pc.WriteTo(reply, from)
		}
	}
}

func startSecondary(t testing.TB, primary string, pc net.PacketConn) *blocklist.Engine {
	t.Helper()
	cfg := blocklist.Config{
		Lists:        map[string]blocklist.ListConfig{"fleet": {Sources: []string{"axfr://" + primary + "/rpz.test"}, TSIG: keyName}},
		Groups:       []blocklist.GroupConfig{{Name: "all", Clients: []string{"0.0.0.0/0"}, Block: []string{"fleet"}}},
		DefaultGroup: "all",
		TSIGKeys:     map[string]blocklist.TSIGKeyConfig{keyName: {Algorithm: "hmac-sha256", Secret: secret}},
	}
	e, err := blocklist.NewEngine(context.Background(), cfg, blocklist.Options{Logger: quiet(), PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go e.Run(ctx)
	go serveNotify(pc, e)
	return e
}

func blocked(e *blocklist.Engine, name string) bool {
	return e.Decide(netip.MustParseAddr("10.0.0.1"), name).Action == blocklist.Block
}

// TestDnswardSecondariesConverge: one dnsward primary, three dnsward
// engines as its secondaries; one policy change; each blocks the new name
// within 2 s, and the primary's exceptions are honoured downstream.
func TestDnswardSecondariesConverge(t *testing.T) {
	f := newPolicy(t, "tiktok.com\n", "safe.tiktok.com\n")
	var socks []net.PacketConn
	var addrs []string
	for range 3 {
		pc, a := notifySocket(t)
		socks, addrs = append(socks, pc), append(addrs, a)
	}
	_, primary := startPrimary(t, f, func(c *Config) { c.Notify = addrs })
	var replicas []*blocklist.Engine
	for _, pc := range socks {
		replicas = append(replicas, startSecondary(t, primary, pc))
	}
	for i, e := range replicas {
		if !blocked(e, "www.tiktok.com") || blocked(e, "safe.tiktok.com") || blocked(e, "x.safe.tiktok.com") || blocked(e, "example.com") {
			t.Errorf("replica %d does not enforce the primary's policy", i)
		}
	}

	start := time.Now()
	f.change(t, "tiktok.com\nbytedance.com\n", "safe.tiktok.com\n")
	var slowest time.Duration
	for i, e := range replicas {
		for !blocked(e, "bytedance.com") {
			if time.Since(start) > 2*time.Second {
				t.Fatalf("replica %d did not block bytedance.com within 2 s", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
		took := time.Since(start)
		slowest = max(slowest, took)
		t.Logf("replica %d enforces the change %s after the primary's reload", i, took)
		for _, ls := range e.Lists() {
			if z := ls.Sources[0].Zone; z == nil || z.LastTransfer != "ixfr" {
				t.Errorf("replica %d: zone %+v; want the change by IXFR", i, z)
			}
		}
	}
	t.Logf("three dnsward replicas converged within %s", slowest)
}
