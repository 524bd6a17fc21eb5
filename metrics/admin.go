package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const maxTopLimit = 1000

// Admin is the admin HTTP listener: /metrics, /healthz, /readyz,
// /v1/stats/top and the handlers cmd adds with Handle.
type Admin struct {
	cfg   AdminConfig
	log   *slog.Logger
	mux   *http.ServeMux
	ready func() error
	top   atomic.Pointer[TopCounter]

	mu  sync.Mutex
	srv *http.Server
	ln  net.Listener
}

// NewAdmin builds the admin surface. g is scraped on /metrics; ready
// (nil: always ready) decides /readyz, its error text being the reason.
func NewAdmin(cfg AdminConfig, g prometheus.Gatherer, ready func() error, logger *slog.Logger) *Admin {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &Admin{cfg: cfg, log: logger, mux: http.NewServeMux(), ready: ready}
	a.mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
		Timeout:       10 * time.Second,
	}))
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	a.mux.HandleFunc("GET /readyz", a.serveReady)
	a.mux.HandleFunc("GET /v1/stats/top", a.serveTop)
	if cfg.Pprof {
		a.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		a.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		a.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		a.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return a
}

// Handle adds a handler, e.g. Handle("POST /v1/reload", h). Patterns follow
// http.ServeMux; a pattern that conflicts with an existing one panics.
func (a *Admin) Handle(pattern string, h http.Handler) { a.mux.Handle(pattern, h) }

// SetTop sets the counter behind /v1/stats/top (503 until set).
func (a *Admin) SetTop(t *TopCounter) { a.top.Store(t) }

// Start binds cfg.Listen and serves in the background. It returns the
// bind error, if any. With an empty Listen it does nothing.
func (a *Admin) Start() error {
	if a.cfg.Listen == "" {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.srv != nil {
		return errors.New("admin listener already started")
	}
	handler, err := a.handler()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("admin.listen %q: %w", a.cfg.Listen, err)
	}
	a.ln = ln
	a.srv = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin listener stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	a.log.Info("admin listener started", "addr", ln.Addr().String())
	return nil
}

// handler puts the bearer check in front of the mux when a token is
// configured, and refuses to serve a non-loopback address without one even
// if the config was not validated.
func (a *Admin) handler() (http.Handler, error) {
	tok, err := a.cfg.loadToken()
	if err != nil {
		return nil, err
	}
	if tok == "" {
		host, _, _ := net.SplitHostPort(a.cfg.Listen)
		if err := a.cfg.validateAuth(host); err != nil {
			return nil, err
		}
		return a.mux, nil
	}
	return newBearerAuth(tok, a.cfg.ProtectMetrics, a.mux, a.log), nil
}

// Addr returns the bound address, or nil before Start (or when off).
func (a *Admin) Addr() net.Addr {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ln == nil {
		return nil
	}
	return a.ln.Addr()
}

// Shutdown stops accepting and waits for in-flight requests until ctx ends.
func (a *Admin) Shutdown(ctx context.Context) error {
	a.mu.Lock()
	srv := a.srv
	a.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Shutdown(ctx)
}

func (a *Admin) serveReady(w http.ResponseWriter, _ *http.Request) {
	if a.ready != nil {
		if err := a.ready(); err != nil {
			writeText(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
			return
		}
	}
	writeText(w, http.StatusOK, "ready")
}

// serveTop answers GET /v1/stats/top?by=name|client&window=1h&limit=20.
func (a *Admin) serveTop(w http.ResponseWriter, r *http.Request) {
	t := a.top.Load()
	if t == nil {
		writeText(w, http.StatusServiceUnavailable, "top counter not enabled")
		return
	}
	q := r.URL.Query()
	by := q.Get("by")
	if by == "" {
		by = "name"
	}
	var window time.Duration
	if s := q.Get("window"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			writeText(w, http.StatusBadRequest, fmt.Sprintf("window %q: not a duration such as 15m or 1h", s))
			return
		}
		window = d
	}
	limit := 20
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxTopLimit {
			writeText(w, http.StatusBadRequest, fmt.Sprintf("limit %q: must be 1 to %d", s, maxTopLimit))
			return
		}
		limit = n
	}
	res, err := t.Top(by, window, limit)
	if err != nil {
		writeText(w, http.StatusBadRequest, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(res); err != nil {
		a.log.Debug("writing top response", "err", err)
	}
}

func writeText(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}
