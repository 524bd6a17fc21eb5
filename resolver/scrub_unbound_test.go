package resolver

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dnsward/dnsward/internal/dnstest"
)

// caseUpstream is a DNS server on loopback that sends a scrubCase's raw
// reply, poison included, for the case's question, and the clean records
// for any other name of the case (what Unbound asks when it follows a
// chain itself).
type caseUpstream struct {
	mu   sync.Mutex
	c    scrubCase
	t    testing.TB
	addr string
}

func startCaseUpstream(t *testing.T) *caseUpstream {
	t.Helper()
	u := &caseUpstream{t: t}
	u.addr, _ = dnstest.Serve(t, u)
	return u
}

func (u *caseUpstream) set(c scrubCase) {
	u.mu.Lock()
	u.c = c
	u.mu.Unlock()
}

func (u *caseUpstream) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	u.mu.Lock()
	c := u.c
	u.mu.Unlock()
	q := req.Question[0]
	var m *dns.Msg
	if strings.EqualFold(q.Name, c.qname) && q.Qtype == c.qtype {
		_, m = c.packet(u.t)
	} else {
		clean := c
		clean.qname, clean.qtype, clean.an, clean.ns, clean.ar = q.Name, q.Qtype, c.wantAn, c.wantNs, c.wantAr
		var cq dns.Question
		cq, m = clean.packet(u.t)
		scrub(cq, m)
	}
	m.Id, m.Question, m.RecursionDesired = req.Id, req.Question, req.RecursionDesired
	w.WriteMsg(m)
}

// unboundFor runs Unbound forwarding "." to upstream and returns its address.
func unboundFor(t *testing.T, upstream string) string {
	t.Helper()
	bin, err := exec.LookPath("unbound")
	if err != nil {
		t.Skip("unbound not installed (Debian: apt-get install unbound; .ci/run installs it)")
	}
	dir := t.TempDir()
	port := freeLoopbackPort(t)
	host, upPort, _ := net.SplitHostPort(upstream)
	conf := fmt.Sprintf(`server:
  interface: 127.0.0.1
  port: %d
  do-ip6: no
  access-control: 127.0.0.0/8 allow
  username: ""
  chroot: ""
  directory: %q
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 0
  num-threads: 1
  module-config: "iterator"
  do-not-query-localhost: no
  minimal-responses: no
  local-zone: "test." nodefault
forward-zone:
  name: "."
  forward-addr: %s@%s
`, port, dir, host, upPort)
	path := filepath.Join(dir, "unbound.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-d", "-c", path)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, _, err := c.Exchange(new(dns.Msg).SetQuestion("ready.invalid.", dns.TypeTXT), addr); err == nil {
			return addr
		}
	}
	t.Fatalf("unbound did not answer within 10 s:\n%s", logs.String())
	return ""
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// rrKey names a record without its TTL, for comparing across servers.
func rrKey(rr dns.RR) string {
	h := *rr.Header()
	h.Ttl, h.Name = 0, strings.ToLower(h.Name)
	c := dns.Copy(rr)
	*c.Header() = h
	return strings.ToLower(c.String())
}

func keysOf(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeOPT {
			out = append(out, rrKey(rr))
		}
	}
	slices.Sort(out)
	return out
}

// unboundSkips are the cases whose question Unbound answers in its own way,
// so a comparison says nothing about scrubbing.
var unboundSkips = map[string]string{
	"CNAME loop ends":                               "Unbound follows the loop itself and answers SERVFAIL",
	"long chain cut at the limit":                   "Unbound chases the chain itself, past our limit",
	"YXDOMAIN: DNAME kept, nothing synthesized":     "Unbound answers YXDOMAIN from its own synthesis",
	"ANY keeps everything at the name":              "Unbound answers ANY minimally",
	"RRSIGs only over kept records":                 "without a validator Unbound sends no RRSIGs",
	"NXDOMAIN proof: NSEC of the signing zone only": "without a validator Unbound sends no NSECs",
}

