package metrics

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func blockedEvent(client string) *QueryEvent {
	return &QueryEvent{Time: time.Date(2025, 3, 1, 9, 4, 5, 678_900_000, time.FixedZone("CET", 3600)),
		Client: netip.MustParseAddr(client), Group: "gov", QName: "www.tiktok.com.", QType: dns.TypeAAAA,
		Rcode: dns.RcodeNameError, Outcome: OutcomeBlocked, List: "tiktok", Rule: "tiktok.com", Answer: "nxdomain"}
}

func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: line %d not JSON: %v: %q", path, len(out)+1, err, sc.Text())
		}
		out = append(out, m)
	}
	return out
}

func TestAuditEntries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	audit, err := NewAuditLog(AuditConfig{Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := newTestRecorder(t, Options{Audit: audit})
	r.Query(blockedEvent("127.0.0.7"))
	r.Query(&QueryEvent{Client: netip.MustParseAddr("127.0.0.7"), QName: "example.org.", QType: dns.TypeA,
		Outcome: OutcomeForwarded}) // not audited without all_queries
	r.Query(&QueryEvent{Time: time.Unix(1740819845, 0), Client: netip.MustParseAddr("::1"), Group: "gov",
		QName: "byteoversea.com.", QType: 65280, Outcome: OutcomeForwarded, List: "watch", Rule: "byteoversea.com",
		Monitored: true})
	if err := audit.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2: %v", len(lines), lines)
	}
	want := map[string]any{"time": "2025-03-01T08:04:05.678Z", "client": "127.0.0.7", "group": "gov",
		"qname": "www.tiktok.com.", "qtype": "AAAA", "rcode": "NXDOMAIN", "outcome": "blocked", "list": "tiktok",
		"rule": "tiktok.com", "answer": "nxdomain", "monitor": false}
	if len(lines[0]) != len(want) {
		t.Errorf("fields %v, want %v", lines[0], want)
	}
	for k, v := range want {
		if lines[0][k] != v {
			t.Errorf("%s = %#v, want %#v", k, lines[0][k], v)
		}
	}
	if l := lines[1]; l["monitor"] != true || l["qtype"] != "TYPE65280" || l["client"] != "::1" ||
		l["time"] != "2025-03-01T09:04:05.000Z" || l["list"] != "watch" {
		t.Errorf("monitored line: %v", l)
	}
}

func TestAuditAllQueriesToStdoutSink(t *testing.T) {
	var buf bytes.Buffer
	audit := newAuditLog(AuditConfig{Path: "stdout", All: true}, nil, streamSink{&buf})
	r, _ := newTestRecorder(t, Options{Audit: audit})
	r.Query(&QueryEvent{Client: netip.MustParseAddr("127.0.0.1"), QName: "example.org.", QType: dns.TypeMX,
		Outcome: OutcomeCached})
	audit.Close()
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil || m["outcome"] != "cached" || m["qtype"] != "MX" {
		t.Fatalf("line %q (%v), want a cached MX entry", buf.String(), err)
	}
	if _, err := time.Parse(time.RFC3339, m["time"].(string)); err != nil {
		t.Errorf("time: %v", err)
	}
}

