package blocklist

import (
	"fmt"
	"strings"
	"testing"
)

func mustIndex(t testing.TB, lists ...[]Rule) *Index {
	t.Helper()
	ix, err := BuildIndex(lists)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func blockRules(names ...string) []Rule {
	rules := make([]Rule, len(names))
	for i, n := range names {
		rules[i] = Rule{Name: strings.TrimPrefix(n, "*."), Line: i + 1}
		if strings.HasPrefix(n, "*.") {
			rules[i].Scope = ScopeBelow
		}
	}
	return rules
}

// hitText renders a hit as "list:rule" or "-".
func hitText(h Hit) string {
	if !h.Found {
		return "-"
	}
	return fmt.Sprintf("%d:%s", h.List, h.Rule)
}

func TestIndexSuffixCoverage(t *testing.T) {
	ix := mustIndex(t, blockRules("tiktok.com", "tiktokcdn.com"))
	m := Masks{Block: 1}
	for name, want := range map[string]string{
		"tiktok.com":                             "0:tiktok.com",
		"tiktok.com.":                            "0:tiktok.com",
		"v16-webapp.tiktok.com.":                 "0:tiktok.com",
		"WWW.TikTok.COM.":                        "0:tiktok.com",
		"a.b.c.tiktokcdn.com":                    "0:tiktokcdn.com",
		"nottiktok.com.":                         "-",
		"tiktok.com.evil.example":                "-",
		"com.":                                   "-",
		".":                                      "-",
		"":                                       "-",
		"tiktok..com":                            "-",
		strings.Repeat("a.", 130) + "tiktok.com": "-", // over 253: not a name
	} {
		block, _, _ := ix.Lookup(name, m)
		if got := hitText(block); got != want {
			t.Errorf("Lookup(%q) block = %s, want %s", name, got, want)
		}
	}
	if block, _, _ := ix.Lookup("tiktok.com", Masks{Allow: 1}); block.Found {
		t.Error("list not in the block mask blocked")
	}
}

func TestIndexMostSpecificAndBelow(t *testing.T) {
	ix := mustIndex(t, blockRules("example.com", "*.ads.example.com", "*.cdn.net"))
	m := Masks{Block: 1}
	for name, want := range map[string]string{
		"example.com":          "0:example.com",
		"ads.example.com":      "0:example.com", // *.ads.example.com does not match itself
		"x.ads.example.com":    "0:*.ads.example.com",
		"cdn.net":              "-",
		"edge.cdn.net.":        "0:*.cdn.net",
		"deep.edge.cdn.net":    "0:*.cdn.net",
		"xcdn.net":             "-",
		"EXAMPLE.COM.evil.net": "-",
	} {
		block, _, _ := ix.Lookup(name, m)
		if got := hitText(block); got != want {
			t.Errorf("Lookup(%q) block = %s, want %s", name, got, want)
		}
	}
}

func TestIndexAllowAndMonitor(t *testing.T) {
	lists := [][]Rule{
		blockRules("tiktok.com"), // 0: block
		{{Name: "tiktok.com"}, {Name: "ok.tiktok.com", Kind: KindAllow}}, // 1: with its own exception
		blockRules("newsroom.tiktok.com"),                                // 2: allow list (any kind allows)
		blockRules("bytedance.com", "*.tiktok.com"),                      // 3: monitor
	}
	ix := mustIndex(t, lists...)
	cases := []struct {
		m                     Masks
		name                  string
		block, allow, monitor string
	}{
		{Masks{Block: 1}, "www.tiktok.com", "0:tiktok.com", "-", "-"},
		{Masks{Block: 1 | 4}, "newsroom.tiktok.com", "2:newsroom.tiktok.com", "-", "-"}, // most specific
		{Masks{Block: 1, Allow: 4}, "newsroom.tiktok.com", "0:tiktok.com", "2:newsroom.tiktok.com", "-"},
		{Masks{Block: 1, Allow: 4}, "a.newsroom.tiktok.com", "0:tiktok.com", "2:newsroom.tiktok.com", "-"},
		{Masks{Block: 1, Allow: 4}, "other.tiktok.com", "0:tiktok.com", "-", "-"},
		{Masks{Block: 2}, "ok.tiktok.com", "1:tiktok.com", "1:ok.tiktok.com", "-"},
		{Masks{Monitor: 2}, "x.ok.tiktok.com", "-", "1:ok.tiktok.com", "1:tiktok.com"},
		{Masks{Block: 1}, "ok.tiktok.com", "0:tiktok.com", "-", "-"}, // list 1's exception only for list 1
		{Masks{Block: 1, Monitor: 8}, "www.tiktok.com", "0:tiktok.com", "-", "3:*.tiktok.com"},
		{Masks{Block: 1, Monitor: 8}, "tiktok.com", "0:tiktok.com", "-", "-"},
		{Masks{Monitor: 8}, "api.bytedance.com.", "-", "-", "3:bytedance.com"},
		{Masks{Allow: 1}, "tiktok.com", "-", "0:tiktok.com", "-"},
	}
	for _, tc := range cases {
		b, a, mon := ix.Lookup(tc.name, tc.m)
		if hitText(b) != tc.block || hitText(a) != tc.allow || hitText(mon) != tc.monitor {
			t.Errorf("Lookup(%q, %+v) = %s %s %s, want %s %s %s", tc.name, tc.m,
				hitText(b), hitText(a), hitText(mon), tc.block, tc.allow, tc.monitor)
		}
	}
}

func TestIndexLowestListBitWinsTies(t *testing.T) {
	lists := make([][]Rule, 64)
	for i := range lists {
		lists[i] = blockRules(fmt.Sprintf("list%d.example", i))
	}
	for _, i := range []int{5, 17, 63} {
		lists[i] = append(lists[i], Rule{Name: "shared.example", Answer: RuleAnswer(i % 3)})
	}
	ix := mustIndex(t, lists...)
	if ix.Len() != 65 {
		t.Errorf("Len = %d, want 65", ix.Len())
	}
	for _, tc := range []struct {
		mask uint64
		want string
		ans  RuleAnswer
	}{
		{^uint64(0), "5:shared.example", AnswerNoData},
		{1<<17 | 1<<63, "17:shared.example", AnswerNoData},
		{1 << 63, "63:shared.example", AnswerDefault},
		{1 << 6, "-", AnswerDefault},
	} {
		b, _, _ := ix.Lookup("www.shared.example", Masks{Block: tc.mask})
		if hitText(b) != tc.want || b.Answer != tc.ans {
			t.Errorf("mask %x: %s answer %d, want %s answer %d", tc.mask, hitText(b), b.Answer, tc.want, tc.ans)
		}
	}
	if b, _, _ := ix.Lookup("list63.example", Masks{Block: 1 << 63}); hitText(b) != "63:list63.example" {
		t.Errorf("bit 63: %s", hitText(b))
	}
	if _, err := BuildIndex(make([][]Rule, 65)); err == nil || !strings.Contains(err.Error(), "at most 64") {
		t.Errorf("65 lists: err = %v", err)
	}
}

// One name in many roles: block and ScopeBelow in one list, allow in
// another, an RPZ answer in a third.
func TestIndexSameNameManyRoles(t *testing.T) {
	ix := mustIndex(t,
		[]Rule{{Name: "x.com", Scope: ScopeBelow, Answer: AnswerNoData}},
		[]Rule{{Name: "x.com", Kind: KindAllow}},
		[]Rule{{Name: "x.com", Answer: AnswerNXDomain}, {Name: "x.com", Answer: AnswerNoData}},
	)
	if ix.Len() != 1 {
		t.Errorf("Len = %d, want 1", ix.Len())
	}
	cases := []struct {
		name   string
		m      Masks
		block  string
		answer RuleAnswer
		allow  string
	}{
		{"x.com", Masks{Block: 1}, "-", AnswerDefault, "-"},
		{"a.x.com", Masks{Block: 1}, "0:*.x.com", AnswerNoData, "-"},
		{"a.x.com", Masks{Block: 5}, "0:*.x.com", AnswerNoData, "-"},
		{"x.com", Masks{Block: 5}, "2:x.com", AnswerNXDomain, "-"}, // first rule of a list decides
		{"a.x.com", Masks{Block: 1, Allow: 2}, "0:*.x.com", AnswerNoData, "1:x.com"},
		{"x.com", Masks{Block: 2}, "-", AnswerDefault, "1:x.com"}, // exception in a block list
	}
	for _, tc := range cases {
		b, a, _ := ix.Lookup(tc.name, tc.m)
		if hitText(b) != tc.block || b.Answer != tc.answer || hitText(a) != tc.allow {
			t.Errorf("Lookup(%q, %+v) = %s/%d %s, want %s/%d %s", tc.name, tc.m,
				hitText(b), b.Answer, hitText(a), tc.block, tc.answer, tc.allow)
		}
	}
}

func TestIndexRejectsNonCanonicalRules(t *testing.T) {
	for _, name := range []string{"", "Upper.com", "a..com", "trailing.com.", strings.Repeat("a", 254)} {
		_, err := BuildIndex([][]Rule{{{Name: name, Line: 7}}})
		if err == nil || !strings.Contains(err.Error(), "list 0 line 7") {
			t.Errorf("%q: err = %v", name, err)
		}
	}
	ix, err := BuildIndex(nil)
	if err != nil || ix.Len() != 0 {
		t.Fatalf("empty: %v", err)
	}
	if b, a, m := ix.Lookup("a.com", Masks{Block: 1}); b.Found || a.Found || m.Found {
		t.Error("empty index found a rule")
	}
	var nilIndex *Index
	if b, _, _ := nilIndex.Lookup("a.com", Masks{Block: 1}); b.Found || nilIndex.Len() != 0 {
		t.Error("nil index found a rule")
	}
}

func TestIndexRealListAndNoAllocs(t *testing.T) {
	p := parseTestFile(t, "testdata/blocklistproject-tiktok.domains")
	ix := mustIndex(t, p.Rules, blockRules("bytedance.com"))
	if ix.Len() != 3726 {
		t.Errorf("Len = %d, want 3726", ix.Len())
	}
	m := Masks{Block: 1, Monitor: 2}
	for _, r := range p.Rules {
		if b, _, _ := ix.Lookup(strings.ToUpper(r.Name)+".", m); !b.Found {
			t.Fatalf("%s not found", r.Name)
		}
	}
	for _, name := range []string{"v16-webapp.tiktok.com.", "WWW.TikTok.COM.", "nottiktok.com.", "a.b.c.d.e.f.example.org."} {
		if allocs := testing.AllocsPerRun(100, func() { ix.Lookup(name, m) }); allocs != 0 {
			t.Errorf("Lookup(%q) allocates %.1f times", name, allocs)
		}
	}
}

// A passthru that stands in one list is found even when a more specific
// passthru of another list was overridden by that list's exact block.
func TestIndexPassthruAcrossLevels(t *testing.T) {
	ix := mustIndex(t,
		[]Rule{{Name: "a.test", Scope: ScopeBelow, Kind: KindPassthru}},
		[]Rule{{Name: "b.a.test", Scope: ScopeBelow, Kind: KindPassthru}, {Name: "c.b.a.test", Scope: ScopeExact}},
	)
	for _, tc := range []struct {
		m            Masks
		name         string
		block, allow string
	}{
		{Masks{Block: 3}, "c.b.a.test", "1:c.b.a.test", "0:*.a.test"},
		{Masks{Block: 2}, "c.b.a.test", "1:c.b.a.test", "-"},
		{Masks{Block: 2}, "d.b.a.test", "-", "1:*.b.a.test"},
		{Masks{Block: 2}, "x.c.b.a.test", "-", "1:*.b.a.test"}, // the exact block covers only its name
		{Masks{Block: 1}, "a.test", "-", "-"},
	} {
		b, a, _ := ix.Lookup(tc.name, tc.m)
		if hitText(b) != tc.block || hitText(a) != tc.allow {
			t.Errorf("Lookup(%s, %+v) = %s %s; want %s %s", tc.name, tc.m, hitText(b), hitText(a), tc.block, tc.allow)
		}
	}
}
