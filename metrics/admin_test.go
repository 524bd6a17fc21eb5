package metrics

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestAdminEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	var notReady error = errors.New("no upstream has answered yet")
	a, base := startAdmin(t, reg, func() error { return notReady }, nil)
	a.Handle("POST /v1/reload", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("reloaded"))
	}))

	if code, body := httpGet(t, base+"/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := httpGet(t, base+"/readyz"); code != 503 || !strings.Contains(body, "no upstream has answered yet") {
		t.Errorf("/readyz not ready: %d %q", code, body)
	}
	notReady = nil
	if code, body := httpGet(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz ready: %d %q", code, body)
	}
	if code, body := httpGet(t, base+"/v1/stats/top"); code != 503 {
		t.Errorf("/v1/stats/top without a counter: %d %q", code, body)
	}
	if code, _ := httpGet(t, base+"/nope"); code != 404 {
		t.Errorf("/nope: %d", code)
	}
	resp, err := http.Post(base+"/v1/reload", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("POST /v1/reload: %d", resp.StatusCode)
	}
	if code, _ := httpGet(t, base+"/v1/reload"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/reload: %d, want 405", code)
	}
}

func TestAdminBindErrorAndLifecycle(t *testing.T) {
	reg := prometheus.NewRegistry()
	first, _ := startAdmin(t, reg, nil, nil)
	taken := first.Addr().String()
	second := NewAdmin(AdminConfig{Listen: taken}, reg, nil, nil)
	err := second.Start()
	if err == nil || !strings.Contains(err.Error(), taken) {
		t.Fatalf("Start on a taken port %s: %v, want an error naming it", taken, err)
	}
	if first.Start() == nil {
		t.Error("second Start: want an error")
	}

	off := NewAdmin(AdminConfig{}, reg, nil, nil)
	if err := off.Start(); err != nil || off.Addr() != nil {
		t.Errorf("Listen \"\": Start %v, Addr %v; want nothing bound", err, off.Addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := off.Shutdown(ctx); err != nil {
		t.Error(err)
	}
}

func TestAdminConfigValidate(t *testing.T) {
	for listen, ok := range map[string]bool{
		"":                true,
		"127.0.0.1:9153":  true,
		"[::1]:9153":      true,
		":9153":           false, // every interface: needs admin.token
		"localhost:0":     true,
		"127.0.0.1":       false,
		"host.lan:9153":   false,
		"127.0.0.1:http":  false,
		"127.0.0.1:-1":    false,
		"127.0.0.1:":      false,
		"127.0.0.1:70000": false,
	} {
		err := AdminConfig{Listen: listen}.Validate()
		if ok != (err == nil) {
			t.Errorf("%q: %v", listen, err)
		}
		var ce *ConfigError
		if err != nil && (!errors.As(err, &ce) || ce.Key() != "admin.listen" || !strings.Contains(err.Error(), listen)) {
			t.Errorf("%q: error %v, want key admin.listen and the value", listen, err)
		}
	}
	if err := DefaultAdminConfig().Validate(); err != nil {
		t.Error(err)
	}
}

// TestAdminPprofOnlyWhenAsked: the profiler is off unless admin.pprof is set.
func TestAdminPprofOnlyWhenAsked(t *testing.T) {
	_, base := startAdmin(t, prometheus.NewRegistry(), func() error { return nil }, nil)
	if code, _ := httpGet(t, base+"/debug/pprof/"); code != http.StatusNotFound {
		t.Fatalf("pprof served without admin.pprof: %d", code)
	}
	a := NewAdmin(AdminConfig{Listen: "127.0.0.1:0", Pprof: true}, prometheus.NewRegistry(), func() error { return nil }, nil)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	if code, body := httpGet(t, "http://"+a.Addr().String()+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Fatalf("pprof index with admin.pprof: %d", code)
	}
}
