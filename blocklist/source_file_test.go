package blocklist

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

func fileListConfig(sources ...string) Config {
	return Config{
		Lists:  map[string]ListConfig{"local": {Sources: sources}},
		Groups: []GroupConfig{{Name: "all", Clients: []string{"0.0.0.0/0", "::/0"}, Block: []string{"local"}}},
		Guard:  GuardConfig{NeverBlock: []string{"builtin:never-block"}},
	}
}

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFileSourceReloadsOnChange(t *testing.T) {
	dir := t.TempDir()
	path := tempFile(t, dir, "local.txt", "one.example\n")
	updates := make(chan ListStatus, 100)
	e := newEngine(t, fileListConfig("local.txt"), Options{
		BaseDir: dir, PollInterval: 10 * time.Millisecond,
		OnListUpdate: func(ls ListStatus) { updates <- ls },
	})
	<-updates // the initial load
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	expect(t, e, "10.0.0.1", "two.example", Allow, "")
	writeFile(t, path, "one.example\ntwo.example\n")
	waitFor(t, "two.example to be blocked", func() bool { return e.Decide(addr("10.0.0.1"), "two.example").Action == Block })
	if ls := <-updates; ls.Name != "local" || ls.Rules != 2 {
		t.Errorf("update callback got %+v", ls)
	}

	// Garbage replaces the file: the last good content stays and the failure shows.
	writeFile(t, path, "\x00\x01\x02 binary\x00junk")
	waitFor(t, "the failure to be reported", func() bool { return listStatus(t, e, "local").Sources[0].Error != "" })
	expect(t, e, "10.0.0.1", "two.example", Block, "local")

	// The file disappears: still the last good content.
	os.Remove(path)
	waitFor(t, "the missing file to be reported", func() bool {
		return strings.Contains(listStatus(t, e, "local").Sources[0].Error, "no such file")
	})
	expect(t, e, "10.0.0.1", "one.example", Block, "local")
	ls := listStatus(t, e, "local")
	if ls.OK || ls.Rules != 2 || !strings.Contains(ls.Outcome, "1 of 1 sources failing") {
		t.Errorf("status while failing: %+v", ls)
	}

	// It comes back with new content.
	writeFile(t, path, "three.example\ntwo.example\n")
	waitFor(t, "three.example to be blocked", func() bool { return e.Decide(addr("10.0.0.1"), "three.example").Action == Block })
	expect(t, e, "10.0.0.1", "one.example", Allow, "")
	if ls := listStatus(t, e, "local"); !ls.OK || ls.Sources[0].Error != "" {
		t.Errorf("status after recovery: %+v", ls)
	}
}

func TestHostileListFile(t *testing.T) {
	dir := t.TempDir()
	junk := make([]byte, 64<<10)
	rand.Read(junk)
	tempFile(t, dir, "junk.bin", string(junk))
	long := strings.Repeat("a", 10<<20)
	tempFile(t, dir, "bad.txt", "com\n*.*\nco.uk\n"+long+"\nmicrosoft.com\nreal-bad.example\n*\n")
	tempFile(t, dir, "good.txt", "also-bad.example\n")
	cfg := fileListConfig("builtin:tiktok", "junk.bin", "bad.txt", "good.txt")
	e := newEngine(t, cfg, Options{BaseDir: dir})

	expect(t, e, "10.0.0.1", "www.tiktok.com", Block, "local")
	expect(t, e, "10.0.0.1", "real-bad.example", Block, "local")
	expect(t, e, "10.0.0.1", "x.also-bad.example", Block, "local")
	for _, name := range []string{"example.com", "bbc.co.uk", "www.microsoft.com", "aaa.example"} {
		expect(t, e, "10.0.0.1", name, Allow, "")
	}
	ls := listStatus(t, e, "local")
	junkSrc, bad := ls.Sources[1], ls.Sources[2]
	if junkSrc.Error == "" || junkSrc.Rules != 0 {
		t.Errorf("binary source status %+v", junkSrc)
	}
	if bad.Indexed != 1 || bad.Rejected < 5 {
		t.Errorf("bad.txt: indexed %d rejected %d; want 1 and at least 5", bad.Indexed, bad.Rejected)
	}
	reasons, _ := json.Marshal(bad.RejectedLines)
	for _, want := range []string{`"line":1`, "public suffix", "never-block", "longer than"} {
		if !strings.Contains(string(reasons), want) {
			t.Errorf("rejected lines of bad.txt lack %q: %s", want, reasons)
		}
	}
	if len(reasons) > 4096 {
		t.Errorf("rejected lines are not cut to a readable size: %d bytes", len(reasons))
	}
}

func TestFileSourceAtStart(t *testing.T) {
	dir := t.TempDir()
	// A missing file with nothing else in the list is an error at start, naming list and file.
	_, err := NewEngine(context.Background(), fileListConfig("missing.txt"), Options{BaseDir: dir, Logger: quiet()})
	if err == nil || !strings.Contains(err.Error(), `list "local"`) || !strings.Contains(err.Error(), "missing.txt") {
		t.Errorf("NewEngine with a missing file: %v", err)
	}
	// Next to a source that loads, it is only reported.
	e := newEngine(t, fileListConfig("builtin:bypass", "missing.txt"), Options{BaseDir: dir})
	if ls := listStatus(t, e, "local"); ls.OK || ls.Sources[1].Error == "" {
		t.Errorf("status %+v", ls)
	}
	// An empty allow list file is fine at start (nothing to keep instead), and said so.
	tempFile(t, dir, "empty.txt", "# nothing yet\n")
	e = newEngine(t, fileListConfig("empty.txt"), Options{BaseDir: dir})
	if ls := listStatus(t, e, "local"); ls.Rules != 0 || !strings.Contains(ls.Outcome, "no usable rules") {
		t.Errorf("empty list status %+v", ls)
	}
	// An absolute path ignores BaseDir.
	abs := tempFile(t, t.TempDir(), "abs.txt", "abs.example\n")
	e = newEngine(t, fileListConfig(abs), Options{BaseDir: dir})
	expect(t, e, "10.0.0.1", "abs.example", Block, "local")
}