func TestAuditAnonymize(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.77":              "192.0.2.0",
		"::ffff:198.51.100.9":     "198.51.100.0",
		"2001:db8:abcd:1234::1":   "2001:db8:abcd::",
		"fe80::1:2:3:4%eth0":      "fe80::",
		"2001:db8:ffff:ffff:ffff": "",
	} {
		a, err := netip.ParseAddr(in)
		if want == "" {
			if err == nil {
				t.Errorf("%s parsed", in)
			}
			continue
		}
		if got := anonymizeAddr(a).String(); got != want {
			t.Errorf("anonymize(%s) = %s, want %s", in, got, want)
		}
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	audit, err := NewAuditLog(AuditConfig{Path: path, Anonymize: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	audit.Record(blockedEvent("192.0.2.77"))
	audit.Record(blockedEvent("2001:db8:abcd:1234::1"))
	audit.Close()
	lines := readLines(t, path)
	if len(lines) != 2 || lines[0]["client"] != "192.0.2.0" || lines[1]["client"] != "2001:db8:abcd::" {
		t.Errorf("anonymised clients: %v", lines)
	}
}

func TestAuditRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	audit, err := NewAuditLog(AuditConfig{Path: path, MaxSizeMB: 1, MaxFiles: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := blockedEvent("127.0.0.1")
	ev.Rule = strings.Repeat("r", 800) // ~1 KB lines: 1 MB is ~1000 lines
	for range 4500 {
		audit.Record(ev)
		if len(audit.in) > auditQueueLen/2 {
			for len(audit.in) > 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}
	audit.Close()
	if audit.Dropped() != 0 {
		t.Fatalf("dropped %d", audit.Dropped())
	}
	names, _ := filepath.Glob(path + "*")
	if len(names) != 3 {
		t.Fatalf("files %v, want audit.log, .1, .2", names)
	}
	for _, n := range names {
		fi, err := os.Stat(n)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 1<<20 || fi.Size() == 0 {
			t.Errorf("%s: %d bytes, want 1..%d", n, fi.Size(), 1<<20)
		}
		readLines(t, n) // whole JSON lines only
	}
	if _, err := os.Stat(path + ".3"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("audit.log.3 exists beyond max_files=2")
	}

	// Reopen after an external rename starts a new file.
	audit, err = NewAuditLog(AuditConfig{Path: path, MaxSizeMB: 1, MaxFiles: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := audit.Reopen(); err != nil {
		t.Fatal(err)
	}
	audit.Record(blockedEvent("127.0.0.1"))
	audit.Close()
	if lines := readLines(t, path); len(lines) != 1 {
		t.Errorf("after Reopen: %d lines in the new file, want 1", len(lines))
	}
	if err := audit.Reopen(); err == nil {
		t.Error("Reopen after Close: want an error")
	}
}

func TestAuditUnwritablePath(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	paths := []string{filepath.Join(dir, "missing", "audit.log"), filepath.Join(notDir, "audit.log")}
	if os.Geteuid() != 0 { // root ignores directory permissions
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, filepath.Join(ro, "audit.log"))
	}
	for _, p := range paths {
		a, err := NewAuditLog(AuditConfig{Path: p}, nil)
		if err == nil {
			a.Close()
			t.Errorf("%s: want an error", p)
			continue
		}
		if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "log.audit.path") {
			t.Errorf("error %q does not name key and path %s", err, p)
		}
	}
}

// lockedBuffer collects log output written from the writer goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAuditDiskFull writes to /dev/full (every write fails with ENOSPC):
// entries are counted as dropped, the error is logged once, queries go on.
func TestAuditDiskFull(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("/dev/full not available")
	}
	var logs lockedBuffer
	audit, err := NewAuditLog(AuditConfig{Path: "/dev/full"}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	r, reg := newTestRecorder(t, Options{Audit: audit})
	for range 10 {
		r.Query(blockedEvent("127.0.0.1"))
	}
	for audit.Dropped() < 10 {
		time.Sleep(time.Millisecond)
	}
	for range 5 {
		r.Query(blockedEvent("127.0.0.1"))
	}
	audit.Close()
	if got := audit.Dropped(); got != 15 {
		t.Errorf("Dropped = %d, want 15", got)
	}
	if n := strings.Count(logs.String(), "audit log write failed"); n != 1 {
		t.Errorf("write failure logged %d times, want once per minute:\n%s", n, logs.String())
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "dnsward_audit_dropped_total" && mf.GetMetric()[0].GetCounter().GetValue() != 15 {
			t.Errorf("dnsward_audit_dropped_total = %v, want 15", mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
	if fi, err := os.Stat("/dev/full"); err != nil || fi.Mode()&os.ModeDevice == 0 {
		t.Fatalf("/dev/full was disturbed: %v %v", fi, err)
	}
}

// blockingSink stalls every write until released, like a stuck disk.
type blockingSink struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blockingSink) Write(p []byte) (int, error) {
	b.once.Do(func() { close(b.entered) })
	<-b.release
	return len(p), nil
}
func (b *blockingSink) Reopen() error { return nil }
func (b *blockingSink) Close() error  { return nil }

func TestAuditFullBufferDrops(t *testing.T) {
	sink := &blockingSink{entered: make(chan struct{}), release: make(chan struct{})}
	audit := newAuditLog(AuditConfig{Path: "x"}, nil, sink)
	r, _ := newTestRecorder(t, Options{Audit: audit})
	ev := blockedEvent("127.0.0.1")
	r.Query(ev)
	<-sink.entered // the writer is now stuck in Write
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range auditQueueLen + 500 {
			r.Query(ev)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Query blocked behind a stuck audit writer")
	}
	if got := audit.Dropped(); got != 500 {
		t.Errorf("Dropped = %d, want 500", got)
	}
	close(sink.release)
	audit.Close()
}

func TestAuditConfigValidate(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		cfg AuditConfig
		key string
	}{
		{AuditConfig{}, ""},
		{DefaultAuditConfig(), ""},
		{AuditConfig{Path: "stdout"}, ""},
		{AuditConfig{Path: dir}, "log.audit.path"},
		{AuditConfig{MaxSizeMB: -1}, "log.audit.max_size_mb"},
		{AuditConfig{MaxFiles: -3}, "log.audit.max_files"},
		{AuditConfig{MaxFiles: 100000}, "log.audit.max_files"},
	} {
		err := c.cfg.Validate()
		if c.key == "" {
			if err != nil {
				t.Errorf("%+v: %v", c.cfg, err)
			}
			continue
		}
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Key() != c.key {
			t.Errorf("%+v: error %v, want key %s", c.cfg, err, c.key)
		}
	}
	if a, err := NewAuditLog(AuditConfig{}, nil); a != nil || err != nil {
		t.Errorf("empty path: %v %v, want nil, nil (off)", a, err)
	}
}
