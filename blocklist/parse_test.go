package blocklist

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// describeRule renders a rule compactly for table tests: "block a.com",
// "allow *.a.com", "block a.com nxdomain", "pass =a.com" (an exact RPZ
// trigger), "block 192.0.2.0/24", "block =a.com local-data A 192.0.2.1".
func describeRule(r Rule) string {
	kind := "block"
	switch r.Kind {
	case KindAllow:
		kind = "allow"
	case KindPassthru:
		kind = "pass"
	}
	name := ruleText(r)
	if r.Scope == ScopeExact {
		name = "=" + name
	}
	out := kind + " " + name
	if r.Answer != AnswerDefault {
		out += " " + r.Answer.String()
	}
	if r.Record != nil {
		out += " " + localRecordsText([]dns.RR{r.Record})
	}
	return out
}

func describeRules(rules []Rule) []string {
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = describeRule(r)
	}
	return out
}

type parseCase struct {
	name     string
	in       string
	format   string
	rules    []string
	rejected []string // "line: reason substring"
}

func runParseCases(t *testing.T, cases []parseCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse(strings.NewReader(tc.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tc.format != "" && p.Format != tc.format {
				t.Errorf("format %q, want %q", p.Format, tc.format)
			}
			if got := describeRules(p.Rules); !slices.Equal(got, tc.rules) {
				t.Errorf("rules\n got %q\nwant %q", got, tc.rules)
			}
			if p.RejectedCount != len(tc.rejected) || len(p.Rejected) != len(tc.rejected) {
				t.Fatalf("rejected %d (%+v), want %d", p.RejectedCount, p.Rejected, len(tc.rejected))
			}
			for i, want := range tc.rejected {
				got := fmt.Sprintf("%d: %s", p.Rejected[i].Line, p.Rejected[i].Reason)
				if !strings.HasPrefix(want, fmt.Sprintf("%d: ", p.Rejected[i].Line)) ||
					!strings.Contains(got, strings.SplitN(want, ": ", 2)[1]) {
					t.Errorf("rejected[%d] = %q, want %q", i, got, want)
				}
			}
		})
	}
}

func TestParsePlain(t *testing.T) {
	runParseCases(t, []parseCase{
		{name: "upper case", in: "Example.COM\n", format: FormatPlain, rules: []string{"block example.com"}},
		{name: "CRLF", in: "a.com\r\nb.com\r\n", rules: []string{"block a.com", "block b.com"}},
		{name: "BOM", in: "\xef\xbb\xbfa.com\nb.com", rules: []string{"block a.com", "block b.com"}},
		{name: "trailing dot", in: "a.com.\n", rules: []string{"block a.com"}},
		{name: "comment after entry", in: "a.com # tracker\nb.com#x\nc.com\t# tab\n",
			rules: []string{"block a.com", "block b.com", "block c.com"}},
		{name: "blank lines and comments", in: "# header\n\n   \n\t\n! also a comment\na.com",
			rules: []string{"block a.com"}},
		{name: "IDN", in: "bücher.example\nBÜCHER.example.\n",
			rules: []string{"block xn--bcher-kva.example", "block xn--bcher-kva.example"}},
		{name: "punycode kept", in: "xn--bcher-kva.example\n", rules: []string{"block xn--bcher-kva.example"}},
		{name: "underscore", in: "hack_king10.net23.net\n", rules: []string{"block hack_king10.net23.net"}},
		{name: "wildcards", in: "*.a.com\n*.B.com.\nc.com\n", format: FormatWildcard,
			rules: []string{"block *.a.com", "block *.b.com", "block c.com"}},
		{name: "invalid names", in: strings.Join([]string{
			"*.*", "*", "1.2.3.4", "::1", "a..com", strings.Repeat("a", 64) + ".com",
			strings.Repeat("abcdefghi.", 25) + "comx", "a.b.123", "exa mple.com", "ex!ample.com",
			"ads.*.example", "*ads.example", ".", "good.example",
		}, "\n"), rules: []string{"block good.example"}, rejected: []string{
			"1: wildcard would match every name", "2: bare * would match every name",
			"3: IP address", "4: IPv6 address", "5: empty label", "6: label longer than 63",
			"7: name longer than 253", "8: numeric top-level label", "9: several fields",
			"10: invalid character '!'", "11: wildcard '*' is only allowed", "12: wildcard '*' is only allowed",
			"13: empty name",
		}},
		{name: "bad IDN", in: "b\u00fc\u200dcher.example\n", rules: nil, rejected: []string{
			"1: invalid internationalised name",
		}},
	})
}

