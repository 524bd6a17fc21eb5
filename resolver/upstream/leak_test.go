package upstream

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnstest"
)

// TestNoGoroutineLeaks runs every exchange path (races that get cancelled,
// timeouts, pooled TCP/TLS connections, DoH, background re-probes) and checks
// the goroutine count returns to where it was once the Forwarder is closed.
func TestNoGoroutineLeaks(t *testing.T) {
	good, _ := startUDPTCP(t, serve(zone))
	dotAddr, _, dotCert := startTLS(t, serve(zone))
	dohURL, dohCert, _ := startDoH(t, zone)
	silent := dnstest.Blackhole(t)
	dead := dnstest.ClosedPort(t, "udp")
	baseline := runtime.NumGoroutine()

	servers := []string{silent, dead, "tcp://" + good, "tls://dns.test@" + dotAddr, dohURL}
	for _, strategy := range []string{StrategyParallelBest, StrategyFailover, StrategyRoundRobin} {
		f, err := New(Config{Servers: servers, Strategy: strategy, Timeout: 150 * time.Millisecond},
			Options{TLSConfig: trust(dotCert, dohCert)})
		if err != nil {
			t.Fatal(err)
		}
		f.probeInterval = 10 * time.Millisecond
		for i := 0; i < 12; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(20+i*10)*time.Millisecond)
			f.Exchange(ctx, query("a.test.", dns.TypeA))
			cancel()
		}
		f.Close()
	}

	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > baseline && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > baseline {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines, %d before the Forwarders ran:\n%s", n, baseline, buf[:runtime.Stack(buf, true)])
	}
}
