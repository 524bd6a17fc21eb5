package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnstest"
	"gopkg.in/yaml.v3"
)

var (
	dashboardPath = filepath.Join("..", "..", "docker", "grafana", "dashboards", "dnsward.json")
	prometheusDir = filepath.Join("..", "..", "docker", "prometheus")
)

// dashboardVars stands in for Grafana's variables when a panel query goes
// to Prometheus directly: every instance, and the rate window Grafana picks
// for a 1s scrape interval.
var dashboardVars = strings.NewReplacer(
	"${instance}", ".*", "$instance", ".*",
	"${__rate_interval}", "15s", "$__rate_interval", "15s")

// The guest group monitors tiktok, so "would block" series appear too.
const dashboardPolicyYAML = `lists:
  tiktok:    { sources: ["builtin:tiktok"] }
  bytedance: { sources: ["builtin:bytedance"] }
groups:
  - name: government-devices
    clients: ["127.0.0.2/32"]
    block: [tiktok, bytedance]
  - name: guest-wifi
    clients: ["127.0.0.3/32"]
    monitor: [tiktok]
default_group: government-devices
`

// startDashboardPrimary starts a second dnsward as an RPZ primary and
// returns the list that makes the app under test its secondary, so the
// zone metrics (and the DnswardZoneExpired alert) have a series.
func startDashboardPrimary(t *testing.T, upstream string) string {
	t.Helper()
	dir := t.TempDir()
	writeTransferKey(t, dir)
	addr := dnstest.FreeAddr(t)
	startApp(t, writeConfig(t, dir, upstream, rpzPrimaryYAML("builtin:tiktok", "rpz.dashboard.test", addr)))
	return fmt.Sprintf(`  fleet: {sources: ["axfr://%s/rpz.dashboard.test"], tsig: transfer-key}
`, addr)
}

type grafanaPanel struct {
	Title   string `json:"title"`
	Type    string `json:"type"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // a collapsed row's panels
}

type grafanaDashboard struct {
	SchemaVersion int            `json:"schemaVersion"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
			Multi      bool   `json:"multi"`
			IncludeAll bool   `json:"includeAll"`
		} `json:"list"`
	} `json:"templating"`
}

// panelQuery is one target of one panel, named for failure messages.
type panelQuery struct{ name, expr string }

