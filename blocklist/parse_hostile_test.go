package blocklist

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseBinaryJunkFails(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	junk := make([]byte, 64<<10)
	for i := range junk {
		junk[i] = byte(rng.Uint32())
	}
	cases := map[string][]byte{
		"random bytes":        junk,
		"NUL after good line": []byte("a.com\nb.com\x00c.com\n"),
		"gzip header":         {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00},
		"UTF-16":              []byte("\xff\xfea\x00.\x00c\x00o\x00m\x00\n\x00"),
		"control bytes only":  bytes.Repeat([]byte("\x01\x02\x03\x1b[0m\n"), 100),
		"HTML login page":     []byte("\n<!DOCTYPE html>\n<html><body>Sign in</body></html>\n"),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(bytes.NewReader(in))
			if !errors.Is(err, errNotText) || !strings.Contains(err.Error(), "line ") {
				t.Fatalf("err = %v, want a 'not a text list' error naming the line", err)
			}
		})
	}
	_, err := Parse(bytes.NewReader([]byte("a.com\nb.com\x00c.com\n")))
	if !strings.HasPrefix(err.Error(), "line 2: ") {
		t.Errorf("err = %v, want it to name line 2", err)
	}
}

func TestParseStrayBadLineKeepsList(t *testing.T) {
	p, err := Parse(strings.NewReader("a.com\nb\x01.com\nc.com\n\xff\xfe.com\nd.com\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Rules) != 3 || p.RejectedCount != 2 || p.Rejected[0].Line != 2 || p.Rejected[1].Line != 4 {
		t.Errorf("rules %q rejected %+v", describeRules(p.Rules), p.Rejected)
	}
}

func TestParseHugeLine(t *testing.T) {
	in := "a.com\n" + strings.Repeat("x", 10<<20) + "\nb.com\n" + strings.Repeat("y.", 3000) + "com\nc.com"
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	p, err := Parse(strings.NewReader(in))
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if got := describeRules(p.Rules); len(got) != 3 || got[2] != "block c.com" {
		t.Errorf("rules %q, want a.com b.com c.com", got)
	}
	if p.RejectedCount != 2 || p.Rejected[0].Line != 2 || p.Rejected[1].Line != 4 ||
		!strings.Contains(p.Rejected[0].Reason, "longer than 4096") {
		t.Errorf("rejected %+v", p.Rejected)
	}
	if n := len(p.Rejected[0].Text); n > maxRejectedText {
		t.Errorf("rejected text is %d bytes", n)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("parsing a 10 MB line allocated %d bytes, want < 1 MiB", alloc)
	}
}

func TestParseHugeBinaryLineFails(t *testing.T) {
	in := "a.com\n" + strings.Repeat("x", 5<<20) + "\x00" + strings.Repeat("x", 100)
	if _, err := Parse(strings.NewReader(in)); !errors.Is(err, errNotText) {
		t.Fatalf("err = %v, want not a text list", err)
	}
}

func TestParseEmptyAndCommentsOnly(t *testing.T) {
	for name, in := range map[string]string{
		"empty": "", "newlines": "\n\n\r\n", "comments": "# a\n! b\n[Adblock Plus 2.0]\n   # c\n",
		"BOM only": "\xef\xbb\xbf",
	} {
		p, err := Parse(strings.NewReader(in))
		if err != nil || len(p.Rules) != 0 || p.RejectedCount != 0 {
			t.Errorf("%s: rules %d rejected %d err %v", name, len(p.Rules), p.RejectedCount, err)
		}
	}
}

func TestParseReadError(t *testing.T) {
	r := iotest.TimeoutReader(strings.NewReader(strings.Repeat("a.com\n", 100000)))
	if _, err := Parse(r); err == nil || !strings.Contains(err.Error(), "reading line") {
		t.Fatalf("err = %v, want a read error naming the line", err)
	}
}

func TestParseKeepsFirstRejections(t *testing.T) {
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, "bad..name%d\ngood%d.example\n", i, i)
	}
	p, err := Parse(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if p.RejectedCount != 100 || len(p.Rejected) != maxRejectedKept || len(p.Rules) != 100 {
		t.Errorf("count %d kept %d rules %d", p.RejectedCount, len(p.Rejected), len(p.Rules))
	}
	if p.Rejected[19].Line != 39 {
		t.Errorf("20th rejection on line %d, want 39", p.Rejected[19].Line)
	}
}

// A hostile list: what Parse lets through, the guard stops.
func TestHostileListThroughGuard(t *testing.T) {
	in := "com\n*.*\n*\n1.2.3.4\n0.0.0.0 co.uk\n||github.io^\n*.com\ngoogleusercontent.com\n" +
		"abc.googleusercontent.com\nserver=/local/\n"
	p, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	g := NewGuard([]string{"googleusercontent.com"})
	var kept []string
	for _, r := range p.Rules {
		if g.Check(r) == "" {
			kept = append(kept, describeRule(r))
		}
	}
	if p.RejectedCount != 3 || len(kept) != 1 || kept[0] != "block abc.googleusercontent.com" {
		t.Errorf("rejected %d, kept %q", p.RejectedCount, kept)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"a.com\n", "0.0.0.0 a.com b.com\n", "||a.com^\n@@||b.com^\n", "server=/a.com/b.com/\n",
		"*.a.com\n", "$ORIGIN z.\n@ SOA a. b. 1 1 1 1 1\na.com CNAME .\n*.b.com CNAME *.\n",
		"bücher.example\n", "\xef\xbb\xbfa.com\r\n",
		"192.0.2.0/24\n2001:db8::/32 # x\n10.0.0.1\n",
		"$ORIGIN z.\n@ SOA a. b. 1 1 1 1 1\n32.1.2.0.192.rpz-ip CNAME .\n48.zz.2643.8d04.2404.rpz-ip CNAME rpz-drop.\n",
		"$ORIGIN z.\n@ SOA a. b. 1 1 1 1 1\n*.g.com A 192.0.2.1\n AAAA ::1\nw.com CNAME garden.example.\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := Parse(bytes.NewReader(in))
		if err != nil {
			return
		}
		for _, r := range p.Rules {
			switch {
			case r.IsAddr():
				if r.Prefix.Masked() != r.Prefix || r.Prefix.Addr().Is4In6() && r.Prefix.Bits() >= 96 || r.Name != "" {
					t.Fatalf("network rule %+v from %q", r, in)
				}
			default:
				if reason := indexableName(r.Name); reason != "" {
					t.Fatalf("rule %q from %q: %s", r.Name, in, reason)
				}
			}
			if (r.Answer == AnswerLocal) != (r.Record != nil) {
				t.Fatalf("rule %+v from %q: local data without records or records without local data", r, in)
			}
			if r.Line < 1 || r.Line > p.Lines {
				t.Fatalf("rule %q from %q has line %d, outside 1..%d", r.Name, in, r.Line, p.Lines)
			}
		}
		if _, err := BuildIndex([][]Rule{p.Rules}); err != nil {
			t.Fatal(err)
		}
		if _, err := BuildAddrIndex([][]Rule{p.Rules}); err != nil {
			t.Fatal(err)
		}
	})
}
