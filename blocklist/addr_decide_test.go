package blocklist

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

// addrEngine has the built-in ByteDance networks blocked for staff and
// monitored for a pilot group, an RPZ with rpz-ip triggers, and an
// exception list, from files.
func addrEngine(t testing.TB) *Engine {
	t.Helper()
	dir := t.TempDir()
	tempFile(t, dir, "feed.rpz", rpzZone(
		"tiktok.test CNAME .",
		"24.0.2.0.192.rpz-ip CNAME .",
		"32.7.2.0.192.rpz-ip CNAME rpz-passthru.",
		"128.80.zz.db8.2001.rpz-ip AAAA 2001:db8::53",
		"48.zz.2643.8d04.2404.rpz-ip CNAME rpz-drop.",
	))
	tempFile(t, dir, "lab.cidrs", "# the lab's own servers are fine\n71.18.1.0/24\n")
	cfg := Config{
		Lists: map[string]ListConfig{
			"bytedance-networks": {Sources: []string{"builtin:bytedance-networks"}},
			"feed":               {Sources: []string{"feed.rpz"}},
			"lab":                {Sources: []string{"lab.cidrs"}},
			"tiktok":             {Sources: []string{"builtin:tiktok"}},
		},
		Groups: []GroupConfig{
			{Name: "staff", Clients: []string{"10.0.0.0/8"}, Block: []string{"bytedance-networks", "feed"}, Allow: []string{"lab"}},
			{Name: "pilot", Clients: []string{"10.99.0.0/16"}, Monitor: []string{"bytedance-networks"}},
			{Name: "names-only", Clients: []string{"172.16.0.0/12"}, Block: []string{"tiktok"}},
		},
		Guard: GuardConfig{NeverBlock: []string{"builtin:never-block"}},
	}
	cfg.Groups[0], cfg.Groups[1] = cfg.Groups[1], cfg.Groups[0] // the /16 before the /8
	return newEngine(t, cfg, Options{BaseDir: dir})
}

func expectAddr(t *testing.T, e *Engine, client, a string, action Action, list, rule string) Verdict {
	t.Helper()
	v := e.DecideAddr(addr(client), addr(a))
	if v.Action != action || v.List != list || v.Rule != rule {
		t.Errorf("DecideAddr(%s, %s) = %+v; want %s list %q rule %q", client, a, v, actionName(action), list, rule)
	}
	return v
}

func TestDecideAddr(t *testing.T) {
	e := addrEngine(t)
	if !e.HasAddrRules() {
		t.Fatal("HasAddrRules = false with network lists in use")
	}
	v := expectAddr(t, e, "10.1.1.1", "71.18.3.4", Block, "bytedance-networks", "71.18.0.0/21")
	if v.Group != "staff" || v.Answer != AnswerDefault {
		t.Errorf("verdict %+v", v)
	}
	expectAddr(t, e, "10.1.1.1", "::ffff:71.18.3.4", Block, "bytedance-networks", "71.18.0.0/21")
	expectAddr(t, e, "10.1.1.1", "2605:340:f020::1", Block, "bytedance-networks", "2605:340:f020::/47")
	expectAddr(t, e, "10.1.1.1", "71.18.1.9", Allow, "lab", "71.18.1.0/24") // allow beats block
	expectAddr(t, e, "10.1.1.1", "192.0.2.9", Block, "feed", "192.0.2.0/24")
	expectAddr(t, e, "10.1.1.1", "192.0.2.7", Allow, "feed", "192.0.2.7/32") // the passthru is more specific
	v = expectAddr(t, e, "10.1.1.1", "2404:8d04:2643::5", Block, "bytedance-networks", "2404:8d04:2643::/48")
	if v.Answer != AnswerDefault {
		t.Errorf("lowest list bit wins a tie: %+v", v) // bytedance-networks sorts before feed
	}
	v = expectAddr(t, e, "10.1.1.1", "2001:db8::80", Block, "feed", "2001:db8::80/128")
	if v.Answer != AnswerLocal || len(v.LocalAnswer("www.example.com", 28)) != 1 {
		t.Errorf("local data verdict %+v", v)
	}
	expectAddr(t, e, "10.1.1.1", "8.8.8.8", Allow, "", "")
	expectAddr(t, e, "10.99.1.1", "71.18.3.4", Monitor, "bytedance-networks", "71.18.0.0/21")
	expectAddr(t, e, "172.16.0.1", "71.18.3.4", Allow, "", "")  // its lists have no networks
	expectAddr(t, e, "192.168.1.1", "71.18.3.4", Allow, "", "") // no group
	if p := e.AddrPolicy(Identity{Client: addr("172.16.0.1")}); p.Active() {
		t.Error("a group whose lists have no networks is active")
	}
	if p := e.AddrPolicy(Identity{Client: addr("10.1.1.1")}); !p.Active() || p.Decide(addr("71.18.3.4")).Action != Block {
		t.Error("AddrPolicy for staff")
	}
	// Names still work alongside, with RPZ semantics.
	expect(t, e, "10.1.1.1", "tiktok.test", Block, "feed")
	expect(t, e, "10.1.1.1", "www.tiktok.test", Allow, "")
}

