package main

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"reflect"
)

// registerAdminHandlers hands the policy endpoints to the admin listener;
// package metrics serves them without knowing about blocklists.
func (a *app) registerAdminHandlers() {
	a.admin.Handle("POST /v1/reload", http.HandlerFunc(a.handleReload))
	a.admin.Handle("GET /v1/explain", http.HandlerFunc(a.handleExplain))
	a.admin.Handle("GET /v1/lists", http.HandlerFunc(a.handleLists))
	a.admin.Handle("GET /v1/rpz-primary", http.HandlerFunc(a.handlePrimary))
}

// handleReload asks the main loop to reload, so that SIGHUP and the API
// never run two reloads at once.
func (a *app) handleReload(w http.ResponseWriter, r *http.Request) {
	reply := make(chan error, 1)
	select {
	case a.reloads <- reply:
	case <-r.Context().Done():
		return
	}
	var err error
	select {
	case err = <-reply:
	case <-r.Context().Done():
		return
	}
	if err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"status": "failed", "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "reloaded"})
}

func (a *app) handleExplain(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	if name == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "name is required, e.g. /v1/explain?name=www.tiktok.com&client=10.1.2.3"})
		return
	}
	client := netip.IPv4Unspecified()
	if c := r.URL.Query().Get("client"); c != "" {
		var err error
		if client, err = netip.ParseAddr(c); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "client " + c + " is not an IP address"})
			return
		}
	}
	writeJSON(w, http.StatusOK, a.engine.Explain(client, name))
}

func (a *app) handleLists(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.engine.Lists())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// restartOnly names the settings that differ between old and next but are
// only read at start.
func restartOnly(old, next *fileConfig) []string {
	var keys []string
	for _, c := range []struct {
		key       string
		old, next any
	}{
		{"listen", old.Resolver.Listen, next.Resolver.Listen},
		{"upstream", old.Upstream, next.Upstream},
		{"cache", old.Resolver.Cache, next.Resolver.Cache},
		{"admin", old.Admin, next.Admin},
		{"log", old.Log, next.Log},
		{"state_dir", old.StateDir, next.StateDir},
		{"dnstap", old.Dnstap, next.Dnstap},
		{"rpz_primary", old.Primary, next.Primary},
	} {
		if !reflect.DeepEqual(c.old, c.next) {
			keys = append(keys, c.key)
		}
	}
	return keys
}
