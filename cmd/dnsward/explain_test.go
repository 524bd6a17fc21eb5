package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dnsward explain takes an IP address as an answer address, and shows RPZ
// scopes and actions.
func TestExplainCmdAddressAndRPZ(t *testing.T) {
	dir := t.TempDir()
	rpz := "$ORIGIN rpz.test.\n@ SOA ns. admin. 1 3600 600 86400 60\ntiktok.test CNAME .\n*.garden.test A 192.0.2.80\n"
	if err := os.WriteFile(filepath.Join(dir, "feed.rpz"), []byte(rpz), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := `listen: ["127.0.0.1:5353"]
upstream: { servers: ["udp://127.0.0.1:53"] }
lists:
  feed: { sources: ["feed.rpz"] }
  bytedance-networks: { sources: ["builtin:bytedance-networks"] }
groups:
  - { name: staff, clients: ["10.0.0.0/8"], block: [feed], monitor: [bytedance-networks] }
`
	path := filepath.Join(dir, "dnsward.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		arg  string
		want []string
	}{
		{"71.18.3.4", []string{"answer address 71.18.3.4 for client 10.1.2.3",
			"* monitor  bytedance-networks       matches rule 71.18.0.0/21 (builtin:bytedance-networks line 12)",
			"decision: MONITOR"}},
		{"tiktok.test", []string{"matches rule tiktok.test [only this name]", "RPZ action nxdomain"}},
		{"www.tiktok.test", []string{"decision: ALLOW — allowed: none of group staff's lists covers the name"}},
		{"a.garden.test", []string{"RPZ action local-data", "answer:   A 192.0.2.80"}},
	} {
		var out, errOut bytes.Buffer
		if code := explainCmd([]string{"-config", path, "-client", "10.1.2.3", tc.arg}, &out, &errOut); code != 0 {
			t.Fatalf("explain %s: exit %d: %s", tc.arg, code, errOut.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("explain %s:\n%s\nlacks %q", tc.arg, out.String(), w)
			}
		}
	}
	var out bytes.Buffer
	if code := explainCmd([]string{"-config", path, "-client", "10.1.2.3", "-json", "2605:340:f020::1"}, &out, &out); code != 0 {
		t.Fatalf("explain -json: exit %d: %s", code, out.String())
	}
	var x struct{ Type, Action, List string }
	if err := json.Unmarshal(out.Bytes(), &x); err != nil || x.Type != "address" || x.Action != "monitor" || x.List != "bytedance-networks" {
		t.Errorf("json %s: %+v %v", out.String(), x, err)
	}
}
