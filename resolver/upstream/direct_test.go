package upstream

import (
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"
)

func directPick(t *testing.T, f *Forwarder) []string {
	t.Helper()
	addrs, idxs := make([]netip.AddrPort, 2), make([]int, 2)
	n, timeout := f.DirectUDP(time.Now(), addrs, idxs)
	if n > 0 && timeout != f.timeout {
		t.Fatalf("timeout %v, want the forwarder's %v", timeout, f.timeout)
	}
	var got []string
	for i := range n {
		if f.ups[idxs[i]].tr.(*udpTransport).addr != addrs[i] {
			t.Fatalf("address %v does not belong to upstream %d", addrs[i], idxs[i])
		}
		got = append(got, addrs[i].String())
	}
	return got
}

func TestDirectUDPFollowsTheStrategy(t *testing.T) {
	a, b, c := "127.0.0.1:5001", "127.0.0.1:5002", "127.0.0.1:5003"
	newF := func(strategy string, servers ...string) *Forwarder {
		f, err := New(Config{Servers: servers, Strategy: strategy, Timeout: time.Second}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	same := func(got []string, want ...string) bool {
		if len(got) != len(want) {
			return false
		}
		for i := range got {
			if got[i] != want[i] {
				return false
			}
		}
		return true
	}

	f := newF(StrategyFailover, a, b, c)
	if got := directPick(t, f); !same(got, a) {
		t.Fatalf("failover: %v, want [%s]", got, a)
	}
	for range downAfter {
		f.ReportDirect(0, os.ErrDeadlineExceeded, time.Second)
	}
	if got := directPick(t, f); !same(got, b) {
		t.Fatalf("failover with the first down: %v, want [%s]", got, b)
	}
	f.ups[0].mu.Lock()
	f.ups[0].nextProbe = time.Now().Add(-time.Second)
	f.ups[0].mu.Unlock()
	if got := directPick(t, f); got != nil {
		t.Fatalf("a probe is due: %v, want nothing (Exchange probes)", got)
	}

	f = newF(StrategyRoundRobin, a, b, c)
	var seen []string
	for range 3 {
		seen = append(seen, directPick(t, f)...)
	}
	if !same(seen, a, b, c) {
		t.Fatalf("round_robin: %v, want each in turn", seen)
	}

	f = newF(StrategyParallelBest, a, b, c)
	f.ReportDirect(0, errors.New("refused"), time.Millisecond) // a: one failure
	f.ReportDirect(1, nil, 30*time.Millisecond)
	f.ReportDirect(2, nil, 10*time.Millisecond)
	if got := directPick(t, f); !same(got, c, b) {
		t.Fatalf("parallel_best: %v, want the two best, fastest first: [%s %s]", got, c, b)
	}
	if got := directPick(t, newF(StrategyParallelBest, a)); !same(got, a) {
		t.Fatalf("parallel_best with one upstream: %v, want [%s]", got, a)
	}

	if got := directPick(t, newF(StrategyFailover, "tcp://"+a, b)); got != nil {
		t.Fatalf("TCP first: %v, want nothing", got)
	}
	closed := newF(StrategyFailover, a)
	closed.Close()
	if got := directPick(t, closed); got != nil {
		t.Fatalf("closed forwarder: %v, want nothing", got)
	}
}
