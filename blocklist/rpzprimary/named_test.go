package rpzprimary

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// findProgram looks in PATH and the sbin directories a non-root PATH may miss.
func findProgram(t testing.TB, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			return p
		}
	}
	t.Skipf("%s is not installed (Debian package %s; .ci/run installs it)", name, pkg)
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// syncBuffer is a log buffer written by a child process and read by the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startUpstream answers every A query with 192.0.2.1: the resolver BIND
// forwards to.
func startUpstream(t testing.TB) string {
	t.Helper()
	srv := &dns.Server{Addr: "127.0.0.1:0", Net: "udp", Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if q := r.Question[0]; q.Qtype == dns.TypeA {
			rr, _ := dns.NewRR(q.Name + " 60 IN A 192.0.2.1")
			m.Answer = []dns.RR{rr}
		}
		w.WriteMsg(m)
	})}
	ready := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(ready) }
	go srv.ListenAndServe()
	<-ready
	t.Cleanup(func() { srv.Shutdown() })
	return srv.PacketConn.LocalAddr().String()
}

// startNamed runs BIND 9 as a secondary of primary for rpz.test, enforcing
// it as its response policy, forwarding everything else to upstream.
func startNamed(t testing.TB, port int, primary, upstream string) (addr string, log *syncBuffer) {
	t.Helper()
	bin := findProgram(t, "named", "bind9")
	dir := t.TempDir()
	host := func(a string) (string, string) { h, p, _ := strings.Cut(a, ":"); return h, p }
	ph, pp := host(primary)
	uh, up := host(upstream)
	conf := fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	listen-on port %[2]d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion yes;
	allow-query { 127.0.0.1; };
	dnssec-validation no;
	forwarders { %[3]s port %[4]s; };
	forward only;
	notify no;
	response-policy { zone "rpz.test" min-update-interval 0; } qname-wait-recurse no;
};
controls { };
key "%[5]s" { algorithm hmac-sha256; secret "%[6]s"; };
zone "rpz.test" {
	type secondary;
	primaries { %[7]s port %[8]s key "%[5]s"; };
	file "%[1]s/rpz.test.db";
	request-ixfr yes;
};
logging {
	channel out { stderr; severity info; print-time yes; };
	category default { out; };
	category xfer-in { out; };
	category notify { out; };
	category rpz { out; };
};
`, dir, port, uh, up, keyName, secret, ph, pp)
	confPath := filepath.Join(dir, "named.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	log = new(syncBuffer)
	cmd := exec.Command(bin, "-g", "-c", confPath, "-n", "1")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting named: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("named log:\n%s", log.String())
		}
	})
	return fmt.Sprintf("127.0.0.1:%d", port), log
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
	findProgram(t, "named", "bind9")
	f := newPolicy(t, "tiktok.com\n", "safe.tiktok.com\n")
	upstream := startUpstream(t)
	namedPort := freePort(t) // the primary must know where to send NOTIFY
	srv, primary := startPrimary(t, f, func(c *Config) { c.Notify = []string{fmt.Sprintf("127.0.0.1:%d", namedPort)} })
	named, log := startNamed(t, namedPort, primary, upstream)

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
