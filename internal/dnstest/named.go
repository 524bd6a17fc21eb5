package dnstest

import (
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
)

// NamedSecondary says how to run BIND 9 as a secondary of an RPZ zone.
type NamedSecondary struct {
	Port     int    // where named listens on 127.0.0.1 (the primary must know it to NOTIFY)
	Zone     string // the RPZ zone, e.g. "rpz.test"
	Primary  string // host:port of the zone's primary; transfers signed with the test key
	Upstream string // host:port named forwards every other query to
}

// StartNamed runs BIND 9 (named) as a secondary of s.Primary for s.Zone,
// enforcing it as its response policy, until the test ends. It returns
// named's "127.0.0.1:port" and its log. named is not waited for: poll
// its answers.
func StartNamed(t testing.TB, s NamedSecondary) (addr string, log *LogBuffer) {
	t.Helper()
	bin := FindProgram(t, "named", "bind9")
	dir := t.TempDir()
	ph, pp, _ := net.SplitHostPort(s.Primary)
	uh, up, _ := net.SplitHostPort(s.Upstream)
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
	response-policy { zone "%[9]s" min-update-interval 0; } qname-wait-recurse no;
};
controls { };
key "%[5]s" { algorithm %[10]s; secret "%[6]s"; };
zone "%[9]s" {
	type secondary;
	primaries { %[7]s port %[8]s key "%[5]s"; };
	file "%[1]s/%[9]s.db";
	request-ixfr yes;
};
logging {
	channel out { stderr; severity info; print-time yes; };
	category default { out; };
	category xfer-in { out; };
	category notify { out; };
	category rpz { out; };
};
`, dir, s.Port, uh, up, TSIGKeyName, TSIGSecret, ph, pp, s.Zone, TSIGAlgorithm)
	confPath := filepath.Join(dir, "named.conf")
	writeFile(t, confPath, conf)
	log = new(LogBuffer)
	startProgram(t, exec.Command(bin, "-g", "-c", confPath, "-n", "1"), log)
	return fmt.Sprintf("127.0.0.1:%d", s.Port), log
}
