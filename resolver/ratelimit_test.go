package resolver

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

var rlStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newTestLimiter(t testing.TB, mod func(*RateLimitConfig)) *RateLimiter {
	t.Helper()
	cfg := DefaultRateLimitConfig()
	cfg.QPS, cfg.Burst = 10, 5
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return NewRateLimiter(cfg, rlStart)
}

// allowedOf counts RateAllow among n checks of client at one instant.
func allowedOf(l *RateLimiter, client netip.Addr, group string, udp bool, n int, at time.Time) int {
	ok := 0
	for range n {
		if l.Check(client, group, udp, at) == RateAllow {
			ok++
		}
	}
	return ok
}

func TestRateLimitTokenBucket(t *testing.T) {
	l := newTestLimiter(t, nil) // 10 qps, burst 5
	c := netip.MustParseAddr("10.0.0.1")
	if got := allowedOf(l, c, "", true, 20, rlStart); got != 5 {
		t.Fatalf("burst: %d of 20 allowed at once, want 5", got)
	}
	if got := allowedOf(l, c, "", true, 5, rlStart.Add(100*time.Millisecond)); got != 1 {
		t.Fatalf("after 100 ms at 10 qps: %d allowed, want 1", got)
	}
	if got := allowedOf(l, c, "", true, 20, rlStart.Add(10*time.Second)); got != 5 {
		t.Fatalf("after 10 s quiet: %d allowed, want the full burst of 5", got)
	}
	// Sustained: a client at 100 qps for 10 s gets 10 qps plus the burst.
	l = newTestLimiter(t, nil)
	ok := 0
	for i := range 1000 {
		if l.Check(c, "", true, rlStart.Add(time.Duration(i)*10*time.Millisecond)) == RateAllow {
			ok++
		}
	}
	if ok < 100 || ok > 106 {
		t.Fatalf("100 qps for 10 s at a 10 qps limit: %d allowed, want 100-106", ok)
	}
	if allowedOf(l, netip.MustParseAddr("10.0.0.2"), "", true, 5, rlStart.Add(10*time.Second)) != 5 {
		t.Fatal("another client was limited by the first one's bucket")
	}
}

func TestRateLimitVerdicts(t *testing.T) {
	c := netip.MustParseAddr("192.0.2.7")
	limited := func(l *RateLimiter, udp bool) string {
		allowedOf(l, c, "", udp, 5, rlStart) // drain the burst
		var got []string
		for range 6 {
			got = append(got, l.Check(c, "", udp, rlStart).String())
		}
		return strings.Join(got, " ")
	}
	for _, tc := range []struct {
		action string
		slip   int
		udp    bool
		want   string
	}{
		{RateLimitRefuse, 2, true, "refuse slip refuse slip refuse slip"},
		{RateLimitDrop, 2, true, "drop slip drop slip drop slip"},
		{RateLimitDrop, 3, true, "drop drop slip drop drop slip"},
		{RateLimitDrop, 1, true, "slip slip slip slip slip slip"},
		{RateLimitDrop, 0, true, "drop drop drop drop drop drop"},
		{RateLimitRefuse, 2, false, "refuse refuse refuse refuse refuse refuse"}, // TCP: no slip
		{RateLimitDrop, 1, false, "drop drop drop drop drop drop"},
	} {
		l := newTestLimiter(t, func(c *RateLimitConfig) { c.Action, c.Slip = tc.action, tc.slip })
		if got := limited(l, tc.udp); got != tc.want {
			t.Errorf("action %s slip %d udp %v: %s, want %s", tc.action, tc.slip, tc.udp, got, tc.want)
		}
	}
	var off *RateLimiter
	if NewRateLimiter(DefaultRateLimitConfig(), rlStart) != nil || off.Check(c, "", true, rlStart) != RateAllow {
		t.Fatal("qps 0: want no limiter, and a nil limiter allows everything")
	}
}

// TestRateLimitTCPHasOwnBucket: a UDP flood with a client's spoofed
// address empties that address's UDP bucket, not its TCP one, so the real
// client, told TC=1 by a slip answer, gets through over TCP.
func TestRateLimitTCPHasOwnBucket(t *testing.T) {
	l := newTestLimiter(t, nil)
	victim := netip.MustParseAddr("10.1.1.1")
	allowedOf(l, victim, "", true, 1000, rlStart)
	if l.Check(victim, "", true, rlStart) == RateAllow {
		t.Fatal("UDP bucket not drained")
	}
	if got := allowedOf(l, victim, "", false, 10, rlStart); got != 5 {
		t.Fatalf("TCP after a UDP flood: %d allowed, want the full burst of 5", got)
	}
}

