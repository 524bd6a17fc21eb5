package blocklist

import (
	"context"
	"testing"
	"time"
)

func TestGroupPolicyMatchesDecide(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{
		Lists: map[string]ListConfig{
			"block": {Sources: []string{tempFile(t, dir, "b.txt", "tiktok.com\n*.below.example\nads.safe.example\n")}},
			"allow": {Sources: []string{tempFile(t, dir, "a.txt", "safe.example\nlive.tiktok.com\n")}},
			"watch": {Sources: []string{tempFile(t, dir, "w.txt", "watched.example\n@@||ok.tiktok.com^\n")}},
		},
		Groups: []GroupConfig{{Name: "managed", Clients: []string{"10.0.0.0/8"}, Block: []string{"block"}, Allow: []string{"allow"}, Monitor: []string{"watch"}}},
	}
	e := newEngine(t, cfg, Options{})
	names, _, err := e.GroupPolicy("managed")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]PolicyName{}
	for _, pn := range names {
		got[pn.Name] = pn
	}
	for _, c := range []struct {
		name        string
		self, below Effect
	}{
		{"tiktok.com", EffectBlock, EffectBlock},
		{"below.example", EffectNone, EffectBlock},
		{"live.tiktok.com", EffectAllow, EffectAllow},
		{"ok.tiktok.com", EffectAllow, EffectAllow},    // a monitor list's exception allows, as in Decide
		{"ads.safe.example", EffectAllow, EffectAllow}, // under an allowed name: allow beats block
		{"safe.example", EffectAllow, EffectAllow},
	} {
		if pn := got[c.name]; pn.Self != c.self || pn.Below != c.below {
			t.Errorf("%s: got %+v; want self %d below %d", c.name, pn, c.self, c.below)
		}
	}
	if _, ok := got["watched.example"]; ok {
		t.Errorf("a monitor list's block rule was exported")
	}
	if _, _, err := e.GroupPolicy("nosuch"); err == nil {
		t.Errorf("GroupPolicy of an undefined group succeeded")
	}
}

func TestPolicyVersionSignalsReload(t *testing.T) {
	e := newEngine(t, Config{Lists: map[string]ListConfig{"b": {Sources: []string{"builtin:tiktok"}}}}, Options{})
	v, ch := e.PolicyVersion()
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(time.Second):
		t.Fatal("reload did not signal a new policy version")
	}
	if nv, _ := e.PolicyVersion(); nv <= v {
		t.Errorf("version %d after reload; want more than %d", nv, v)
	}
}
