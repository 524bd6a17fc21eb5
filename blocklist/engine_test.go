package blocklist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestApplyKeepsOldOnBadConfig(t *testing.T) {
	e := newEngine(t, DefaultConfig(), Options{BaseDir: t.TempDir()})
	ctx := context.Background()

	bad := DefaultConfig()
	bad.Groups[0].Block = append(bad.Groups[0].Block, "nope")
	err := e.Apply(ctx, bad)
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Key() != "groups[0].block[3]" {
		t.Errorf("Apply(invalid) = %v; want a ConfigError at groups[0].block[3]", err)
	}
	expect(t, e, "10.0.0.1", "www.tiktok.com", Block, "tiktok")

	// Valid, but a new list cannot load anything: refused too.
	missing := DefaultConfig()
	missing.Lists["extra"] = ListConfig{Sources: []string{"extra.txt"}}
	missing.Groups[0].Block = []string{"extra"}
	if err := e.Apply(ctx, missing); err == nil || !strings.Contains(err.Error(), "extra.txt") {
		t.Errorf("Apply(list without content) = %v", err)
	}
	expect(t, e, "10.0.0.1", "www.tiktok.com", Block, "tiktok")
	if got := e.ListNames(); !slices.Equal(got, []string{"bypass", "bytedance", "tiktok"}) {
		t.Errorf("ListNames after refused Apply = %v", got)
	}

	// A good config applies.
	good := DefaultConfig()
	good.Groups[0].Block = []string{"bytedance"}
	good.Groups = append(good.Groups, GroupConfig{Name: "second"})
	if err := e.Apply(ctx, good); err != nil {
		t.Fatalf("Apply(good) = %v", err)
	}
	expect(t, e, "10.0.0.1", "www.tiktok.com", Allow, "")
	expect(t, e, "10.0.0.1", "bytedance.com", Block, "bytedance")
	if got := e.Groups(); !slices.Equal(got, []string{"everyone", "second"}) {
		t.Errorf("Groups() = %v", got)
	}
}

func TestApplyReusesSources(t *testing.T) {
	ls, srv := startListServer(t, names(10))
	e := newEngine(t, urlConfig(srv.URL), Options{})
	cfg := urlConfig(srv.URL)
	cfg.Lists["tiktok"] = ListConfig{Sources: []string{"builtin:tiktok"}}
	cfg.Groups[0].Block = append(cfg.Groups[0].Block, "tiktok")
	if err := e.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	ls.mu.Lock()
	hits := ls.hits
	ls.mu.Unlock()
	if hits != 1 {
		t.Errorf("list server saw %d requests; a source kept across Apply should not be refetched", hits)
	}
	expect(t, e, "127.0.0.5", "a1.example", Block, "remote")
	expect(t, e, "127.0.0.5", "tiktok.com", Block, "tiktok")
}

// Queries run in a loop while the lists are reloaded 50 times; every answer
// must come from the right list.
func TestDecideDuringReloads(t *testing.T) {
	dir := t.TempDir()
	path := tempFile(t, dir, "local.txt", "keep.example\n")
	tempFile(t, dir, "press.txt", "www.tiktok.com\n")
	cfg := Config{
		Lists: map[string]ListConfig{
			"tiktok": {Sources: []string{"builtin:tiktok"}},
			"local":  {Sources: []string{"local.txt"}},
			"press":  {Sources: []string{"press.txt"}},
		},
		Groups: []GroupConfig{
			{Name: "press", Clients: []string{"127.0.0.3"}, Block: []string{"tiktok", "local"}, Allow: []string{"press"}},
			{Name: "gov", Clients: []string{"127.0.0.0/8"}, Block: []string{"tiktok", "local"}},
		},
	}
	e := newEngine(t, cfg, Options{BaseDir: dir})
	checks := []struct {
		client, name string
		action       Action
		list         string
	}{
		{"127.0.0.2", "WWW.TikTok.COM.", Block, "tiktok"},
		{"127.0.0.3", "www.tiktok.com", Allow, "press"},
		{"127.0.0.3", "api.tiktok.com", Block, "tiktok"},
		{"127.0.0.2", "a.keep.example", Block, "local"},
		{"127.0.0.2", "example.org", Allow, ""},
	}
	var stop atomic.Bool
	var wrong, total atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load() && i < 5_000_000; i++ {
				c := checks[i%len(checks)]
				v := e.Decide(addr(c.client), c.name)
				if v.Action != c.action || v.List != c.list {
					if wrong.Add(1) == 1 {
						t.Errorf("Decide(%s, %s) = %+v during reload", c.client, c.name, v)
					}
				}
				total.Add(1)
			}
		})
	}
	ctx := context.Background()
	for i := range 50 {
		// The file changes between reloads; the checked names stay.
		writeFile(t, path, fmt.Sprintf("keep.example\nextra%d.example\n", i))
		if err := e.Reload(ctx); err != nil {
			t.Errorf("reload %d: %v", i, err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if wrong.Load() != 0 || total.Load() == 0 {
		t.Errorf("%d wrong answers out of %d", wrong.Load(), total.Load())
	}
	expect(t, e, "127.0.0.2", "extra49.example", Block, "local")
	expect(t, e, "127.0.0.2", "extra48.example", Allow, "")
}

func TestListsStatusJSON(t *testing.T) {
	e := policyEngine(t)
	b, err := json.Marshal(e.Lists())
	if err != nil {
		t.Fatal(err)
	}
	var back []map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back) != 5 || back[0]["name"] != "ads" {
		t.Fatalf("lists JSON %s", b)
	}
	for _, key := range []string{"sources", "rules", "rejected", "last_reload", "ok", "outcome"} {
		if _, ok := back[0][key]; !ok {
			t.Errorf("list status lacks %q: %s", key, b)
		}
	}
	src := back[0]["sources"].([]any)[0].(map[string]any)
	for _, key := range []string{"source", "format", "last_fetch", "last_success", "outcome", "rules", "rejected"} {
		if _, ok := src[key]; !ok {
			t.Errorf("source status lacks %q: %v", key, src)
		}
	}
	if src["format"] != FormatAdblock || src["rules"] != 2.0 {
		t.Errorf("ads source %v", src)
	}
}
