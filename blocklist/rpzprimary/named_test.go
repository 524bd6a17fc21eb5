package rpzprimary

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnstest"
)

// startUpstream answers every A query with 192.0.2.1: the resolver BIND
// forwards to.
func startUpstream(t testing.TB) string {
	t.Helper()
	addr, _ := dnstest.Serve(t, dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetReply(r)
		if q := r.Question[0]; q.Qtype == dns.TypeA {
			rr, _ := dns.NewRR(q.Name + " 60 IN A 192.0.2.1")
			m.Answer = []dns.RR{rr}
		}
		_ = w.WriteMsg(m)
	}))
	return addr
}

func resolve(addr, name string) (int, error) {
	c := &dns.Client{Timeout: 500 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		return -1, err
	}
	return r.Rcode, nil
}

// waitRcode polls named until name resolves with rcode, for up to d.
func waitRcode(t testing.TB, addr, name string, rcode int, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var got int
	var err error
	for time.Since(start) < d {
		if got, err = resolve(addr, name); err == nil && got == rcode {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("named answered %s for %s (err %v) for %s; want %s", dns.RcodeToString[got], name, err, d, dns.RcodeToString[rcode])
	return 0
}

// TestNamedSecondary: BIND 9 transfers dnsward's RPZ with TSIG and enforces
// it; a policy change reaches it by NOTIFY and IXFR.
func TestNamedSecondary(t *testing.T) {
	dnstest.FindProgram(t, "named", "bind9")
	f := newPolicy(t, "tiktok.com\n", "safe.tiktok.com\n")
	upstream := startUpstream(t)
	namedPort := dnstest.FreePort(t) // the primary must know where to send NOTIFY
	srv, primary := startPrimary(t, f, func(c *Config) { c.Notify = []string{fmt.Sprintf("127.0.0.1:%d", namedPort)} })
	named, log := dnstest.StartNamed(t, dnstest.NamedSecondary{Port: namedPort, Zone: "rpz.test", Primary: primary, Upstream: upstream})

	took := waitRcode(t, named, "www.tiktok.com", dns.RcodeNameError, 10*time.Second)
	t.Logf("named enforces the zone %s after start", took)
	for _, c := range []struct {
		name  string
		rcode int
	}{{"tiktok.com", dns.RcodeNameError}, {"safe.tiktok.com", dns.RcodeSuccess}, {"example.com", dns.RcodeSuccess}, {"bytedance.com", dns.RcodeSuccess}} {
		if got, err := resolve(named, c.name); err != nil || got != c.rcode {
			t.Errorf("named: %s = %s (err %v); want %s", c.name, dns.RcodeToString[got], err, dns.RcodeToString[c.rcode])
		}
	}

	start := time.Now()
	f.change(t, "tiktok.com\nbytedance.com\n", "safe.tiktok.com\n")
	waitRcode(t, named, "bytedance.com", dns.RcodeNameError, 10*time.Second)
	t.Logf("named enforces the change %s after the primary's reload (NOTIFY, IXFR)", time.Since(start))
	if z := srv.Zones()[0]; z.Transfers.IXFR != 1 || z.Transfers.AXFR != 1 {
		t.Errorf("primary served %+v; want one AXFR at start and one IXFR for the change", z.Transfers)
	}
	if !strings.Contains(log.String(), "received notify for zone 'rpz.test': TSIG 'transfer-key'") {
		t.Errorf("named's log shows no signed NOTIFY")
	}
}
