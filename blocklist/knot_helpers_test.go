package blocklist

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// knotPrimary is a real Knot DNS (knotd) serving one RPZ zone on
// loopback, TSIG required for transfers, NOTIFY sent to the test's
// listeners. It is killed when the test ends.
type knotPrimary struct {
	t    testing.TB
	dir  string
	addr string // 127.0.0.1:port
	zone string // e.g. "rpz.test"
	cmd  *exec.Cmd
	log  *bytes.Buffer
	mu   *sync.Mutex
	// zoneFile, when set, writes the first zone file instead of names.
	zoneFile func(path string)
}

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

// freePort finds a port free for both UDP and TCP on 127.0.0.1.
func freePort(t testing.TB) int {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		pc.Close()
		if err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// startKnot writes a config and a zone with names, and starts knotd.
// notify are the addresses knotd sends NOTIFY to, signed with the key.
func startKnot(t testing.TB, zone string, names []string, notify []string) *knotPrimary {
	return startKnotWith(t, zone, names, notify, nil)
}

// startKnotWith is startKnot with a function writing a big zone file.
func startKnotWith(t testing.TB, zone string, names []string, notify []string, zoneFile func(path string)) *knotPrimary {
	t.Helper()
	bin := findProgram(t, "knotd", "knot")
	findProgram(t, "knotc", "knot")
	k := &knotPrimary{t: t, dir: t.TempDir(), zone: zone, log: new(bytes.Buffer), mu: new(sync.Mutex), zoneFile: zoneFile}
	k.addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	k.writeZone(1, names)
	var remotes, notifyIDs []string
	for i, a := range notify {
		ap := netip.MustParseAddrPort(a)
		id := fmt.Sprintf("dnsward%d", i)
		remotes = append(remotes, fmt.Sprintf("  - id: %s\n    address: %s@%d\n    key: transfer-key\n", id, ap.Addr(), ap.Port()))
		notifyIDs = append(notifyIDs, id)
	}
	conf := fmt.Sprintf(`server:
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
  - id: transfer-key
    algorithm: hmac-sha256
    secret: %[3]s
acl:
  - id: transfer
    address: 127.0.0.0/8
    key: transfer-key
    action: transfer
remote:
%[4]stemplate:
  - id: default
    storage: %[1]s
    zonefile-sync: -1
    zonefile-load: difference
    journal-content: changes
    journal-max-usage: 1G
zone:
  - domain: %[5]s
    file: %[5]s.zone
    acl: transfer
%[6]s`, k.dir, strings.Replace(k.addr, ":", "@", 1), testSecret, strings.Join(remotes, ""), zone, notifyLine(notifyIDs))
	if len(remotes) == 0 {
		conf = strings.Replace(conf, "remote:\n", "", 1)
	}
	writeFile(t, filepath.Join(k.dir, "knot.conf"), conf)
	k.cmd = exec.Command(bin, "-c", filepath.Join(k.dir, "knot.conf"))
	k.cmd.Stdout, k.cmd.Stderr = k.logWriter(), k.logWriter()
	if err := k.cmd.Start(); err != nil {
		t.Fatalf("starting knotd: %v", err)
	}
	t.Cleanup(func() {
		k.stop()
		if t.Failed() {
			t.Logf("knotd log:\n%s", k.logText())
		}
	})
	within := 10 * time.Second
	if zoneFile != nil {
		within = 5 * time.Minute // a big zone takes knotd a while to load
	}
	k.waitServing(1, within)
	return k
}

func notifyLine(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return "    notify: [" + strings.Join(ids, ", ") + "]\n"
}

type lockedWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (k *knotPrimary) logWriter() lockedWriter { return lockedWriter{k.mu, k.log} }

// logText is knotd's log so far.
func (k *knotPrimary) logText() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.log.String()
}

