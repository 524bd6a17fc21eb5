package blocklist

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// quiet is a logger for tests that expect failures.
func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newEngine(t testing.TB, cfg Config, opts Options) *Engine {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet()
	}
	e, err := NewEngine(context.Background(), cfg, opts)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	return e
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func tempFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	writeFile(t, p, content)
	return p
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// expect checks one Decide outcome.
func expect(t *testing.T, e *Engine, client, name string, action Action, list string) Verdict {
	t.Helper()
	v := e.Decide(addr(client), name)
	if v.Action != action || v.List != list {
		t.Errorf("Decide(%s, %s) = %+v; want action %s list %q", client, name, v, actionName(action), list)
	}
	return v
}

func listStatus(t *testing.T, e *Engine, name string) ListStatus {
	t.Helper()
	for _, ls := range e.Lists() {
		if ls.Name == name {
			return ls
		}
	}
	t.Fatalf("no status for list %q", name)
	return ListStatus{}
}