func TestRateLimitClientKeys(t *testing.T) {
	l := newTestLimiter(t, nil) // ipv6_prefix 56
	same := [][2]string{
		{"2001:db8:1:ab00::1", "2001:db8:1:abff:ffff::9"}, // one /56
		{"10.0.0.9", "::ffff:10.0.0.9"},                   // IPv4-mapped is the IPv4 client
		{"fe80::1%eth0", "fe80::2%eth1"},                  // zones do not split a client
	}
	for i, p := range same {
		at := rlStart.Add(time.Duration(i) * time.Hour)
		a, b := netip.MustParseAddr(p[0]), netip.MustParseAddr(p[1])
		if allowedOf(l, a, "", true, 5, at) != 5 || l.Check(b, "", true, at) == RateAllow {
			t.Errorf("%s and %s should share a bucket", p[0], p[1])
		}
	}
	apart := [][2]string{
		{"2001:db8:1:ab00::1", "2001:db8:1:ac00::1"}, // neighbouring /56s
		{"10.0.0.9", "10.0.0.10"},                    // IPv4 is per address
		{"0.0.0.1", "::1"},
	}
	for i, p := range apart {
		at := rlStart.Add(time.Duration(10+i) * time.Hour)
		a, b := netip.MustParseAddr(p[0]), netip.MustParseAddr(p[1])
		if allowedOf(l, a, "", true, 5, at) != 5 || l.Check(b, "", true, at) != RateAllow {
			t.Errorf("%s and %s should have separate buckets", p[0], p[1])
		}
	}
	l64 := newTestLimiter(t, func(c *RateLimitConfig) { c.IPv6Prefix = 64 })
	a, b := netip.MustParseAddr("2001:db8:1:ab00::1"), netip.MustParseAddr("2001:db8:1:ab01::1")
	if allowedOf(l64, a, "", true, 5, rlStart) != 5 || l64.Check(b, "", true, rlStart) != RateAllow {
		t.Error("ipv6_prefix 64: two /64s in one /56 should be separate")
	}
	if v := l.Check(netip.Addr{}, "", true, rlStart.Add(24*time.Hour)); v != RateAllow {
		t.Errorf("invalid address: %v (only the bucket of the zero key; no panic)", v)
	}
}

func TestRateLimitGroupOverrides(t *testing.T) {
	l := newTestLimiter(t, func(c *RateLimitConfig) {
		c.QPS, c.Burst = 20, 40
		c.Groups = map[string]GroupRateConfig{"office": {QPS: 2000, Burst: 4000}, "servers": {QPS: 0}, "tight": {QPS: 3}}
	})
	for _, tc := range []struct {
		group, client string
		want          int
	}{
		{"office", "10.20.0.1", 4000},
		{"", "10.20.0.2", 40},
		{"phones", "10.20.0.3", 40}, // no override: the base rate
		{"servers", "10.20.0.4", 5000},
		{"tight", "10.20.0.5", 3}, // burst 0: one second's worth
	} {
		if got := allowedOf(l, netip.MustParseAddr(tc.client), tc.group, true, 5000, rlStart); got != tc.want {
			t.Errorf("group %q: %d of 5000 allowed at once, want %d", tc.group, got, tc.want)
		}
	}
}

// TestRateLimitSpoofedFlood: one million queries from one million spoofed
// addresses (one second at 1M QPS on the limiter's clock) neither grow the
// table nor free the clients it is limiting: a flooder stays at its rate,
// and a client sending at twice its rate keeps its bucket throughout.
func TestRateLimitSpoofedFlood(t *testing.T) {
	l := newTestLimiter(t, func(c *RateLimitConfig) { c.QPS, c.Burst = 10, 20 })
	flooder, steady, quiet := netip.MustParseAddr("10.9.9.9"), netip.MustParseAddr("10.8.8.8"), netip.MustParseAddr("10.7.7.7")
	rng := rand.New(rand.NewPCG(1, 2))
	var flood, steadyOK, quietOK, quietSent int
	for i := range 1_000_000 {
		now := rlStart.Add(time.Duration(i) * time.Microsecond)
		l.Check(spoofed(rng, i), "", true, now)
		if i%100 == 0 && l.Check(flooder, "", true, now) == RateAllow { // 10k QPS
			flood++
		}
		if i%50_000 == 0 && l.Check(steady, "", true, now) == RateAllow { // 20 QPS
			steadyOK++
		}
		if i%200_000 == 0 { // 5 QPS: under its rate
			quietSent++
			if l.Check(quiet, "", true, now) == RateAllow {
				quietOK++
			}
		}
	}
	// 1 s at 10 QPS after a burst of 20: 30 (one more at the boundary).
	if flood < 29 || flood > 31 {
		t.Errorf("flooder at 10k QPS got %d answers in 1 s, want ~30: the flood reset its bucket", flood)
	}
	if steadyOK != 20 {
		t.Errorf("steady client at 20 QPS got %d of 20, want 20 (its burst)", steadyOK)
	}
	if quietOK != quietSent {
		t.Errorf("client under its rate got %d of %d answers", quietOK, quietSent)
	}
	if n := len(l.sets); n != rateSets {
		t.Fatalf("table has %d sets, want the fixed %d", n, rateSets)
	}
	// The flooder is still known and still limited after the flood.
	if l.Check(flooder, "", true, rlStart.Add(time.Second)) == RateAllow &&
		l.Check(flooder, "", true, rlStart.Add(time.Second)) == RateAllow {
		t.Error("flooder got a fresh burst after the flood")
	}
	allocs := testing.AllocsPerRun(10_000, func() {
		l.Check(spoofed(rng, 7), "", true, rlStart.Add(2*time.Second))
	})
	if allocs != 0 {
		t.Errorf("a check from a new address allocates %.1f times, want 0 (the table must not grow)", allocs)
	}
}

