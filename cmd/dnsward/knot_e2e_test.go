package main

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnstest"
)

// startKnotSecondary runs dnsward with knotd's zone as the list "rpz"
// (TSIG with the test key) blocking for 127.0.0.0/8, its DNS listener on
// listen: the address knotd sends NOTIFY to. The zone's SOA refresh is an
// hour, so only NOTIFY brings a change in time.
func startKnotSecondary(t *testing.T, k *dnstest.Knot, listen, upstream string) *app {
	t.Helper()
	body := fmt.Sprintf(`tsig_keys:
  %s: {algorithm: %s, secret: %q}
lists:
  rpz: {sources: [%q], tsig: %s}
groups:
  - {name: everyone, clients: ["127.0.0.0/8"], block: [rpz]}
`, dnstest.TSIGKeyName, dnstest.TSIGAlgorithm, dnstest.TSIGSecret, k.Source(), dnstest.TSIGKeyName)
	a := startApp(t, writeConfigOn(t, t.TempDir(), listen, upstream, body))
	if a.dnsAddr() != listen {
		t.Fatalf("dnsward listens on %s, knotd notifies %s", a.dnsAddr(), listen)
	}
	return a
}

// rcodeOver asks name's A record over network ("udp" or "tcp") from 127.0.0.1.
func rcodeOver(network, addr, name string) (int, error) {
	m, err := dnstest.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), network, "127.0.0.1", addr)
	if err != nil {
		return -1, err
	}
	return m.Rcode, nil
}

// wantRcodes checks name's answer over UDP and over TCP.
func wantRcodes(t *testing.T, addr, name string, rcode int) {
	t.Helper()
	for _, network := range []string{"udp", "tcp"} {
		if got, err := rcodeOver(network, addr, name); err != nil || got != rcode {
			t.Errorf("%s over %s: %s (err %v); want %s", name, network, dns.RcodeToString[got], err, dns.RcodeToString[rcode])
		}
	}
}

// waitBlocked polls over UDP until name is NXDOMAIN, for up to within, and
// returns how long it took.
func waitBlocked(t *testing.T, addr, name string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if got, err := rcodeOver("udp", addr, name); err == nil && got == dns.RcodeNameError {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s not blocked by %s within %s", name, addr, within)
	return 0
}

// waitReady polls /readyz until it answers 200, for up to 10 s.
func waitReady(t *testing.T, a *app) {
	t.Helper()
	url := "http://" + a.admin.Addr().String() + "/readyz"
	code := 0
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if code = resp.StatusCode; code == http.StatusOK {
				return
			}
		}
	}
	t.Fatalf("/readyz answered %d, not 200, for 10 s", code)
}

// signedNotify is a NOTIFY for zone signed with the test key, as BIND
// sends it over UDP.
func signedNotify(zone string) (*dns.Msg, *dns.Client) {
	m := new(dns.Msg).SetNotify(dns.Fqdn(zone))
	m.SetTsig(dnstest.TSIGKeyFQDN, dns.HmacSHA256, 300, time.Now().Unix())
	return m, &dns.Client{Timeout: 3 * time.Second, TsigSecret: map[string]string{dnstest.TSIGKeyFQDN: dnstest.TSIGSecret}}
}

