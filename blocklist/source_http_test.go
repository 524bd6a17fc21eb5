package blocklist

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// listServer serves one list and can be told to misbehave.
type listServer struct {
	mu          sync.Mutex
	status      int
	body        string
	delay       time.Duration
	etag        string
	hits        int
	notModified int
}

func (ls *listServer) set(status int, body string, delay time.Duration) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.status, ls.body, ls.delay = status, body, delay
}

func (ls *listServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ls.mu.Lock()
	status, body, delay, etag := ls.status, ls.body, ls.delay, ls.etag
	ls.hits++
	ls.mu.Unlock()
	if delay > 0 {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(delay):
		}
	}
	if etag != "" && r.Header.Get("If-None-Match") == etag {
		ls.mu.Lock()
		ls.notModified++
		ls.mu.Unlock()
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if status != http.StatusOK {
		http.Error(w, "list server broken", status)
		return
	}
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	io.WriteString(w, body)
}

func names(n int) string {
	var b strings.Builder
	b.WriteString("# remote list\n")
	for i := range n {
		fmt.Fprintf(&b, "a%d.example\n", i)
	}
	return b.String()
}

func urlConfig(url string) Config {
	return Config{
		Lists:  map[string]ListConfig{"remote": {Sources: []string{url}, Refresh: time.Hour}},
		Groups: []GroupConfig{{Name: "all", Clients: []string{"127.0.0.0/8", "::1"}, Block: []string{"remote"}}},
	}
}

func startListServer(t *testing.T, body string) (*listServer, *httptest.Server) {
	ls := &listServer{status: http.StatusOK, body: body}
	srv := httptest.NewServer(ls)
	t.Cleanup(srv.Close)
	return ls, srv
}

func TestURLSourceKeepsLastGood(t *testing.T) {
	ls, srv := startListServer(t, names(10))
	opts := Options{StateDir: t.TempDir(), HTTPClient: &http.Client{Timeout: 300 * time.Millisecond}}
	e := newEngine(t, urlConfig(srv.URL+"/list.txt"), opts)
	expect(t, e, "127.0.0.2", "www.a3.example", Block, "remote")
	ctx := context.Background()

	for _, tc := range []struct {
		name, wantErr string
		status        int
		body          string
		delay         time.Duration
	}{
		{"HTTP 500", "HTTP 500", http.StatusInternalServerError, "", 0},
		{"HTTP 404", "HTTP 404", http.StatusNotFound, "", 0},
		{"timeout", "Timeout", http.StatusOK, names(10), 2 * time.Second},
		{"empty body", "no usable rules", http.StatusOK, "", 0},
		{"comments only", "no usable rules", http.StatusOK, "# maintenance\n", 0},
		{"shrink over 50%", "less than half", http.StatusOK, names(4), 0},
		{"binary junk", "not a text list", http.StatusOK, "\x00\x00\x89PNG\x00", 0},
	} {
		ls.set(tc.status, tc.body, tc.delay)
		err := e.Reload(ctx)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: Reload() = %v; want an error mentioning %q", tc.name, err, tc.wantErr)
		}
		expect(t, e, "127.0.0.2", "a3.example", Block, "remote")
		expect(t, e, "::1", "a9.example", Block, "remote")
		st := listStatus(t, e, "remote")
		if src := st.Sources[0]; st.OK || st.Rules != 10 || !strings.Contains(src.Error, tc.wantErr) ||
			!strings.Contains(src.Outcome, "kept last good") || src.LastSuccess.After(src.LastFetch) {
			t.Errorf("%s: status %+v", tc.name, st)
		}
	}

	// Exactly half is not a "sudden shrink"; it is accepted.
	ls.set(http.StatusOK, names(5), 0)
	if err := e.Reload(ctx); err != nil {
		t.Fatalf("Reload with 5 of 10: %v", err)
	}
	expect(t, e, "127.0.0.2", "a7.example", Allow, "")
	ls.set(http.StatusOK, names(12), 0)
	if err := e.Reload(ctx); err != nil {
		t.Fatalf("Reload after recovery: %v", err)
	}
	expect(t, e, "127.0.0.2", "a11.example", Block, "remote")
	if st := listStatus(t, e, "remote"); !st.OK || st.Rules != 12 || st.Sources[0].Error != "" {
		t.Errorf("status after recovery %+v", st)
	}
}