func TestParseHosts(t *testing.T) {
	runParseCases(t, []parseCase{
		{name: "addresses and several names", format: FormatHosts, in: "0.0.0.0 a.com\n" +
			"127.0.0.1 b.com C.com # comment\n" +
			":: d.com\n" +
			"0.0.0.0\te.com.\r\n",
			rules: []string{"block a.com", "block b.com", "block c.com", "block d.com", "block e.com"}},
		{name: "localhost names skipped", format: FormatHosts, in: "127.0.0.1 localhost\n" +
			"127.0.0.1 localhost.localdomain local\n" +
			"::1 localhost ip6-localhost ip6-loopback\n" +
			"255.255.255.255 broadcasthost\n" +
			"ff02::1 ip6-allnodes\n" +
			"0.0.0.0 0.0.0.0\n" +
			"0.0.0.0 x.com\n",
			rules: []string{"block x.com"}},
		{name: "bad name after address", in: "0.0.0.0 a.com 1.2.3.4 b..com\n",
			rules: []string{"block a.com"}, rejected: []string{"1: IP address", "1: empty label"}},
		{name: "address alone", in: "0.0.0.0 a.com\n0.0.0.0 b.com\n0.0.0.0\n",
			rules: []string{"block a.com", "block b.com"}, rejected: []string{"3: IP address"}},
	})
}

func TestParseAdblock(t *testing.T) {
	runParseCases(t, []parseCase{
		{name: "domain rules and exceptions", format: FormatAdblock, in: "[Adblock Plus 2.0]\n" +
			"! Title: test\n" +
			"||a.com^\n" +
			"@@||b.a.com^\n" +
			"||E.com\n" +
			"||f.com^|\n" +
			"||*.g.com^\n" +
			"||h.com^ # note\n",
			rules: []string{"block a.com", "allow b.a.com", "block e.com", "block f.com", "block *.g.com", "block h.com"}},
		{name: "not domain rules", in: "||c.com^$third-party\n" +
			"||d.com/path^\n" +
			"/ads[0-9]+\\.example/\n" +
			"example.com##.banner\n" +
			"|http://x.com\n" +
			"ads.example^\n" +
			"@@ads.example\n" +
			"||ads*.example^\n" +
			"||i.com^\n",
			rules: []string{"block i.com"}, rejected: []string{
				"1: modifiers ($third-party)", "2: path or pattern", "3: regular expression",
				"4: cosmetic", "5: without a || domain anchor", "6: without a || domain anchor",
				"7: without a || domain anchor", "8: wildcard '*'",
			}},
	})
}

func TestParseDnsmasq(t *testing.T) {
	runParseCases(t, []parseCase{
		{name: "blocking forms", format: FormatDnsmasq, in: "server=/a.com/\n" +
			"address=/b.com/0.0.0.0\n" +
			"address=/c.com/D.com/\n" +
			"local=/f.com/\n" +
			"server=/.g.com/ # comment\n" +
			"address=/h.com/::\r\n",
			rules: []string{"block a.com", "block b.com", "block c.com", "block d.com", "block f.com", "block g.com", "block h.com"}},
		{name: "not blocking", in: "server=/e.com/1.1.1.1\n" +
			"address=/#/0.0.0.0\n" +
			"server=a.com\n" +
			"server=/a.com\n" +
			"address=//\n",
			rejected: []string{"1: forwards to 1.1.1.1", "2: match every name", "3: without /name/",
				"4: without a closing", "5: empty name"}},
	})
}
