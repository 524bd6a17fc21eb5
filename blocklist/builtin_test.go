package blocklist

import (
	"bytes"
	"slices"
	"testing"
)

func TestBuiltinListsParse(t *testing.T) {
	names := BuiltinNames()
	if want := []string{"bypass", "bytedance", "bytedance-networks", "never-block", "tiktok"}; !slices.Equal(names, want) {
		t.Fatalf("BuiltinNames() = %v; want %v", names, want)
	}
	var neverBlock []string
	nb, _ := Builtin("never-block")
	p, err := Parse(bytes.NewReader(nb))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range p.Rules {
		neverBlock = append(neverBlock, r.Name)
	}
	guard := NewGuard(neverBlock)
	for _, name := range names {
		b, ok := Builtin(name)
		if !ok {
			t.Fatalf("Builtin(%q) missing", name)
		}
		p, err := Parse(bytes.NewReader(b))
		if err != nil || len(p.Rules) == 0 || p.RejectedCount != 0 {
			t.Errorf("builtin:%s: %d rules, %d rejected %v, err %v", name, len(p.Rules), p.RejectedCount, p.Rejected, err)
		}
		if name == "never-block" {
			continue
		}
		for _, r := range p.Rules {
			if reason := guard.Check(r); reason != "" {
				t.Errorf("builtin:%s line %d %s trips the guard: %s", name, r.Line, r.Name, reason)
			}
		}
	}
	for _, bad := range []string{"", "nope", "../builtin/tiktok", "tiktok.domains"} {
		if _, ok := Builtin(bad); ok {
			t.Errorf("Builtin(%q) found", bad)
		}
	}
}

func TestDefaultConfigBlocksForEveryone(t *testing.T) {
	e := newEngine(t, DefaultConfig(), Options{})
	for _, client := range []string{"10.1.2.3", "192.168.1.1", "2001:db8::1", "::ffff:172.16.0.1"} {
		expect(t, e, client, "WWW.TikTok.COM.", Block, "tiktok")
		expect(t, e, client, "v16-webapp.tiktokcdn.com", Block, "tiktok")
		expect(t, e, client, "api.bytedance.com", Block, "bytedance")
		expect(t, e, client, "use-application-dns.net", Block, "bypass")
		expect(t, e, client, "example.org", Allow, "")
		expect(t, e, client, "nottiktok.com", Allow, "")
	}
	for _, ls := range e.Lists() {
		if !ls.OK || ls.Rules == 0 || ls.Sources[0].Format != FormatPlain {
			t.Errorf("list %s status %+v", ls.Name, ls)
		}
	}
}