func TestURLSourceRestartFromDiskCopy(t *testing.T) {
	stateDir := t.TempDir()
	ls, srv := startListServer(t, names(10))
	cfg := urlConfig(srv.URL + "/list.txt")
	newEngine(t, cfg, Options{StateDir: stateDir})
	files, _ := os.ReadDir(stateDir)
	if len(files) != 1 {
		t.Fatalf("state dir holds %d files; want the one saved copy", len(files))
	}

	// Restart while the server answers with an empty list: the saved copy is
	// the last good content, so the empty answer is refused and the copy kept.
	ls.set(http.StatusOK, "", 0)
	e := newEngine(t, cfg, Options{StateDir: stateDir})
	expect(t, e, "127.0.0.2", "a3.example", Block, "remote")
	if src := listStatus(t, e, "remote").Sources[0]; !strings.Contains(src.Error, "no usable rules") {
		t.Errorf("status after restart with an empty answer: %+v", src)
	}

	srv.Close() // the list server goes down; dnsward restarts

	e = newEngine(t, cfg, Options{StateDir: stateDir})
	expect(t, e, "127.0.0.2", "a3.example", Block, "remote")
	src := listStatus(t, e, "remote").Sources[0]
	if src.Error == "" || !strings.Contains(src.Outcome, "failed; using the copy saved") || src.Rules != 10 {
		t.Errorf("status after restart: %+v", src)
	}
	// Without a saved copy there is nothing to block with: that is an error at start.
	_, err := NewEngine(context.Background(), cfg, Options{StateDir: t.TempDir(), Logger: quiet()})
	if err == nil || !strings.Contains(err.Error(), `list "remote" has no content`) {
		t.Errorf("NewEngine without server or copy: %v", err)
	}
}

func TestURLSourceConditionalGet(t *testing.T) {
	ls, srv := startListServer(t, names(10))
	ls.etag = `"v1"`
	e := newEngine(t, urlConfig(srv.URL), Options{})
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	ls.mu.Lock()
	hits, notModified := ls.hits, ls.notModified
	ls.mu.Unlock()
	if hits != 2 || notModified != 1 {
		t.Errorf("hits %d, 304s %d; want 2 and 1", hits, notModified)
	}
	if src := listStatus(t, e, "remote").Sources[0]; src.Outcome != "not modified" || src.Rules != 10 {
		t.Errorf("status %+v", src)
	}
	expect(t, e, "127.0.0.2", "a3.example", Block, "remote")
}

func TestURLSourceSchedule(t *testing.T) {
	ls, srv := startListServer(t, names(10))
	e := newEngine(t, urlConfig(srv.URL), Options{})
	ctx := context.Background()
	s := e.sources[srv.URL]
	if d := s.nextFetch.Sub(s.lastFetch); d != time.Hour {
		t.Errorf("next fetch in %v; want the list's refresh of 1h", d)
	}
	e.poll(ctx, "") // not due: no request
	ls.set(http.StatusOK, names(11), 0)
	e.mu.Lock()
	s.nextFetch = time.Time{}
	e.mu.Unlock()
	e.poll(ctx, "")
	expect(t, e, "127.0.0.2", "a10.example", Block, "remote")
	ls.set(http.StatusBadGateway, "", 0)
	e.mu.Lock()
	s.nextFetch = time.Time{}
	e.mu.Unlock()
	e.poll(ctx, "")
	if d := s.nextFetch.Sub(s.lastFetch); d != time.Minute {
		t.Errorf("after a failure the retry is in %v; want 1m", d)
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.hits != 3 {
		t.Errorf("server saw %d requests; want 3", ls.hits)
	}
}
