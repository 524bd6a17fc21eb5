package resolver

import (
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestRateLimitOverRealSockets: a client flooding from 127.0.0.5 is limited
// (REFUSED and TC replies no larger than its queries), while 127.0.0.6,
// asking at a normal pace meanwhile, gets every answer.
func TestRateLimitOverRealSockets(t *testing.T) {
	cfg := DefaultRateLimitConfig()
	cfg.QPS, cfg.Burst = 20, 10
	up := startUpstream(t, "flood.example. 300 IN A 192.0.2.1", "calm.example. 300 IN A 192.0.2.2")
	srv := startResolver(t, Config{RateLimit: cfg, Cache: CacheConfig{MaxEntries: 100}}, Options{}, up.addr)
	addr := srv.addr
	flood := &dns.Client{Net: "udp", Timeout: time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 5)}}}
	conn, err := flood.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	counts := map[string]int{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		calm := &dns.Client{Net: "udp", Timeout: time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 6)}}}
		for i := range 10 { // 10 queries 50 ms apart: under the 20 QPS limit
			r, _, err := calm.Exchange(new(dns.Msg).SetQuestion("calm.example.", dns.TypeA), addr)
			if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
				t.Errorf("calm client, query %d: %v %v", i, err, r)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	start := time.Now()
	for i := 0; i < 300 && time.Since(start) < 5*time.Second; i++ {
		q := new(dns.Msg).SetQuestion("flood.example.", dns.TypeA)
		q.SetEdns0(1232, false)
		qlen, _ := q.Pack()
		r, _, err := flood.ExchangeWithConn(q, conn)
		switch {
		case err != nil:
			counts["lost"]++
		case r.Truncated:
			counts["tc"]++
		case r.Rcode == dns.RcodeRefused:
			counts["refused"]++
		case len(r.Answer) == 1:
			counts["answered"]++
		}
		if err == nil && r.Rcode != dns.RcodeSuccess || err == nil && r.Truncated {
			if wire, _ := r.Pack(); len(wire) > len(qlen) {
				t.Errorf("limited reply of %d bytes to a %d-byte query", len(wire), len(qlen))
			}
		}
	}
	elapsed := time.Since(start)
	<-done
	t.Logf("flooder, %d queries in %v: %v", 300, elapsed, counts)
	maxAnswered := 10 + int(elapsed.Seconds()*20) + 1
	if counts["answered"] > maxAnswered || counts["refused"] == 0 || counts["tc"] == 0 || counts["lost"] != 0 {
		t.Errorf("flooder in %v: %v; want at most %d answered, the rest REFUSED and TC", elapsed, counts, maxAnswered)
	}
}
