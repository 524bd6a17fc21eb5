package blocklist

import (
	"os"
	"sort"
	"testing"
)

func parseTestFile(t testing.TB, path string) Parsed {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := Parse(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return p
}

// The Block List Project ships one list in four formats; all must give the
// same rules.
func TestParseRealListFormatsAgree(t *testing.T) {
	formats := map[string]string{
		"domains": FormatPlain, "hosts": FormatHosts, "adblock": FormatAdblock, "dnsmasq": FormatDnsmasq,
	}
	var want []string
	for _, ext := range []string{"domains", "hosts", "adblock", "dnsmasq"} {
		p := parseTestFile(t, "testdata/blocklistproject-tiktok."+ext)
		if p.Format != formats[ext] {
			t.Errorf("%s: format %q, want %q", ext, p.Format, formats[ext])
		}
		if p.RejectedCount != 0 {
			t.Errorf("%s: %d rejected, first %+v", ext, p.RejectedCount, p.Rejected)
		}
		if p.Lines != 3738 {
			t.Errorf("%s: %d lines, want 3738", ext, p.Lines)
		}
		got := describeRules(p.Rules)
		sort.Strings(got)
		if len(got) != 3725 {
			t.Errorf("%s: %d rules, want 3725", ext, len(got))
		}
		if want == nil {
			want = got
			continue
		}
		for i := range max(len(got), len(want)) {
			if i >= len(got) || i >= len(want) || got[i] != want[i] {
				t.Fatalf("%s differs from domains at sorted rule %d", ext, i)
			}
		}
	}
}

// The real list names single hosts under shared CDNs and the Firebase
// analytics apex; the guard must drop exactly the apex.
func TestGuardOnRealList(t *testing.T) {
	p := parseTestFile(t, "testdata/blocklistproject-tiktok.domains")
	g := NewGuard([]string{"googleusercontent.com", "cloudfront.net", "app-measurement.com", "edgesuite.net"})
	var dropped []string
	for _, r := range p.Rules {
		if reason := g.Check(r); reason != "" {
			dropped = append(dropped, r.Name)
		}
	}
	if len(dropped) != 1 || dropped[0] != "app-measurement.com" {
		t.Errorf("guard dropped %q, want only app-measurement.com", dropped)
	}
}