func loadDashboard(t *testing.T) (grafanaDashboard, []panelQuery) {
	t.Helper()
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	var qs []panelQuery
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				qs = append(qs, panelQuery{fmt.Sprintf("panel %q target %s", p.Title, tg.RefID), tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return d, qs
}

var (
	metricSelector    = regexp.MustCompile(`\b(?:dnsward|process|go)_[a-z_]+(\{[^}]*\})?`)
	rateWindow        = regexp.MustCompile(`\brate\([^\[\]]*\[([^\]]*)\]`)
	dnswardMetricName = regexp.MustCompile(`\bdnsward_[a-z_]+`)
)

// TestDashboardJSON checks the dashboard's shape without Prometheus: the
// variables a fleet needs, and every query filtered by $instance with
// rates over $__rate_interval.
func TestDashboardJSON(t *testing.T) {
	d, qs := loadDashboard(t)
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d: want 36 or newer", d.SchemaVersion)
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Name == "instance" && (v.Definition != "label_values(dnsward_build_info, instance)" || !v.Multi || !v.IncludeAll) {
			t.Errorf("$instance: definition %q multi=%v includeAll=%v", v.Definition, v.Multi, v.IncludeAll)
		}
	}
	if !vars["datasource"] || !vars["instance"] {
		t.Errorf("dashboard variables %v: want datasource and instance", vars)
	}
	for _, q := range qs {
		for _, m := range metricSelector.FindAllStringSubmatch(q.expr, -1) {
			if !strings.Contains(m[1], `instance=~"$instance"`) {
				t.Errorf("%s: %s is not filtered by instance=~\"$instance\"", q.name, m[0])
			}
		}
		for _, m := range rateWindow.FindAllStringSubmatch(q.expr, -1) {
			if m[1] != "$__rate_interval" {
				t.Errorf("%s: rate over [%s], want [$__rate_interval]", q.name, m[1])
			}
		}
	}
}

// dashboardTLSYAML serves DoT and DoH on loopback with a test CA's
// certificate, so the encrypted-DNS panels and the certificate alert have
// data. PROXY headers are trusted only from 127.0.0.9: one from
// 127.0.0.1 is refused as untrusted.
func dashboardTLSYAML(certFile, keyFile string) string {
	return fmt.Sprintf(`listen_tls: ["127.0.0.1:0"]
listen_https: ["127.0.0.1:0"]
tls: {cert_file: %q, key_file: %q, server_name: dns.test}
proxy_protocol: {trusted: ["127.0.0.9/32"]}
`, certFile, keyFile)
}

// TestDashboardQueriesOnRealPrometheus runs dnsward with real traffic, has a
// real Prometheus scrape it, and evaluates every panel query of the
// dashboard there: each must succeed and return at least one number.
func TestDashboardQueriesOnRealPrometheus(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus not on PATH (Debian package prometheus)")
	}
	d, qs := loadDashboard(t)
	dir := t.TempDir()
	up := startServfailZone(t)
	ca := dnstest.NewCA(t)
	cert, key, _ := ca.WritePair(t, dir, "dns.test", "127.0.0.1")
	writeTransferKey(t, dir)
	policy := strings.Replace(dashboardPolicyYAML, "lists:\n", "lists:\n"+startDashboardPrimary(t, up), 1)
	policy = strings.Replace(policy, "default_group:", "  - {name: fleet-secondary, clients: [\"127.0.0.4/32\"], block: [fleet]}\ndefault_group:", 1)
	a := startApp(t, writeConfig(t, dir, up, transferKeyYAML+policy+dashboardTLSYAML(cert, key)))
	traffic := startTraffic(a.dnsAddr())
	t.Cleanup(traffic.halt)
	target := a.admin.Addr().String()
	prom := startPrometheus(t, bin, dir, target)
	// Encrypted queries after Prometheus has seen the counters at zero,
	// so the rate panels show them.
	prom.waitForSamples(t, 2, 20*time.Second)
	if err := encryptedTraffic(encryptedApp{app: a, ca: ca}); err != nil {
		t.Fatal(err)
	}
	prom.waitForSamples(t, 6, 20*time.Second)
	checkEncryptedSeries(t, prom)

	for _, q := range qs {
		expr := dashboardVars.Replace(q.expr)
		if strings.Contains(expr, "$") {
			t.Errorf("%s: unknown Grafana variable left in %s", q.name, expr)
			continue
		}
		values, err := prom.query(expr)
		switch {
		case err != nil:
			t.Errorf("%s: %s: %v", q.name, expr, err)
		case len(values) == 0:
			t.Errorf("%s: %s: empty result", q.name, expr)
		}
		for _, v := range values {
			if math.IsNaN(v) {
				t.Errorf("%s: %s: NaN (the panel would show nothing)", q.name, expr)
				break
			}
		}
	}
	// The $instance variable offers the instance Prometheus scraped.
	for _, v := range d.Templating.List {
		if v.Name == "instance" && !slices.Contains(prom.labelValues(t, "instance", "dnsward_build_info"), target) {
			t.Errorf("$instance (%s) does not offer %s", v.Definition, target)
		}
	}
	checkAlertExprs(t, prom)
	traffic.halt()
	if traffic.err != nil {
		t.Errorf("traffic: %v", traffic.err)
	}
}

// TestAlertRules checks docker/prometheus with promtool (rule syntax, the
// rule unit tests, the config and its rule_files path), and that every
// alert carries on-call annotations and is tested firing and not firing.
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not on PATH (Debian package prometheus)")
	}
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "alerts_test.yml"},
		{"check", "config", "prometheus.yml"},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		cmd := exec.CommandContext(ctx, promtool, args...)
		cmd.Dir = prometheusDir
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, filepath.Join(prometheusDir, "alerts_test.yml"), &tests)
	firing, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, at := range tc.AlertRuleTest {
			firing[at.Alertname] = firing[at.Alertname] || len(at.ExpAlerts) > 0
			quiet[at.Alertname] = quiet[at.Alertname] || len(at.ExpAlerts) == 0
		}
	}
	rules := loadAlertRules(t)
	for _, r := range rules {
		if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("alert %s lacks a summary or description annotation", r.Alert)
		}
		if !firing[r.Alert] || !quiet[r.Alert] {
			t.Errorf("alert %s: alerts_test.yml must test it firing (%v) and not firing (%v)", r.Alert, firing[r.Alert], quiet[r.Alert])
		}
	}
	if len(rules) < 5 {
		t.Errorf("alerts.yml has %d alerts, want at least 5", len(rules))
	}
}

type alertRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadAlertRules(t *testing.T) []alertRule {
	t.Helper()
	var file struct {
		Groups []struct {
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, filepath.Join(prometheusDir, "alerts.yml"), &file)
	var rules []alertRule
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				rules = append(rules, r)
			}
		}
	}
	return rules
}

// checkAlertExprs evaluates the alert rules on the live series: every
// dnsward metric they name must exist, and with one SERVFAIL in six answers
// only the SERVFAIL alert's expression may match.
func checkAlertExprs(t *testing.T, p *promServer) {
	t.Helper()
	for _, r := range loadAlertRules(t) {
		for _, name := range dnswardMetricName.FindAllString(r.Expr, -1) {
			if v, err := p.query("count(" + name + ")"); err != nil || len(v) == 0 {
				t.Errorf("alert %s: metric %s not in the scrape (%v)", r.Alert, name, err)
			}
		}
		v, err := p.query(r.Expr)
		want := r.Alert == "DnswardHighServfailRatio"
		if err != nil {
			t.Errorf("alert %s: %v", r.Alert, err)
		} else if (len(v) > 0) != want {
			t.Errorf("alert %s: expression matches %d series on the test traffic, want firing=%v", r.Alert, len(v), want)
		}
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// startServfailZone is startZoneServer's upstream, except that names under
// broken.example. get SERVFAIL.
func startServfailZone(t *testing.T) string {
	t.Helper()
	z := &zoneServer{}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		if len(req.Question) == 1 && strings.HasSuffix(strings.ToLower(req.Question[0].Name), ".broken.example.") {
			_ = w.WriteMsg(new(dns.Msg).SetRcode(req, dns.RcodeServerFailure))
			return
		}
		z.ServeDNS(w, req)
	})
	addr, _ := dnstest.Serve(t, h)
	return addr
}

// traffic sends rounds of queries until halted (at most 60s, 2000 rounds):
// blocked, monitored, cached, forwarded and SERVFAIL answers.
type traffic struct {
	stop, done chan struct{}
	once       sync.Once
	err        error // set before done closes
}

func startTraffic(addr string) *traffic {
	tr := &traffic{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(tr.done)
		deadline := time.Now().Add(60 * time.Second)
		for i := 0; i < 2000 && time.Now().Before(deadline); i++ {
			if tr.err = trafficRound(addr, i); tr.err != nil {
				return
			}
			select {
			case <-tr.stop:
				return
			case <-time.After(40 * time.Millisecond):
			}
		}
	}()
	return tr
}

func (tr *traffic) halt() {
	tr.once.Do(func() { close(tr.stop) })
	<-tr.done
}

func trafficRound(addr string, i int) error {
	for _, q := range []struct {
		src, name string
		rcode     int
	}{
		{"127.0.0.2", "www.tiktok.com.", dns.RcodeNameError},                // blocked: tiktok
		{"127.0.0.2", "api.bytedance.com.", dns.RcodeNameError},             // blocked: bytedance
		{"127.0.0.3", "www.tiktok.com.", dns.RcodeSuccess},                  // monitored, then cached
		{"127.0.0.3", "example.org.", dns.RcodeSuccess},                     // cached after the first round
		{"127.0.0.2", fmt.Sprintf("n%d.example.org.", i), dns.RcodeSuccess}, // cache miss, upstream
		{"127.0.0.3", fmt.Sprintf("s%d.broken.example.", i), dns.RcodeServerFailure},
	} {
		resp, err := exchange(q.src, addr, q.name, dns.TypeA)
		if err != nil {
			return fmt.Errorf("%s from %s: %w", q.name, q.src, err)
		}
		if resp.Rcode != q.rcode {
			return fmt.Errorf("%s from %s: %s, want %s", q.name, q.src, dns.RcodeToString[resp.Rcode], dns.RcodeToString[q.rcode])
		}
	}
	return nil
}