// spoofed returns a random IPv4 address, or every fourth time an IPv6 one.
func spoofed(rng *rand.Rand, i int) netip.Addr {
	if i%4 == 3 {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:], rng.Uint64())
		binary.BigEndian.PutUint64(b[8:], rng.Uint64())
		return netip.AddrFrom16(b)
	}
	return netip.AddrFrom4([4]byte{10 + byte(rng.IntN(100)), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())})
}

func TestRateLimitZeroAllocs(t *testing.T) {
	l := newTestLimiter(t, func(c *RateLimitConfig) { c.Groups = map[string]GroupRateConfig{"office": {QPS: 100}} })
	c6 := netip.MustParseAddr("2001:db8::1")
	c4 := netip.MustParseAddr("10.0.0.1")
	now := rlStart
	if a := testing.AllocsPerRun(1000, func() {
		l.Check(c6, "office", true, now)
		l.Check(c4, "", false, now)
		now = now.Add(time.Millisecond)
	}); a != 0 {
		t.Fatalf("Check allocates %.1f times per run, want 0", a)
	}
}

// TestRateLimitConcurrent: two read threads checking the same client at
// one instant share one bucket exactly (run with -race).
func TestRateLimitConcurrent(t *testing.T) {
	l := newTestLimiter(t, func(c *RateLimitConfig) { c.QPS, c.Burst = 100, 1000 })
	c := netip.MustParseAddr("10.3.3.3")
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range 2 {
		wg.Go(func() {
			ok := allowedOf(l, c, "", true, 2000, rlStart)
			for i := range 2000 { // other clients meanwhile
				l.Check(netip.AddrFrom4([4]byte{10, 4, byte(i >> 8), byte(i)}), "", true, rlStart)
			}
			mu.Lock()
			total += ok
			mu.Unlock()
		})
	}
	wg.Wait()
	if total != 1000 {
		t.Fatalf("two threads got %d answers from a burst of 1000", total)
	}
}

func TestRateLimitConfigValidate(t *testing.T) {
	good := DefaultRateLimitConfig()
	if err := good.Validate(); err != nil {
		t.Fatalf("default: %v", err)
	}
	for _, tc := range []struct {
		mod func(*RateLimitConfig)
		key string
	}{
		{func(c *RateLimitConfig) { c.QPS = -1 }, "rate_limit.qps"},
		{func(c *RateLimitConfig) { c.QPS = 0.0001 }, "rate_limit.qps"},
		{func(c *RateLimitConfig) { c.Burst = -1 }, "rate_limit.burst"},
		{func(c *RateLimitConfig) { c.IPv6Prefix = 0 }, "rate_limit.ipv6_prefix"},
		{func(c *RateLimitConfig) { c.IPv6Prefix = 129 }, "rate_limit.ipv6_prefix"},
		{func(c *RateLimitConfig) { c.Action = "block" }, "rate_limit.action"},
		{func(c *RateLimitConfig) { c.Slip = -1 }, "rate_limit.slip"},
		{func(c *RateLimitConfig) {
			c.Groups = map[string]GroupRateConfig{"b": {QPS: 1, Burst: -5}, "a": {QPS: -2}}
		}, "rate_limit.groups.a.qps"},
	} {
		c := DefaultRateLimitConfig()
		c.QPS = 10
		tc.mod(&c)
		var ce *ConfigError
		if err := c.Validate(); !errors.As(err, &ce) || ce.Key() != tc.key {
			t.Errorf("%+v: %v, want an error at %s", c, err, tc.key)
		}
	}
}

func BenchmarkRateLimitCheck(b *testing.B) {
	l := newTestLimiter(b, func(c *RateLimitConfig) { c.QPS, c.Burst = 1e6, 1e6 })
	c := netip.MustParseAddr("10.0.0.1")
	now := rlStart
	b.ReportAllocs()
	for b.Loop() {
		l.Check(c, "", true, now)
	}
}

// BenchmarkRateLimitCheckParallel: many clients from every P at once, the
// shape of the UDP read threads.
func BenchmarkRateLimitCheckParallel(b *testing.B) {
	l := newTestLimiter(b, func(c *RateLimitConfig) { c.QPS, c.Burst = 100, 200 })
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 3))
		now := rlStart
		for pb.Next() {
			l.Check(netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(40)), byte(rng.Uint32())}), "", true, now)
		}
	})
}
