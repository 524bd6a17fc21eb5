package blocklist

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// readFuzzSeed decodes one committed corpus file ("go test fuzz v1" and a
// []byte literal).
func readFuzzSeed(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	header, lit, _ := strings.Cut(string(data), "\n")
	lit = strings.TrimSpace(lit)
	if header != "go test fuzz v1" || !strings.HasPrefix(lit, "[]byte(") || !strings.HasSuffix(lit, ")") {
		t.Fatalf("%s: not a one-value fuzz corpus file", path)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lit, "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(s)
}

// TestFuzzParseSeedsReachEveryFormat: the committed FuzzParse corpus starts
// the fuzzer in every list format (detected as such, with rules parsed),
// so mutations explore each format's parser rather than the error path.
func TestFuzzParseSeedsReachEveryFormat(t *testing.T) {
	want := map[string]string{
		"seed-plain": FormatPlain, "seed-hosts": FormatHosts, "seed-adblock": FormatAdblock,
		"seed-dnsmasq": FormatDnsmasq, "seed-wildcard": FormatWildcard, "seed-rpz": FormatRPZ, "seed-rpz-paren": FormatRPZ,
	}
	seen := map[string]bool{}
	for name, format := range want {
		p, err := Parse(bytes.NewReader(readFuzzSeed(t, filepath.Join("testdata", "fuzz", "FuzzParse", name))))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if p.Format != format || len(p.Rules) == 0 {
			t.Errorf("%s: format %s with %d rules, want %s with some", name, p.Format, len(p.Rules), format)
		}
		seen[p.Format] = true
	}
	for _, f := range []string{FormatPlain, FormatHosts, FormatAdblock, FormatDnsmasq, FormatWildcard, FormatRPZ} {
		if !seen[f] {
			t.Errorf("no seed reaches format %s", f)
		}
	}
}