func TestHasAddrRulesOffWithoutNetworkLists(t *testing.T) {
	e := newEngine(t, DefaultConfig(), Options{})
	if e.HasAddrRules() {
		t.Error("HasAddrRules = true for the default (names only) config")
	}
	if p := e.AddrPolicy(Identity{Client: addr("10.0.0.1")}); p.Active() || p.Decide(addr("71.18.3.4")).Action != Allow {
		t.Error("AddrPolicy active without network lists")
	}
	// A network list that no group uses does not turn it on either.
	cfg := DefaultConfig()
	cfg.Lists["bytedance-networks"] = ListConfig{Sources: []string{"builtin:bytedance-networks"}}
	if e := newEngine(t, cfg, Options{}); e.HasAddrRules() {
		t.Error("HasAddrRules = true for an unused network list")
	}
}

func TestDecideAddrZeroAlloc(t *testing.T) {
	e := addrEngine(t)
	staff, pilot, none := addr("10.1.1.1"), addr("10.99.1.1"), addr("172.16.0.1")
	hit, miss, v6, local := addr("71.18.3.4"), addr("8.8.8.8"), addr("2605:340:f020::1"), addr("2001:db8::80")
	allocs := testing.AllocsPerRun(200, func() {
		e.HasAddrRules()
		e.DecideAddr(staff, hit)
		e.DecideAddr(staff, miss)
		e.DecideAddr(staff, v6)
		e.DecideAddr(staff, local)
		e.DecideAddr(pilot, hit)
		e.DecideAddr(none, hit)
		p := e.AddrPolicy(Identity{Client: staff})
		p.Decide(hit)
		p.Decide(miss)
	})
	if allocs != 0 {
		t.Errorf("DecideAddr allocates %.1f times per run; want 0", allocs)
	}
}

// The guard refuses networks so wide that blocking them would block a
// large part of the internet; allow lists may hold anything.
func TestGuardOnNetworks(t *testing.T) {
	dir := t.TempDir()
	tempFile(t, dir, "wide.cidrs", "0.0.0.0/0\n0.0.0.0/7\n10.0.0.0/8\n::/0\n2000::/15\n2001::/16\n192.0.2.0/24\n")
	tempFile(t, dir, "wide.rpz", rpzZone("1.0.0.0.0.rpz-ip CNAME .", "8.0.0.0.10.rpz-ip CNAME ."))
	tempFile(t, dir, "ok.cidrs", "0.0.0.0/1\n")
	cfg := Config{
		Lists:  map[string]ListConfig{"wide": {Sources: []string{"wide.cidrs", "wide.rpz"}}, "ok": {Sources: []string{"ok.cidrs"}}},
		Groups: []GroupConfig{{Name: "all", Clients: []string{"0.0.0.0/0"}, Block: []string{"wide"}, Allow: []string{"ok"}}},
		Guard:  GuardConfig{NeverBlock: []string{"builtin:never-block"}},
	}
	e := newEngine(t, cfg, Options{BaseDir: dir})
	st := listStatus(t, e, "wide")
	if st.Rules != 4 || st.Rejected != 5 {
		t.Errorf("wide: %d rules, %d rejected; want 4 and 5: %+v", st.Rules, st.Rejected, st.Sources)
	}
	var reasons []string
	for _, s := range st.Sources {
		for _, r := range s.RejectedLines {
			reasons = append(reasons, fmt.Sprintf("%d %s: %s", r.Line, r.Text, r.Reason))
		}
	}
	joined := strings.Join(reasons, "\n")
	for _, want := range []string{"1 0.0.0.0/0: guard: network 0.0.0.0/0 is wider than /8", "2 0.0.0.0/7", "4 ::/0: guard: network ::/0 is wider than /16", "5 2000::/15", "5 0.0.0.0/1"} {
		if !strings.Contains(joined, want) {
			t.Errorf("rejections\n%s\nlack %q", joined, want)
		}
	}
	if st := listStatus(t, e, "ok"); st.Rules != 1 || st.Rejected != 0 {
		t.Errorf("allow-only list: %+v", st)
	}
	expectAddr(t, e, "10.0.0.1", "10.1.2.3", Allow, "ok", "0.0.0.0/1")
	expectAddr(t, e, "10.0.0.1", "192.0.2.1", Block, "wide", "192.0.2.0/24")
}

