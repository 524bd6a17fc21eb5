package blocklist

import (
	"strings"
	"testing"
)

func TestGuardCheck(t *testing.T) {
	g := NewGuard([]string{"googleusercontent.com", "GOV.UK.", " apple.com ", "not a name!"})
	cases := []struct {
		rule Rule
		want string // substring of the reason; "" = allowed
	}{
		{Rule{Name: "com"}, "public suffix com"},
		{Rule{Name: "co.uk"}, "public suffix co.uk"},
		{Rule{Name: "github.io"}, "public suffix github.io"},
		{Rule{Name: "localhost"}, "public suffix"}, // unknown TLD: one label is a suffix
		{Rule{Name: "com", Scope: ScopeBelow}, "public suffix com"},
		{Rule{Name: "googleusercontent.com"}, "never-block name googleusercontent.com"},
		{Rule{Name: "googleusercontent.com", Scope: ScopeBelow}, "every name under never-block name"},
		{Rule{Name: "gov.uk"}, "public suffix"},
		{Rule{Name: "service.gov.uk"}, "public suffix"}, // PSL private section
		{Rule{Name: "www.gov.uk"}, ""},
		{Rule{Name: "apple.com"}, "never-block name apple.com"},
		{Rule{Name: "abc.googleusercontent.com"}, ""},
		{Rule{Name: "tiktok.com"}, ""},
		{Rule{Name: "user.github.io"}, ""},
		{Rule{Name: "com", Kind: KindAllow}, ""},
		{Rule{Name: "googleusercontent.com", Kind: KindAllow}, ""},
	}
	for _, tc := range cases {
		got := g.Check(tc.rule)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("Check(%s) = %q, want %q", describeRule(tc.rule), got, tc.want)
		}
	}
}

// Never-block names under a blocked apex: a rule for the apex would block
// them, so it is refused.
func TestGuardCoversNeverBlockBelow(t *testing.T) {
	g := NewGuard([]string{"login.microsoftonline.com"})
	if got := g.Check(Rule{Name: "microsoftonline.com"}); !strings.Contains(got, "would block never-block name login.microsoftonline.com") {
		t.Errorf("Check = %q", got)
	}
	if got := g.Check(Rule{Name: "other.microsoftonline.com"}); got != "" {
		t.Errorf("sibling rejected: %q", got)
	}
}
