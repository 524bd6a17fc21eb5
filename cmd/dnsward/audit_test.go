package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestAuditLogEndToEnd: a blocked query from a government device shows up
// in the audit log with who, what and why — what a SOC needs to answer
// "was this phone trying to reach TikTok?".
func TestAuditLogEndToEnd(t *testing.T) {
	up := startZoneServer(t, nil)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "press-allow.txt"), []byte("example.net\n"), 0o644)
	auditPath := filepath.Join(dir, "audit.log")
	a := startApp(t, writeConfig(t, dir, up.addr, policyYAML+"log:\n  audit:\n    path: "+auditPath+"\n"))
	query(t, "127.0.0.2", a.dnsAddr(), "Www.TikTok.com.", dns.TypeAAAA)
	query(t, "127.0.0.3", a.dnsAddr(), "www.tiktok.com.", dns.TypeA) // guest: resolved, not audited

	var entry map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for entry == nil && time.Now().Before(deadline) {
		if f, err := os.Open(auditPath); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				var e map[string]any
				if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
					t.Fatalf("audit line is not JSON: %q", sc.Text())
				}
				if e["client"] == "127.0.0.3" {
					t.Fatalf("allowed guest query was audited: %v", e)
				}
				entry = e
			}
			f.Close()
		}
		time.Sleep(20 * time.Millisecond)
	}
	if entry == nil {
		t.Fatal("no audit entry within 5 s")
	}
	for key, want := range map[string]string{"client": "127.0.0.2", "group": "government-devices", "list": "tiktok",
		"rule": "tiktok.com", "qtype": "AAAA", "answer": "nxdomain"} {
		if got, _ := entry[key].(string); got != want {
			t.Errorf("audit %s = %q, want %q (entry %v)", key, got, want, entry)
		}
	}
	if q, _ := entry["qname"].(string); !strings.EqualFold(q, "www.tiktok.com.") {
		t.Errorf("audit qname = %q", q)
	}
}

// TestAuditLogFailureKeepsDNSAnswering: an audit log that cannot be
// written (a full disk, here /dev/full) is counted, and DNS is unaffected.
func TestAuditLogFailureKeepsDNSAnswering(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	up := startZoneServer(t, nil)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "press-allow.txt"), []byte("example.net\n"), 0o644)
	a := startApp(t, writeConfig(t, dir, up.addr, policyYAML+"log:\n  audit:\n    path: /dev/full\n    all_queries: true\n"))
	for i := range 50 {
		name := "www.tiktok.com."
		if i%2 == 0 {
			name = "example.org."
		}
		if r := query(t, "127.0.0.2", a.dnsAddr(), name, dns.TypeA); r.Rcode == dns.RcodeServerFailure {
			t.Fatalf("query %d failed while the audit log is failing", i)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := httpGet(t, "http://"+a.admin.Addr().String()+"/metrics")
		if strings.Contains(m, "dnsward_audit_dropped_total ") && !strings.Contains(m, "dnsward_audit_dropped_total 0\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("dnsward_audit_dropped_total stayed 0 with an unwritable audit log")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
