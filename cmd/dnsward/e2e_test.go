package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const policyYAML = `lists:
  tiktok:    { sources: ["builtin:tiktok"] }
  bytedance: { sources: ["builtin:bytedance"] }
  press:     { sources: ["press-allow.txt"] }
groups:
  - name: press-office
    clients: ["127.0.0.4/32"]
    block: [tiktok, bytedance]
    allow: [press]
  - name: government-devices
    clients: ["127.0.0.2/32"]
    block: [tiktok, bytedance]
  - name: guest-wifi
    clients: ["127.0.0.3/32"]
    block: []
default_group: government-devices
blocking:
  answer: nxdomain
  ttl: 60s
guard:
  never_block: ["builtin:never-block"]
`

func TestBlockingPerGroupEndToEnd(t *testing.T) {
	up := startZoneServer(t, map[string]string{"video.example.com.": "v16.tiktokcdn.com."})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "press-allow.txt"), []byte("# press office's official account\nwww.tiktok.com\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := startApp(t, writeConfig(t, dir, up.addr, policyYAML))
	addr := a.dnsAddr()

	gov := query(t, "127.0.0.2", addr, "WWW.TikTok.COM.", dns.TypeA)
	if gov.Rcode != dns.RcodeNameError || gov.Question[0].Name != "WWW.TikTok.COM." {
		t.Fatalf("government device: %s for %s, want NXDOMAIN with the question echoed", dns.RcodeToString[gov.Rcode], gov.Question[0].Name)
	}
	if e := ede(gov); !strings.HasPrefix(e, "15 ") || !strings.Contains(e, "tiktok") || !strings.Contains(e, "government-devices") {
		t.Fatalf("EDE = %q, want 15 naming list and group", e)
	}
	if guest := query(t, "127.0.0.3", addr, "WWW.TikTok.COM.", dns.TypeA); guest.Rcode != dns.RcodeSuccess || len(guest.Answer) != 1 {
		t.Fatalf("guest device did not resolve: %v", guest)
	}
	if press := query(t, "127.0.0.4", addr, "www.tiktok.com.", dns.TypeA); press.Rcode != dns.RcodeSuccess {
		t.Fatalf("press office exception not applied: %v", press)
	}
	if press := query(t, "127.0.0.4", addr, "v16-webapp.tiktok.com.", dns.TypeA); press.Rcode != dns.RcodeNameError {
		t.Fatalf("press office exception too wide: %v", press)
	}
	// Clients in no group fall into default_group.
	if other := query(t, "127.0.0.9", addr, "v16-webapp.tiktok.com.", dns.TypeAAAA); other.Rcode != dns.RcodeNameError {
		t.Fatalf("default group not applied: %v", other)
	}
	// CNAME cloaking: an allowed name whose answer runs through ByteDance's CDN.
	if cloaked := query(t, "127.0.0.2", addr, "video.example.com.", dns.TypeA); cloaked.Rcode != dns.RcodeNameError || !strings.Contains(ede(cloaked), "rule tiktokcdn.com") {
		t.Fatalf("CNAME into tiktokcdn.com not blocked: %v", cloaked)
	}
	if plain := query(t, "127.0.0.2", addr, "example.org.", dns.TypeA); plain.Rcode != dns.RcodeSuccess || len(plain.Answer) != 1 {
		t.Fatalf("ordinary name did not resolve: %v", plain)
	}

	body := httpGet(t, "http://"+a.admin.Addr().String()+"/v1/explain?name=www.tiktok.com&client=127.0.0.2")
	if !strings.Contains(body, "tiktok") || !strings.Contains(body, "government-devices") {
		t.Fatalf("explain does not name list and group:\n%s", body)
	}
	metrics := httpGet(t, "http://"+a.admin.Addr().String()+"/metrics")
	for _, want := range []string{`dnsward_blocked_total{group="government-devices",list="tiktok"}`, `dnsward_queries_total{group="guest-wifi"`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// The SOC's view: who keeps trying, without names in metric labels.
	deadline := time.Now().Add(5 * time.Second)
	for top := ""; !strings.Contains(top, `"key": "www.tiktok.com."`) && !strings.Contains(top, `"key":"www.tiktok.com."`); {
		if time.Now().After(deadline) {
			t.Fatalf("/v1/stats/top lacks the blocked name:\n%s", top)
		}
		time.Sleep(20 * time.Millisecond)
		top = httpGet(t, "http://"+a.admin.Addr().String()+"/v1/stats/top?by=name")
	}
	var lists []map[string]any
	if err := json.Unmarshal([]byte(httpGet(t, "http://"+a.admin.Addr().String()+"/v1/lists")), &lists); err != nil || len(lists) != 3 {
		t.Fatalf("/v1/lists: %v (%d lists)", err, len(lists))
	}
}

// TestReloadUnderLoad queries in a loop while the config is reloaded 50
// times, alternating which list the government group blocks: no query may
// fail and no answer may come from a list that was never configured.
func TestReloadUnderLoad(t *testing.T) {
	up := startZoneServer(t, nil)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "press-allow.txt"), []byte("example.net\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, dir, up.addr, policyYAML)
	a := startApp(t, path)
	addr := a.dnsAddr()
	original, _ := os.ReadFile(path)
	swapped := []byte(strings.Replace(string(original), "    clients: [\"127.0.0.2/32\"]\n    block: [tiktok, bytedance]",
		"    clients: [\"127.0.0.2/32\"]\n    block: [bytedance]", 1))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(30 * time.Second)
			for i := 0; i < 20000 && time.Now().Before(deadline); i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := exchange("127.0.0.2", addr, "api.bytedance.com.", dns.TypeA) // bytedance: blocked in both configs
				if err != nil {
					errs <- err.Error()
					return
				}
				if resp.Rcode != dns.RcodeNameError || !strings.Contains(ede(resp), "bytedance") {
					errs <- "bytedance name: " + resp.String()
					return
				}
				ok, err := exchange("127.0.0.3", addr, "www.tiktok.com.", dns.TypeA) // guest: never blocked
				if err != nil || ok.Rcode != dns.RcodeSuccess {
					errs <- fmt.Sprintf("guest name: %v %v", ok, err)
					return
				}
			}
		}()
	}
	for i := range 50 {
		next := original
		if i%2 == 0 {
			next = swapped
		}
		if err := os.WriteFile(path, next, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := a.reload(t.Context()); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestInvalidReloadKeepsRunningConfig(t *testing.T) {
	up := startZoneServer(t, nil)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "press-allow.txt"), []byte("example.net\n"), 0o644)
	path := writeConfig(t, dir, up.addr, policyYAML)
	a := startApp(t, path)
	if err := os.WriteFile(path, []byte("listen: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+a.admin.Addr().String()+"/v1/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || !strings.Contains(string(body), "dnsward.yaml") {
		t.Fatalf("bad config reload answered %d: %s", resp.StatusCode, body)
	}
	if r := query(t, "127.0.0.2", a.dnsAddr(), "www.tiktok.com.", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Fatalf("policy lost after a failed reload: %v", r)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return string(body)
}