// localDialer dials from src, for network "udp" or "tcp".
func localDialer(network, src string) *net.Dialer {
	var local net.Addr = &net.UDPAddr{IP: net.ParseIP(src)}
	if network == "tcp" {
		local = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	return &net.Dialer{LocalAddr: local, Timeout: 3 * time.Second}
}

// TestKnotNotifyThroughListener: knotd is the primary of an RPZ (TSIG)
// and sends NOTIFY to dnsward's own DNS listener (over TCP, as knotd 3.2
// does); dnsward blocks by the zone over UDP and TCP, and blocks a name
// added on knotd within 2 s, by IXFR; a NOTIFY from an address that is
// not the primary is REFUSED; /readyz stays green throughout.
func TestKnotNotifyThroughListener(t *testing.T) {
	up := startZoneServer(t, nil)
	listen := dnstest.FreeAddr(t)
	k := dnstest.StartKnot(t, "rpz.test", []string{"bad.example", "old.example"}, []string{listen})
	a := startKnotSecondary(t, k, listen, up.addr)
	waitReady(t, a)
	wantRcodes(t, listen, "bad.example.", dns.RcodeNameError)
	wantRcodes(t, listen, "old.example.", dns.RcodeNameError)
	wantRcodes(t, listen, "new.example.", dns.RcodeSuccess) // cached now: policy must still win after the change

	start := time.Now()
	k.Change([]string{"new.example"}, []string{"old.example"})
	took := waitBlocked(t, listen, "new.example.", 2*time.Second)
	t.Logf("new.example NXDOMAIN on dnsward's listener %s after knotc zone-commit returned, %s after the transaction began (four knotc runs; NOTIFY over TCP, SOA check, IXFR, rebuild)",
		took, time.Since(start))
	wantRcodes(t, listen, "new.example.", dns.RcodeNameError)
	wantRcodes(t, listen, "old.example.", dns.RcodeSuccess)

	// knotd logs a NOTIFY as sent only once the answer came back with a
	// TSIG it verified ("failed to verify TSIG" otherwise).
	if log := k.Log(); !strings.Contains(log, "notify, outgoing, remote "+strings.Replace(listen, ":", "@", 1)+", serial 2") {
		t.Errorf("knotd's log shows no answered NOTIFY to %s:\n%s", listen, log)
	}
	admin := "http://" + a.admin.Addr().String()
	if body := httpGet(t, admin+"/v1/lists"); !strings.Contains(body, `"last_transfer": "ixfr"`) || !strings.Contains(body, `"serial": 2`) {
		t.Errorf("/v1/lists = %s; want serial 2 by IXFR", body)
	}
	if m := httpGet(t, admin+"/metrics"); !strings.Contains(m, `dnsward_zone_transfers_total{list="rpz",outcome="success",type="ixfr"} 1`) ||
		!strings.Contains(m, `dnsward_zone_serial{list="rpz"} 2`) {
		t.Errorf("metrics lack the IXFR and serial 2")
	}

	// The same signed NOTIFY from 127.0.0.2, which is not the primary.
	for _, network := range []string{"udp", "tcp"} {
		m, c := signedNotify("rpz.test")
		c.Net = network
		c.Dialer = localDialer(network, "127.0.0.2")
		r, _, err := c.Exchange(m, listen)
		if err != nil || r.Rcode != dns.RcodeRefused || r.Opcode != dns.OpcodeNotify || !r.Response {
			t.Errorf("NOTIFY over %s from 127.0.0.2: %v (err %v); want a REFUSED NOTIFY response", network, r, err)
		}
	}
	waitReady(t, a)
	wantRcodes(t, listen, "bad.example.", dns.RcodeNameError)
}

// TestSignedNotifyOverUDP: a NOTIFY over UDP, as BIND sends it, signed
// and from the primary's address, reaches the zone through dnsward's
// listener: dnsward answers it signed and transfers the change within 2 s.
// knotd here notifies nobody, so the test's NOTIFY is the only trigger.
func TestSignedNotifyOverUDP(t *testing.T) {
	up := startZoneServer(t, nil)
	k := dnstest.StartKnot(t, "rpz.test", []string{"bad.example"}, nil)
	a := startKnotSecondary(t, k, dnstest.FreeAddr(t), up.addr)
	listen := a.dnsAddr()
	wantRcodes(t, listen, "bad.example.", dns.RcodeNameError)
	k.Change([]string{"new.example"}, nil)
	k.WaitServing(2, 2*time.Second)
	wantRcodes(t, listen, "new.example.", dns.RcodeSuccess) // no NOTIFY yet, no refresh due

	start := time.Now()
	m, c := signedNotify("rpz.test")
	c.Dialer = localDialer("udp", "127.0.0.1")
	r, _, err := c.Exchange(m, listen) // the client checks the reply's TSIG
	if err != nil || r.Rcode != dns.RcodeSuccess || r.Opcode != dns.OpcodeNotify || r.IsTsig() == nil {
		t.Fatalf("signed NOTIFY over UDP: %v (err %v); want a signed NOERROR NOTIFY response", r, err)
	}
	waitBlocked(t, listen, "new.example.", 2*time.Second)
	t.Logf("NOTIFY over UDP to dnsward's listener answering NXDOMAIN: %s", time.Since(start))
	if body := httpGet(t, "http://"+a.admin.Addr().String()+"/v1/lists"); !strings.Contains(body, `"last_transfer": "ixfr"`) {
		t.Errorf("/v1/lists = %s; want the change by IXFR", body)
	}
	waitReady(t, a)
}

// TestKnotFleetConvergence: one knotd primary, three dnsward apps as its
// secondaries, each notified on its own DNS listener; one change on knotd;
// every app's listener answers NXDOMAIN for the new name within 2 s.
func TestKnotFleetConvergence(t *testing.T) {
	up := startZoneServer(t, nil)
	listens := []string{dnstest.FreeAddr(t), dnstest.FreeAddr(t), dnstest.FreeAddr(t)}
	k := dnstest.StartKnot(t, "rpz.test", []string{"bad.example"}, listens)
	for _, l := range listens {
		startKnotSecondary(t, k, l, up.addr)
		wantRcodes(t, l, "bad.example.", dns.RcodeNameError)
	}
	k.Change([]string{"new.example"}, nil)
	committed := time.Now()
	var slowest time.Duration
	for i, l := range listens {
		waitBlocked(t, l, "new.example.", 2*time.Second)
		took := time.Since(committed)
		slowest = max(slowest, took)
		t.Logf("replica %d answers NXDOMAIN %s after knotc zone-commit returned", i, took)
	}
	t.Logf("all three replicas converged within %s", slowest)
}
