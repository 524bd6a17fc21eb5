package blocklist

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// rpzZone wraps records in a zone with an SOA, as a feed ships them.
func rpzZone(records ...string) string {
	return "$TTL 300\n$ORIGIN rpz.test.\n@ SOA ns.rpz.test. admin.rpz.test. 1 3600 600 86400 60\n  NS ns.rpz.test.\n" +
		strings.Join(records, "\n") + "\n"
}

// rpzEngine serves one group with the given lists, each from one file
// (name -> content), blocking with block and allowing with allow.
func rpzEngine(t testing.TB, files map[string]string, block, allow, monitor []string) *Engine {
	t.Helper()
	dir := t.TempDir()
	cfg := Config{Lists: map[string]ListConfig{}, Guard: GuardConfig{NeverBlock: []string{"builtin:never-block"}}}
	for name, content := range files {
		tempFile(t, dir, name+".txt", content)
		cfg.Lists[name] = ListConfig{Sources: []string{name + ".txt"}}
	}
	cfg.Groups = []GroupConfig{{Name: "staff", Clients: []string{"10.0.0.0/8", "2001:db8::/32"}, Block: block, Allow: allow, Monitor: monitor}}
	return newEngine(t, cfg, Options{BaseDir: dir})
}

func TestRPZExactAndWildcardTriggers(t *testing.T) {
	e := rpzEngine(t, map[string]string{
		"exact":    rpzZone("tiktok.test CNAME ."),
		"wildcard": rpzZone("*.bytedance.test CNAME ."),
		"plain":    "capcut.test\n",
	}, []string{"exact", "wildcard", "plain"}, nil, nil)
	for _, tc := range []struct {
		name   string
		action Action
		list   string
	}{
		{"tiktok.test", Block, "exact"},
		{"TikTok.Test.", Block, "exact"},
		{"www.tiktok.test", Allow, ""}, // an exact trigger is not a suffix rule
		{"a.b.tiktok.test", Allow, ""},
		{"bytedance.test", Allow, ""}, // *.name does not match name itself
		{"www.bytedance.test", Block, "wildcard"},
		{"a.b.bytedance.test", Block, "wildcard"},
		{"capcut.test", Block, "plain"}, // a plain list still covers the name and below
		{"www.capcut.test", Block, "plain"},
	} {
		expect(t, e, "10.1.1.1", tc.name, tc.action, tc.list)
	}
	v := e.Decide(addr("10.1.1.1"), "www.bytedance.test")
	if v.Rule != "*.bytedance.test" || v.Answer != AnswerNXDomain {
		t.Errorf("wildcard verdict %+v", v)
	}
}

// Within one RPZ, the most specific rule wins: exact over wildcard, the
// longest wildcard over shorter ones, and a passthru only where it is the
// most specific (as BIND and Unbound do).
func TestRPZPrecedenceWithinAZone(t *testing.T) {
	e := rpzEngine(t, map[string]string{
		"feed": rpzZone(
			"*.x.test CNAME .",
			"a.x.test CNAME *.",             // exact beats the wildcard
			"*.deep.x.test CNAME rpz-drop.", // a longer wildcard beats a shorter one
			"ok.x.test CNAME rpz-passthru.",
			"*.y.test CNAME rpz-passthru.",
			"bad.y.test CNAME .", // a more specific block beats a passthru
			"both.test CNAME rpz-passthru.",
			"both.test CNAME .", // the same name twice: passthru wins the tie (and is reported)
		),
	}, []string{"feed"}, nil, nil)
	for _, tc := range []struct {
		name   string
		action Action
		answer RuleAnswer
		rule   string
	}{
		{"b.x.test", Block, AnswerNXDomain, "*.x.test"},
		{"a.x.test", Block, AnswerNoData, "a.x.test"},
		{"www.a.x.test", Block, AnswerNXDomain, "*.x.test"},
		{"h.deep.x.test", Block, AnswerDrop, "*.deep.x.test"},
		{"deep.x.test", Block, AnswerNXDomain, "*.x.test"},
		{"ok.x.test", Allow, AnswerDefault, "ok.x.test"},
		{"www.ok.x.test", Block, AnswerNXDomain, "*.x.test"}, // the passthru is exact
		{"www.y.test", Allow, AnswerDefault, "*.y.test"},
		{"bad.y.test", Block, AnswerNXDomain, "bad.y.test"},
		{"www.bad.y.test", Allow, AnswerDefault, "*.y.test"},
		{"both.test", Allow, AnswerDefault, "both.test"},
	} {
		v := e.Decide(addr("10.1.1.1"), tc.name)
		if v.Action != tc.action || v.Answer != tc.answer || v.Rule != tc.rule {
			t.Errorf("Decide(%s) = %+v; want %s %s rule %s", tc.name, v, actionName(tc.action), tc.answer, tc.rule)
		}
	}
	if st := listStatus(t, e, "feed"); st.Rejected != 1 {
		t.Errorf("feed: %d rejected %+v; want the second action for both.test", st.Rejected, st.Sources[0].RejectedLines)
	}
}

