package blocklist

import (
	"encoding/json"
	"strings"
	"testing"
)

// policyEngine has block, allow (exceptions) and monitor lists from files.
func policyEngine(t testing.TB) *Engine {
	t.Helper()
	dir := t.TempDir()
	tempFile(t, dir, "allow-press.txt", "# press office account\nwww.tiktok.com\n")
	tempFile(t, dir, "new.txt", "# rolling out\nnewapp.example\n*.beta-app.example\n")
	tempFile(t, dir, "ads.txt", "! adblock list\n||ads.example^\n@@||good.ads.example^\n")
	cfg := Config{
		Lists: map[string]ListConfig{
			"tiktok":    {Sources: []string{"builtin:tiktok"}},
			"bytedance": {Sources: []string{"builtin:bytedance"}},
			"press":     {Sources: []string{"allow-press.txt"}},
			"new-list":  {Sources: []string{"new.txt"}},
			"ads":       {Sources: []string{"ads.txt"}},
		},
		Groups: []GroupConfig{
			{Name: "press-office", Clients: []string{"10.20.30.0/24"}, Block: []string{"tiktok", "bytedance"}, Allow: []string{"press"}},
			{Name: "government-devices", Clients: []string{"10.0.0.0/8"}, Block: []string{"tiktok", "bytedance", "ads"}, Monitor: []string{"new-list"}},
		},
		Guard: GuardConfig{NeverBlock: []string{"builtin:never-block"}},
	}
	return newEngine(t, cfg, Options{BaseDir: dir})
}

func TestAllowBeatsBlock(t *testing.T) {
	e := policyEngine(t)
	v := expect(t, e, "10.20.30.5", "WWW.TIKTOK.COM.", Allow, "press")
	if v.Group != "press-office" || v.Rule != "www.tiktok.com" {
		t.Errorf("exception verdict %+v", v)
	}
	expect(t, e, "10.20.30.5", "cdn.www.tiktok.com", Allow, "press") // exceptions cover names below too
	v = expect(t, e, "10.20.30.5", "api.tiktok.com", Block, "tiktok")
	if v.Rule != "tiktok.com" || v.Group != "press-office" {
		t.Errorf("block verdict %+v", v)
	}
	expect(t, e, "10.1.1.1", "www.tiktok.com", Block, "tiktok") // the exception is only for press
	// An adblock exception inside a block list.
	expect(t, e, "10.1.1.1", "x.ads.example", Block, "ads")
	expect(t, e, "10.1.1.1", "good.ads.example", Allow, "ads")
}

func TestMonitor(t *testing.T) {
	e := policyEngine(t)
	v := expect(t, e, "10.1.1.1", "www.newapp.example", Monitor, "new-list")
	if v.Rule != "newapp.example" {
		t.Errorf("monitor verdict %+v", v)
	}
	expect(t, e, "10.1.1.1", "a.beta-app.example", Monitor, "new-list")
	expect(t, e, "10.1.1.1", "beta-app.example", Allow, "") // *.name does not cover name
	expect(t, e, "10.20.30.5", "www.newapp.example", Allow, "")
	expect(t, e, "10.1.1.1", "bytedance.com", Block, "bytedance")
}

func TestDecideZeroAlloc(t *testing.T) {
	e := policyEngine(t)
	client, other := addr("10.1.1.1"), addr("2001:db8::1")
	allocs := testing.AllocsPerRun(200, func() {
		e.Decide(client, "v16-webapp.tiktok.com.")
		e.Decide(client, "Good.Ads.Example")
		e.Decide(client, "www.newapp.example")
		e.Decide(client, "www.example.org")
		e.Decide(other, "www.tiktok.com")
	})
	if allocs != 0 {
		t.Errorf("Decide allocates %.1f times per run; want 0", allocs)
	}
}