// AS139190 is Google Asia Pacific's; some third-party lists call it
// ByteDance's. It must not be in the built-in list, in its prefixes or in
// effect: no address of it is blocked.
func TestBytedanceNetworksLeaveOutGoogle(t *testing.T) {
	b, _ := Builtin("bytedance-networks")
	for i, line := range strings.Split(string(b), "\n") {
		entry, tag, _ := strings.Cut(line, "#")
		if strings.TrimSpace(entry) == "" {
			continue
		}
		if tag = strings.TrimSpace(tag); tag != "[396986]" && tag != "[138699]" {
			t.Errorf("line %d %q: tagged %q; only AS396986 and AS138699 belong here", i+1, line, tag)
		}
	}
	google, err := os.ReadFile("testdata/as139190.cidrs")
	if err != nil {
		t.Fatal(err)
	}
	gp, err := Parse(bytes.NewReader(google))
	if err != nil || len(gp.Rules) != 2 {
		t.Fatalf("as139190.cidrs: %+v %v", gp, err)
	}
	bp, _ := Parse(bytes.NewReader(b))
	for _, g := range gp.Rules {
		for _, r := range bp.Rules {
			if g.Prefix.Overlaps(r.Prefix) {
				t.Errorf("builtin:bytedance-networks line %d %s overlaps AS139190's %s", r.Line, r.Prefix, g.Prefix)
			}
		}
	}
	e := addrEngine(t)
	for _, a := range []string{"34.101.0.1", "34.101.131.175", "34.101.255.254", "2404:f340:4000::1"} {
		expectAddr(t, e, "10.1.1.1", a, Allow, "", "")
	}
}

func TestExplainAddr(t *testing.T) {
	e := addrEngine(t)
	x := e.Explain(addr("10.1.1.1"), "71.18.3.4")
	if x.Type != "address" || x.Action != "block" || x.List != "bytedance-networks" || x.Group != "staff" {
		t.Fatalf("explain %+v", x)
	}
	if x.Rule == nil || x.Rule.Rule != "71.18.0.0/21" || x.Rule.Source != "builtin:bytedance-networks" || x.Rule.Line != 12 {
		t.Errorf("rule %+v; want 71.18.0.0/21 at builtin:bytedance-networks line 12", x.Rule)
	}
	want := "blocked by list bytedance-networks (rule 71.18.0.0/21, builtin:bytedance-networks line 12) for group staff"
	if x.Reason != want {
		t.Errorf("reason %q\nwant   %q", x.Reason, want)
	}
	x = e.Explain(addr("10.1.1.1"), "192.0.2.7")
	if x.Action != "allow" || x.Rule == nil || x.Rule.Rule != "192.0.2.7/32" || x.Rule.Line != 7 {
		t.Errorf("passthru explain %+v rule %+v", x, x.Rule)
	}
	x = e.Explain(addr("10.1.1.1"), "2001:db8::80")
	if x.Answer != "local-data" || x.LocalData != "AAAA 2001:db8::53" {
		t.Errorf("local data explain %+v", x)
	}
	x = e.Explain(addr("10.1.1.1"), "::ffff:71.18.1.9")
	if x.Name != "71.18.1.9" || x.Action != "allow" || x.List != "lab" {
		t.Errorf("mapped explain %+v", x)
	}
	x = e.Explain(addr("10.1.1.1"), "8.8.8.8")
	if x.Action != "allow" || x.Reason != "allowed: none of group staff's lists covers the address" {
		t.Errorf("unmatched explain %+v", x)
	}
	x = e.Explain(addr("10.1.1.1"), "tiktok.test")
	if x.Type != "name" || x.Rule == nil || x.Rule.Covers != "only this name" || x.Answer != "nxdomain" {
		t.Errorf("exact RPZ name explain %+v rule %+v", x, x.Rule)
	}
}

func TestHugeCIDRList(t *testing.T) {
	var b strings.Builder
	for i := range 100_000 {
		fmt.Fprintf(&b, "%d.%d.%d.0/24\n", 20+i>>16, i>>8&255, i&255)
	}
	b.WriteString("garbage\n")
	dir := t.TempDir()
	tempFile(t, dir, "big.cidrs", b.String())
	cfg := Config{
		Lists:  map[string]ListConfig{"big": {Sources: []string{"big.cidrs"}}},
		Groups: []GroupConfig{{Name: "all", Clients: []string{"0.0.0.0/0"}, Block: []string{"big"}}},
	}
	e := newEngine(t, cfg, Options{BaseDir: dir})
	st := listStatus(t, e, "big")
	if st.Rules != 100_000 || st.Rejected != 1 || st.Sources[0].RejectedLines[0].Line != 100_001 || st.Sources[0].Format != FormatCIDR {
		t.Errorf("big list status %+v", st)
	}
	expectAddr(t, e, "10.0.0.1", "21.13.7.9", Block, "big", "21.13.7.0/24")
	expectAddr(t, e, "10.0.0.1", "19.0.0.1", Allow, "", "")
}