// Across lists, dnsward's rule holds: an allow (an allow list, or a
// passthru standing in its list) beats a block from any other list.
func TestRPZAllowBeatsBlockAcrossLists(t *testing.T) {
	e := rpzEngine(t, map[string]string{
		"feed":       rpzZone("*.tiktok.test CNAME .", "tiktok.test CNAME ."),
		"exceptions": rpzZone("press.tiktok.test CNAME rpz-passthru."),
		"allowlist":  "newsroom.tiktok.test\n",
	}, []string{"feed", "exceptions"}, []string{"allowlist"}, nil)
	expect(t, e, "10.1.1.1", "www.tiktok.test", Block, "feed")
	expect(t, e, "10.1.1.1", "press.tiktok.test", Allow, "exceptions")
	expect(t, e, "10.1.1.1", "a.press.tiktok.test", Block, "feed") // the passthru is exact
	expect(t, e, "10.1.1.1", "newsroom.tiktok.test", Allow, "allowlist")
	expect(t, e, "10.1.1.1", "a.newsroom.tiktok.test", Allow, "allowlist") // plain allow lists cover below
}

func TestRPZActionsIntoVerdicts(t *testing.T) {
	e := rpzEngine(t, map[string]string{"feed": rpzZone(
		"nx.test CNAME .", "nodata.test CNAME *.", "drop.test CNAME rpz-drop.", "tcp.test CNAME rpz-tcp-only.",
		"pass.test CNAME rpz-passthru.", "self.test CNAME self.test.",
		"walled.test CNAME walled.garden.example.", "page.test A 192.0.2.80",
	)}, []string{"feed"}, nil, nil)
	for name, want := range map[string]struct {
		action Action
		answer RuleAnswer
	}{
		"nx.test": {Block, AnswerNXDomain}, "nodata.test": {Block, AnswerNoData},
		"drop.test": {Block, AnswerDrop}, "tcp.test": {Block, AnswerTCPOnly},
		"pass.test": {Allow, AnswerDefault}, "self.test": {Allow, AnswerDefault},
		"walled.test": {Block, AnswerLocal}, "page.test": {Block, AnswerLocal},
	} {
		v := e.Decide(addr("10.1.1.1"), name)
		if v.Action != want.action || v.Answer != want.answer || v.List != "feed" || v.Rule != name {
			t.Errorf("Decide(%s) = %+v; want %s %s", name, v, actionName(want.action), want.answer)
		}
	}
}

func TestRPZLocalData(t *testing.T) {
	e := rpzEngine(t, map[string]string{"feed": rpzZone(
		"walled.test CNAME blocked.intranet.example.",
		"*.garden.test 60 A 192.0.2.80",
		"              60 A 192.0.2.81",
		"              AAAA 2001:db8::80",
		`              TXT "blocked by policy"`,
	)}, []string{"feed"}, nil, nil)
	v := e.Decide(addr("10.1.1.1"), "WWW.Garden.Test.")
	if v.Action != Block || v.Answer != AnswerLocal || len(v.Local) != 4 || v.Rule != "*.garden.test" {
		t.Fatalf("local data verdict %+v", v)
	}
	for qtype, want := range map[uint16][]string{
		dns.TypeA:    {"WWW.Garden.Test.\t60\tIN\tA\t192.0.2.80", "WWW.Garden.Test.\t60\tIN\tA\t192.0.2.81"},
		dns.TypeAAAA: {"WWW.Garden.Test.\t300\tIN\tAAAA\t2001:db8::80"},
		dns.TypeTXT:  {"WWW.Garden.Test.\t300\tIN\tTXT\t\"blocked by policy\""},
		dns.TypeMX:   nil, // answered as NODATA
	} {
		got := v.LocalAnswer("WWW.Garden.Test.", qtype)
		if len(got) != len(want) {
			t.Errorf("%s: %v; want %v", dns.TypeToString[qtype], got, want)
			continue
		}
		for i := range got {
			if got[i].String() != want[i] {
				t.Errorf("%s[%d] = %q; want %q", dns.TypeToString[qtype], i, got[i], want[i])
			}
		}
	}
	if v.Local[0].Header().Name != "*.garden.test.rpz.test." {
		t.Errorf("LocalAnswer changed the shared record: owner %s", v.Local[0].Header().Name)
	}
	expect(t, e, "10.1.1.1", "garden.test", Allow, "")

	v = e.Decide(addr("10.1.1.1"), "walled.test")
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT} {
		got := v.LocalAnswer("walled.test", qtype)
		if len(got) != 1 || got[0].String() != "walled.test.\t300\tIN\tCNAME\tblocked.intranet.example." {
			t.Errorf("walled garden for %s: %v", dns.TypeToString[qtype], got)
		}
	}
}