// TestScrubMatchesUnbound sends each case's poisoned reply to a real Unbound
// forwarding to it, and checks that dnsward's scrub keeps the same answer
// section and never keeps an authority or additional record Unbound drops
// — except for documented differences: Unbound drops even the queried
// zone's own NS set (and its glue) from a positive answer ("promiscuous"),
// where dnsward keeps it as the issue asks; Unbound does not keep the
// addresses of an HTTPS/SVCB target, which RFC 9460 §4.3 invites; and
// Unbound keeps answer records of another class, which dnsward drops.
func TestScrubMatchesUnbound(t *testing.T) {
	up := startCaseUpstream(t)
	if _, err := exec.LookPath("unbound"); err != nil {
		t.Skip("unbound not installed (Debian: apt-get install unbound; .ci/run installs it)")
	}
	for _, c := range scrubCases {
		if why, skip := unboundSkips[c.name]; skip {
			t.Logf("%s: not compared: %s", c.name, why)
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			up.set(c)
			addr := unboundFor(t, up.addr) // a fresh cache per case
			q, ours := c.packet(t)
			scrub(q, ours)
			req := new(dns.Msg).SetQuestion(c.qname, c.qtype)
			cl := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
			theirs, _, err := cl.Exchange(req, addr)
			if err != nil {
				t.Fatalf("unbound: %v", err)
			}
			if theirs.Rcode != c.rcode {
				t.Fatalf("unbound answered %s, the case has %s", dns.RcodeToString[theirs.Rcode], dns.RcodeToString[c.rcode])
			}
			theirs.Answer = slices.DeleteFunc(theirs.Answer, func(rr dns.RR) bool {
				if rr.Header().Class != dns.ClassINET {
					t.Logf("answer: kept by Unbound only (another class; dnsward drops it): %s", rr)
					return true
				}
				return false
			})
			if o, u := keysOf(ours.Answer), keysOf(theirs.Answer); !slices.Equal(o, u) {
				t.Errorf("answer differs:\n dnsward %s\n unbound %s", strings.Join(o, "\n         "), strings.Join(u, "\n         "))
			}
			extraOK := map[string]bool{}
			glue := func(target string) {
				for _, g := range ours.Extra {
					if strings.EqualFold(g.Header().Name, target) {
						extraOK[rrKey(g)] = true
					}
				}
			}
			for _, rr := range ours.Ns {
				if ns, ok := rr.(*dns.NS); ok {
					extraOK[rrKey(rr)] = true
					glue(ns.Ns)
				}
			}
			for _, rr := range ours.Answer {
				if h, ok := rr.(*dns.HTTPS); ok {
					glue(h.Target)
				}
			}
			for section, pair := range map[string][2][]dns.RR{"authority": {ours.Ns, theirs.Ns}, "additional": {ours.Extra, theirs.Extra}} {
				u := keysOf(pair[1])
				for _, k := range keysOf(pair[0]) {
					if !slices.Contains(u, k) && !extraOK[k] {
						t.Errorf("%s: dnsward keeps %s, Unbound drops it", section, k)
					} else if !slices.Contains(u, k) {
						t.Logf("%s: kept by dnsward only (the zone's own NS set, its glue, or an HTTPS target's address): %s", section, k)
					}
				}
			}
		})
	}
}

// TestScrubPoisonedUpstreamOverUDP: the reply, as a real upstream
// on loopback sends it, comes out of scrub with all four foreign records
// removed and counted.
func TestScrubPoisonedUpstreamOverUDP(t *testing.T) {
	up := startCaseUpstream(t)
	c := scrubCases[0]
	up.set(c)
	req := new(dns.Msg).SetQuestion(c.qname, c.qtype)
	req.SetEdns0(1232, false)
	m, _, err := (&dns.Client{Timeout: 3 * time.Second}).Exchange(req, up.addr)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Answer)+len(m.Ns)+len(m.Extra) != 6 {
		t.Fatalf("the upstream sent %d records, want the case's 5 and OPT", len(m.Answer)+len(m.Ns)+len(m.Extra))
	}
	got := scrub(req.Question[0], m)
	if got != (scrubbed{Answer: 1, Ns: 1, Extra: 2}) || len(m.Answer) != 1 || len(m.Ns) != 0 || len(m.Extra) != 1 {
		t.Fatalf("removed %+v; left answer %v, authority %v, additional %v", got, m.Answer, m.Ns, m.Extra)
	}
}

// Through dnsward, the same poisoned reply reaches neither the client nor
// the cache: the injected pay.example address is not served afterwards.
func TestPoisonedUpstreamReplyIsScrubbedBeforeClientAndCache(t *testing.T) {
	up := startCaseUpstream(t)
	c := scrubCases[0]
	up.set(c)
	rec, reg := newRecorder(t)
	srv := startResolver(t, Config{Cache: CacheConfig{MaxEntries: 100}}, Options{Metrics: rec}, up.addr)
	m := ask(t, "udp", srv.addr, c.qname, c.qtype, true)
	for _, rr := range append(append(m.Answer, m.Ns...), m.Extra...) {
		if n := strings.ToLower(rr.Header().Name); rr.Header().Rrtype != dns.TypeOPT && !strings.HasSuffix(n, "acme.test.") {
			t.Errorf("client got %v, which does not belong to %s", rr, c.qname)
		}
	}
	up.set(scrubCase{qname: "pay.example.", qtype: dns.TypeA}) // the upstream now knows nothing of pay.example
	if m := ask(t, "udp", srv.addr, "pay.example.", dns.TypeA, false); len(m.Answer) != 0 {
		t.Errorf("pay.example A from the cache: %v", m.Answer)
	}
	if got := testutil.ToFloat64(counter(t, reg, "dnsward_upstream_records_scrubbed_total")); got < 1 {
		t.Errorf("scrubbed records counted %v", got)
	}
}
