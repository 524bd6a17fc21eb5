package dnstest

import (
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Knot is a real Knot DNS (knotd) serving one RPZ zone on loopback,
// transfers allowed from 127.0.0.0/8 with the test TSIG key only, NOTIFY
// sent (signed) to the given addresses after each change. knotd 3.2
// sends NOTIFY over TCP. It is killed when the test ends.
type Knot struct {
	t    testing.TB
	Dir  string // its rundir, storage and zone file
	Addr string // 127.0.0.1:port, UDP and TCP
	Zone string // e.g. "rpz.test", no trailing dot
	cmd  *exec.Cmd
	log  *LogBuffer
}

// KnotZone says what a Knot serves.
type KnotZone struct {
	Name   string   // the zone, e.g. "rpz.test"
	Names  []string // owner names (relative) blocked with CNAME . in serial 1
	Notify []string // host:port addresses knotd sends NOTIFY to
	// WriteZone, when set, writes the first zone file instead of Names
	// (a big zone: knotd is given minutes to load it).
	WriteZone func(path string)
}

// StartKnot starts knotd serving zone with names, notifying notify.
func StartKnot(t testing.TB, zone string, names, notify []string) *Knot {
	t.Helper()
	return StartKnotZone(t, KnotZone{Name: zone, Names: names, Notify: notify})
}

// StartKnotZone starts knotd for z and waits until it serves serial 1.
func StartKnotZone(t testing.TB, z KnotZone) *Knot {
	t.Helper()
	bin := FindProgram(t, "knotd", "knot")
	FindProgram(t, "knotc", "knot")
	k := &Knot{t: t, Dir: t.TempDir(), Addr: FreeAddr(t), Zone: z.Name, log: new(LogBuffer)}
	if z.WriteZone != nil {
		z.WriteZone(k.ZoneFile())
	} else {
		k.WriteZone(1, z.Names)
	}
	writeFile(t, filepath.Join(k.Dir, "knot.conf"), k.config(z.Notify))
	k.cmd = exec.Command(bin, "-c", filepath.Join(k.Dir, "knot.conf"))
	startProgram(t, k.cmd, k.log)
	within := 10 * time.Second
	if z.WriteZone != nil {
		within = 5 * time.Minute
	}
	k.WaitServing(1, within)
	return k
}

// config is knot.conf: journal kept (so IXFR can answer), the zone file
// never rewritten, changes made through knotc.
func (k *Knot) config(notify []string) string {
	var remotes, ids []string
	for i, a := range notify {
		ap := netip.MustParseAddrPort(a)
		id := fmt.Sprintf("secondary%d", i)
		remotes = append(remotes, fmt.Sprintf("  - id: %s\n    address: %s@%d\n    key: %s\n", id, ap.Addr(), ap.Port(), TSIGKeyName))
		ids = append(ids, id)
	}
	remote, notifyLine := "", ""
	if len(ids) > 0 {
		remote = "remote:\n" + strings.Join(remotes, "")
		notifyLine = "    notify: [" + strings.Join(ids, ", ") + "]\n"
	}
	return fmt.Sprintf(`server:
  rundir: %[1]s
  listen: %[2]s
log:
  - target: stderr
    any: info
database:
  storage: %[1]s
control:
  listen: %[1]s/knot.sock
key:
  - id: %[3]s
    algorithm: %[4]s
    secret: %[5]s
acl:
  - id: transfer
    address: 127.0.0.0/8
    key: %[3]s
    action: transfer
%[6]stemplate:
  - id: default
    storage: %[1]s
    zonefile-sync: -1
    zonefile-load: difference
    journal-content: changes
    journal-max-usage: 1G
zone:
  - domain: %[7]s
    file: %[7]s.zone
    acl: transfer
%[8]s`, k.Dir, strings.Replace(k.Addr, ":", "@", 1), TSIGKeyName, TSIGAlgorithm, TSIGSecret, remote, k.Zone, notifyLine)
}

// ZoneFile is the path of the zone file knotd loads.
func (k *Knot) ZoneFile() string { return filepath.Join(k.Dir, k.Zone+".zone") }

// WriteZone writes a zone file of serial blocking names with CNAME .
func (k *Knot) WriteZone(serial int, names []string) {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s.\n$TTL 60\n@ SOA ns.%s. admin.%s. %d 3600 60 604800 60\n@ NS localhost.\n", k.Zone, k.Zone, k.Zone, serial)
	for _, n := range names {
		fmt.Fprintf(&b, "%s CNAME .\n", n)
	}
	writeFile(k.t, k.ZoneFile(), b.String())
}

// Source is the dnsward list source for the zone.
func (k *Knot) Source() string { return "axfr://" + k.Addr + "/" + k.Zone }

// Log is knotd's log so far.
func (k *Knot) Log() string { return k.log.String() }

// WaitServing waits until knotd answers the zone's SOA with serial.
func (k *Knot) WaitServing(serial uint32, within time.Duration) {
	k.t.Helper()
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	m := new(dns.Msg).SetQuestion(k.Zone+".", dns.TypeSOA)
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if r, _, err := c.Exchange(m, k.Addr); err == nil && len(r.Answer) > 0 {
			if soa, ok := r.Answer[0].(*dns.SOA); ok && soa.Serial == serial {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	k.t.Fatalf("knotd did not serve %s serial %d within %s; log:\n%s", k.Zone, serial, within, k.Log())
}

// Knotc runs one control command.
func (k *Knot) Knotc(args ...string) {
	k.t.Helper()
	bin := FindProgram(k.t, "knotc", "knot")
	out, err := exec.Command(bin, append([]string{"-s", filepath.Join(k.Dir, "knot.sock"), "-t", "10"}, args...)...).CombinedOutput()
	if err != nil {
		k.t.Fatalf("knotc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Change adds and removes names in one transaction: the serial goes up
// by one, the change is journalled (so IXFR can send it), and knotd sends
// NOTIFY.
func (k *Knot) Change(add, remove []string) {
	k.t.Helper()
	k.Knotc("zone-begin", k.Zone)
	for _, n := range add {
		k.Knotc("zone-set", k.Zone, n, "60", "CNAME", ".")
	}
	for _, n := range remove {
		k.Knotc("zone-unset", k.Zone, n, "CNAME")
	}
	k.Knotc("zone-commit", k.Zone)
}

// Stop kills knotd now (the primary going down).
func (k *Knot) Stop() { stopProgram(k.cmd) }