func (k *knotPrimary) writeZone(serial int, names []string) {
	if names == nil && k.zoneFile != nil {
		k.zoneFile(filepath.Join(k.dir, k.zone+".zone"))
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s.\n$TTL 60\n@ SOA ns.%s. admin.%s. %d 3600 60 604800 60\n@ NS localhost.\n", k.zone, k.zone, k.zone, serial)
	for _, n := range names {
		fmt.Fprintf(&b, "%s CNAME .\n", n)
	}
	writeFile(k.t, filepath.Join(k.dir, k.zone+".zone"), b.String())
}

func (k *knotPrimary) source() string { return "axfr://" + k.addr + "/" + k.zone }

// waitServing waits until knotd answers the zone's SOA with serial.
func (k *knotPrimary) waitServing(serial uint32, within time.Duration) {
	k.t.Helper()
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion(k.zone+".", dns.TypeSOA)
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if r, _, err := c.Exchange(m, k.addr); err == nil && len(r.Answer) > 0 {
			if soa, ok := r.Answer[0].(*dns.SOA); ok && soa.Serial == serial {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	k.t.Fatalf("knotd did not serve %s serial %d within %s; log:\n%s", k.zone, serial, within, k.logText())
}

// knotc runs one control command.
func (k *knotPrimary) knotc(args ...string) {
	k.t.Helper()
	bin := findProgram(k.t, "knotc", "knot")
	out, err := exec.Command(bin, append([]string{"-s", filepath.Join(k.dir, "knot.sock"), "-t", "10"}, args...)...).CombinedOutput()
	if err != nil {
		k.t.Fatalf("knotc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// change adds and removes names in one transaction, which bumps the serial
// and journals the change (so IXFR can send it), and NOTIFYs.
func (k *knotPrimary) change(add, remove []string) {
	k.t.Helper()
	k.knotc("zone-begin", k.zone)
	for _, n := range add {
		k.knotc("zone-set", k.zone, n, "60", "CNAME", ".")
	}
	for _, n := range remove {
		k.knotc("zone-unset", k.zone, n, "CNAME")
	}
	k.knotc("zone-commit", k.zone)
}

func (k *knotPrimary) stop() {
	if k.cmd.Process == nil || k.cmd.ProcessState != nil {
		return
	}
	k.cmd.Process.Kill()
	k.cmd.Wait()
}

// notifyListener is a UDP and TCP socket of the test's own that hands
// each NOTIFY to an engine, as the DNS listener will (knotd 3.2 sends
// NOTIFY over TCP, BIND over UDP). The engine is set once it exists: the
// primary must know the listener's address first.
type notifyListener struct {
	addr   string
	engine atomic.Pointer[Engine]
}

func newNotifyListener(t testing.TB) *notifyListener {
	t.Helper()
	port := freePort(t)
	l := &notifyListener{addr: fmt.Sprintf("127.0.0.1:%d", port)}
	pc, err := net.ListenPacket("udp", l.addr)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close(); ln.Close() })
	go l.serveUDP(pc)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed
			}
			go l.serveTCP(c)
		}
	}()
	return l
}

func (l *notifyListener) handle(msg []byte, from net.Addr) []byte {
	e := l.engine.Load()
	if e == nil {
		return nil
	}
	ap, err := netip.ParseAddrPort(from.String())
	if err != nil {
		return nil
	}
	return e.HandleNotify(msg, ap.Addr())
}

func (l *notifyListener) serveUDP(pc net.PacketConn) {
	buf := make([]byte, 65535)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return // closed
		}
		if reply := l.handle(buf[:n], from); reply != nil {
			pc.WriteTo(reply, from)
		}
	}
}

// serveTCP answers length-prefixed messages until the peer closes or is
// idle for 5 s.
func (l *notifyListener) serveTCP(c net.Conn) {
	defer c.Close()
	for {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(n[:]))
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		reply := l.handle(msg, c.RemoteAddr())
		if reply == nil {
			return
		}
		c.Write(binary.BigEndian.AppendUint16(nil, uint16(len(reply))))
		c.Write(reply)
	}
}
