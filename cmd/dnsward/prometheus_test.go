package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/dnsward/dnsward/internal/dnstest"
)

// A Prometheus server run by a test: started on a free loopback port,
// scraping one target, queried through its HTTP API.

// promServer is a Prometheus child process on a loopback port.
type promServer struct {
	base   string
	out    *dnstest.LogBuffer
	exited chan struct{}
}

func startPrometheus(t *testing.T, bin, dir, target string) *promServer {
	t.Helper()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"+
		"scrape_configs:\n  - job_name: dnsward\n    static_configs:\n      - targets: [%q]\n", target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // hard upper bound on its life
	cmd := exec.CommandContext(ctx, bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+addr)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second // then SIGKILL
	p := &promServer{base: "http://" + addr, out: &dnstest.LogBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		cancel()
		<-p.exited
		if t.Failed() {
			t.Logf("prometheus output:\n%s", p.out.String())
		}
	})
	return p
}

// waitForSamples waits until Prometheus holds n scrapes of dnsward.
func (p *promServer) waitForSamples(t *testing.T, n int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		v, err := p.query(`count_over_time(dnsward_build_info[1m])`)
		if err == nil && len(v) == 1 && v[0] >= float64(n) {
			return
		}
		select {
		case <-p.exited:
			t.Fatalf("prometheus exited:\n%s", p.out.String())
		case <-time.After(250 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus did not get %d scrapes within %v (last: %v %v)", n, limit, v, err)
		}
	}
}

// query evaluates expr now and returns the sample values.
func (p *promServer) query(expr string) ([]float64, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.api("/api/v1/query?query="+url.QueryEscape(expr), &data); err != nil {
		return nil, err
	}
	var pairs [][2]any
	switch data.ResultType {
	case "vector":
		var vec []struct {
			Value [2]any `json:"value"`
		}
		if err := json.Unmarshal(data.Result, &vec); err != nil {
			return nil, err
		}
		for _, s := range vec {
			pairs = append(pairs, s.Value)
		}
	case "scalar":
		var s [2]any
		if err := json.Unmarshal(data.Result, &s); err != nil {
			return nil, err
		}
		pairs = append(pairs, s)
	default:
		return nil, fmt.Errorf("result type %q, want vector or scalar", data.ResultType)
	}
	var values []float64
	for _, pr := range pairs {
		s, _ := pr[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("sample value %v: %w", pr[1], err)
		}
		values = append(values, v)
	}
	return values, nil
}

func (p *promServer) labelValues(t *testing.T, label, match string) []string {
	t.Helper()
	var vals []string
	if err := p.api("/api/v1/label/"+label+"/values?match[]="+url.QueryEscape(match), &vals); err != nil {
		t.Fatalf("label values of %s: %v", label, err)
	}
	return vals
}

// api GETs path and decodes the data of a successful answer into data.
func (p *promServer) api(path string, data any) error {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(p.base + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("HTTP %d: %w", resp.StatusCode, err)
	}
	if body.Status != "success" {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, body.Error)
	}
	return json.Unmarshal(body.Data, data)
}