func TestExplain(t *testing.T) {
	e := policyEngine(t)
	x := e.Explain(addr("10.1.1.1"), "V16.TikTok.com.")
	if x.Action != "block" || x.Group != "government-devices" || x.List != "tiktok" || x.Name != "v16.tiktok.com" {
		t.Fatalf("explain %+v", x)
	}
	if x.Rule == nil || x.Rule.Rule != "tiktok.com" || x.Rule.Source != "builtin:tiktok" || x.Rule.Line != 8 {
		t.Errorf("rule %+v; want tiktok.com at builtin:tiktok line 8", x.Rule)
	}
	want := "blocked by list tiktok (rule tiktok.com, builtin:tiktok line 8) for group government-devices"
	if x.Reason != want {
		t.Errorf("reason %q\nwant   %q", x.Reason, want)
	}
	if !strings.Contains(x.GroupReason, "10.0.0.0/8 (groups[1].clients[0])") {
		t.Errorf("group reason %q", x.GroupReason)
	}
	if len(x.Lists) != 4 || !x.Lists[0].Decided || x.Lists[1].Matched || x.Lists[3].Role != "monitor" {
		t.Errorf("lists %+v", x.Lists)
	}

	x = e.Explain(addr("10.20.30.5"), "www.tiktok.com")
	if x.Action != "allow" || x.List != "press" || x.Rule == nil || x.Rule.Line != 2 || !strings.HasSuffix(x.Rule.Source, "allow-press.txt") {
		t.Errorf("exception explain %+v rule %+v", x, x.Rule)
	}
	if !strings.HasPrefix(x.Reason, "allowed by the exception in list press (rule www.tiktok.com,") {
		t.Errorf("reason %q", x.Reason)
	}
	var blockMatched bool
	for _, m := range x.Lists {
		blockMatched = blockMatched || (m.List == "tiktok" && m.Matched && !m.Decided)
	}
	if !blockMatched {
		t.Errorf("the overruled block match is not shown: %+v", x.Lists)
	}

	x = e.Explain(addr("10.1.1.1"), "good.ads.example")
	if x.Action != "allow" || x.Rule == nil || x.Rule.Line != 3 || x.Lists[2].Exception == nil {
		t.Errorf("in-list exception explain %+v", x)
	}
	x = e.Explain(addr("10.1.1.1"), "a.beta-app.example")
	if x.Action != "monitor" || x.Rule == nil || x.Rule.Rule != "*.beta-app.example" || x.Rule.Line != 3 {
		t.Errorf("monitor explain %+v", x)
	}
	x = e.Explain(addr("192.0.2.1"), "www.tiktok.com")
	if x.Action != "allow" || !strings.Contains(x.Reason, "no default_group") {
		t.Errorf("no-group explain %+v", x)
	}
	x = e.Explain(addr("10.1.1.1"), "example.org")
	if x.Action != "allow" || x.Reason != "allowed: none of group government-devices's lists covers the name" {
		t.Errorf("unmatched explain %+v", x)
	}
	if b, err := json.Marshal(x); err != nil || !strings.Contains(string(b), `"group":"government-devices"`) {
		t.Errorf("json %s, %v", b, err)
	}
}

func BenchmarkDecide(b *testing.B) {
	e := policyEngine(b)
	client := addr("10.1.1.1")
	b.ReportAllocs()
	for b.Loop() {
		e.Decide(client, "v16-webapp.tiktokcdn.com.")
	}
}

// TestGuardSparesAllowOnlyLists: an exception list may name a never-block
// apex (it blocks nothing); the same name in a block list is dropped.
func TestGuardSparesAllowOnlyLists(t *testing.T) {
	dir := t.TempDir()
	tempFile(t, dir, "allow.txt", "apple.com\n")
	tempFile(t, dir, "block.txt", "apple.com\nbad.example\n")
	cfg := Config{
		Lists: map[string]ListConfig{
			"exceptions": {Sources: []string{"allow.txt"}},
			"bad":        {Sources: []string{"block.txt"}},
		},
		Groups: []GroupConfig{{Name: "all", Clients: []string{"0.0.0.0/0"}, Block: []string{"bad"}, Allow: []string{"exceptions"}}},
		Guard:  GuardConfig{NeverBlock: []string{"builtin:never-block"}},
	}
	e := newEngine(t, cfg, Options{BaseDir: dir})
	expect(t, e, "10.0.0.1", "www.apple.com.", Allow, "exceptions")
	expect(t, e, "10.0.0.1", "bad.example.", Block, "bad")
	if st := listStatus(t, e, "exceptions"); st.Rules != 1 || st.Rejected != 0 {
		t.Errorf("allow-only list: %d rules, %d rejected; want 1 and 0", st.Rules, st.Rejected)
	}
	if st := listStatus(t, e, "bad"); st.Rules != 1 || st.Rejected != 1 {
		t.Errorf("block list: %d rules, %d rejected; want 1 and 1 (apple.com dropped)", st.Rules, st.Rejected)
	}
}