func TestRPZRejectsConflictingAndUnsupportedRecords(t *testing.T) {
	runParseCases(t, []parseCase{
		{name: "CNAME and data at one owner", format: FormatRPZ,
			in:       rpzZone("a.test CNAME .", "  A 192.0.2.1", "b.test A 192.0.2.2", "  CNAME .", "  TXT \"ok\""),
			rules:    []string{"block =a.test nxdomain", "block =b.test local-data A 192.0.2.2", `block =b.test local-data TXT "ok"`},
			rejected: []string{"6: a second action for a.test.rpz.test.", "8: a second action for b.test.rpz.test."}},
		{name: "zone structure is not local data", format: FormatRPZ,
			in:       rpzZone("sub.test NS ns.example.", "sub.test DS 1 8 2 AAAA", "x.test DNAME y.example."),
			rejected: []string{"5: NS record below the apex", "6: DS record below the apex", "7: DNAME record below the apex"}},
		{name: "unknown and wildcard CNAME targets", format: FormatRPZ,
			in:       rpzZone("a.test CNAME rpz-nope.", "b.test CNAME *.garden.example."),
			rejected: []string{"5: unknown RPZ action CNAME rpz-nope.", "6: wildcard target"}},
		{name: "other triggers", format: FormatRPZ,
			in:       rpzZone("32.1.0.0.10.rpz-client-ip CNAME rpz-drop.", "ns.x.rpz-nsdname CNAME .", "32.1.0.0.10.rpz-nsip CNAME .", "*.1.0.0.10.rpz-ip CNAME ."),
			rejected: []string{"5: rpz-client-ip", "6: rpz-nsdname", "7: rpz-nsip", "8: wildcard rpz-ip"}},
		{name: "bad $TTL", format: FormatRPZ, in: rpzZone("$TTL forever", "a.test CNAME ."),
			rules: []string{"block =a.test nxdomain"}, rejected: []string{"5: $TTL needs one TTL"}},
	})
}

// An exact rule blocks only its name, so the guard lets a public suffix
// through (harmless) but not a never-block name itself.
func TestRPZGuardOnExactRules(t *testing.T) {
	e := rpzEngine(t, map[string]string{"feed": rpzZone(
		"com CNAME .", "apple.com CNAME .", "www.apple.com CNAME .", "*.apple.com CNAME .",
	)}, []string{"feed"}, nil, nil)
	expect(t, e, "10.1.1.1", "com", Block, "feed")
	expect(t, e, "10.1.1.1", "example.com", Allow, "")
	expect(t, e, "10.1.1.1", "apple.com", Allow, "")
	expect(t, e, "10.1.1.1", "www.apple.com", Block, "feed")
	expect(t, e, "10.1.1.1", "support.apple.com", Allow, "")
	st := listStatus(t, e, "feed")
	if st.Rejected != 2 {
		t.Errorf("rejected %d: %+v; want apple.com and *.apple.com", st.Rejected, st.Sources[0].RejectedLines)
	}
}

func TestDecideZeroAllocRPZ(t *testing.T) {
	e := rpzEngine(t, map[string]string{"feed": rpzZone(
		"*.x.test CNAME .", "ok.x.test CNAME rpz-passthru.", "page.test A 192.0.2.80", "*.y.test CNAME rpz-passthru.", "bad.y.test CNAME .",
	)}, []string{"feed"}, nil, nil)
	client := addr("10.1.1.1")
	allocs := testing.AllocsPerRun(200, func() {
		e.Decide(client, "a.x.test")
		e.Decide(client, "ok.x.test")
		e.Decide(client, "page.test")
		e.Decide(client, "www.y.test")
		e.Decide(client, "bad.y.test")
		e.Decide(client, "example.org")
	})
	if allocs != 0 {
		t.Errorf("Decide allocates %.1f times per run; want 0", allocs)
	}
}
