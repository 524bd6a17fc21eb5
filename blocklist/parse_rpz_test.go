package blocklist

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParseRPZFile(t *testing.T) {
	f, err := os.Open("testdata/protective-dns.rpz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := Parse(f)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if p.Format != FormatRPZ {
		t.Errorf("format %q, want rpz", p.Format)
	}
	want := []string{
		"block =tiktok.com nxdomain", "block *.tiktok.com nxdomain", "block =tiktokv.com nxdomain",
		"block =byteoversea.com nxdomain", "block =ibytedtos.com nodata",
		"pass =newsroom.tiktok.com", "pass =press.tiktok.com",
		"block =drop.example.com drop", "block =local.example.com local-data A 10.0.0.53",
		"block =walled.example.com local-data CNAME walled-garden.example.gov.",
		"block 127.0.0.1/32 nxdomain",
		"block =tcp.example.com tcp-only",
		"block *.garden.example.com local-data A 192.0.2.80",
		"block *.garden.example.com local-data AAAA 2001:db8::80",
		`block *.garden.example.com local-data TXT "blocked by policy; see https://intranet.example.gov/dns"`,
		"block 71.18.0.0/24 nxdomain", "block 2404:8d04:2643::/48 drop", "pass 71.18.0.1/32",
	}
	if got := describeRules(p.Rules); !slices.Equal(got, want) {
		t.Errorf("rules\n got %q\nwant %q", got, want)
	}
	if p.Rules[0].Line != 13 {
		t.Errorf("first rule on line %d, want 13", p.Rules[0].Line)
	}
	if ttl := p.Rules[8].Record.Header().Ttl; ttl != 300 {
		t.Errorf("local data TTL %d, want the zone's $TTL 300", ttl)
	}
	wantRejected := map[int]string{30: "rpz-nsdname", 31: "outside the zone rpz.example.gov."}
	if p.RejectedCount != len(wantRejected) {
		t.Fatalf("rejected %d: %+v", p.RejectedCount, p.Rejected)
	}
	for _, r := range p.Rejected {
		if !strings.Contains(r.Reason, wantRejected[r.Line]) {
			t.Errorf("line %d rejected for %q, want %q", r.Line, r.Reason, wantRejected[r.Line])
		}
	}
}

func TestParseRPZ(t *testing.T) {
	const soa = "@ SOA localhost. root.localhost. 1 3600 600 86400 60\n"
	runParseCases(t, []parseCase{
		{name: "no origin: relative names", format: FormatRPZ,
			in:    "$TTL 60\n" + soa + " NS localhost.\nA.example CNAME .\n*.b.example CNAME *.\nok.a.example CNAME RPZ-PASSTHRU.\n",
			rules: []string{"block =a.example nxdomain", "block *.b.example nodata", "pass =ok.a.example"}},
		{name: "SOA owner is the origin", format: FormatRPZ,
			in:    "rpz.local. 300 IN SOA ns. host. 1 1 1 1 1\ntiktok.com.rpz.local. 300 IN CNAME .\n",
			rules: []string{"block =tiktok.com nxdomain"}},
		{name: "owner omitted repeats the previous one", format: FormatRPZ,
			in:    "$ORIGIN z.\n" + soa + "a.example CNAME .\n  TXT \"note\"\n",
			rules: []string{"block =a.example nxdomain"}, rejected: []string{"4: a second action for a.example.z."}},
		{name: "CRLF, BOM and comments", format: FormatRPZ,
			in:    "\xef\xbb\xbf$ORIGIN z.\r\n; comment\r\n" + soa + "a.example CNAME . ; trailing\r\n",
			rules: []string{"block =a.example nxdomain"}},
		{name: "syntax errors do not stop the feed", format: FormatRPZ,
			in: "$ORIGIN z.\n" + soa + "bad..name CNAME .\na.example CNAME\nb.example BOGUS .\n" +
				"$INCLUDE /etc/passwd\n$GENERATE 1-2 x$ CNAME .\nc.example CNAME .\nd.example CNAME . (\n",
			rules: []string{"block =c.example nxdomain"}, rejected: []string{
				"3: zone syntax", "4: CNAME without a target", "5: zone syntax", "6: $INCLUDE is not supported",
				"7: unsupported zone directive", "9: missing ')'",
			}},
		{name: "unbalanced parentheses", format: FormatRPZ,
			in:    "$ORIGIN z.\n" + soa + "a.example CNAME . )\nb.example CNAME . (\n",
			rules: nil, rejected: []string{"3: unbalanced parentheses", "4: missing ')'"}},
		{name: "bad names and wildcards", format: FormatRPZ,
			in:       "$ORIGIN z.\n" + soa + "*.*.example CNAME .\n*.z. CNAME .\n1.2.3.4 CNAME .\n",
			rejected: []string{"3: wildcard '*'", "4: bare * would match every name", "5: IP address"}},
	})
}
