package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dnsward/dnsward/blocklist"
	"github.com/dnsward/dnsward/blocklist/rpzprimary"
	"github.com/dnsward/dnsward/metrics"
	"github.com/dnsward/dnsward/resolver"
	"github.com/dnsward/dnsward/resolver/upstream"
)

func serveCmd(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML config file (default: the embedded default config)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfigFile(*path, resolvConfPaths)
	if err != nil {
		fmt.Fprintln(stderr, "dnsward:", err)
		return 1
	}
	log := newLogger(cfg.Log, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	if err := serve(ctx, cfg, log, hup, reserveSchedulerSlot()); err != nil {
		log.Error("dnsward stopped", "err", err)
		return 1
	}
	return 0
}

// app is one running dnsward: everything serve wires together.
type app struct {
	cfg      *fileConfig
	log      *slog.Logger
	rec      *metrics.Recorder
	audit    *metrics.AuditLog
	dnstap   *metrics.Dnstap
	fwd      *upstream.Forwarder
	engine   *blocklist.Engine
	resolver *resolver.Resolver
	admin    *metrics.Admin
	primary  *rpzprimary.Server // nil unless rpz_primary is configured
	reloads  chan chan error    // admin API → main loop
}

// serve runs until ctx ends; each value on hup reloads the config file.
// udpReaders is how many UDP read threads to run (0: the resolver's default).
func serve(ctx context.Context, cfg *fileConfig, log *slog.Logger, hup <-chan os.Signal, udpReaders int) error {
	a, err := start(ctx, cfg, log, udpReaders)
	if err != nil {
		return err
	}
	sdNotify(log, "READY=1")
	log.Info("dnsward started", "version", versionString(), "listen", cfg.Resolver.Listen,
		"upstreams", cfg.Upstream.Servers, "admin", cfg.Admin.Listen, "config", configName(cfg))
	return a.run(ctx, hup)
}

// run is the main loop: reloads one at a time, shutdown when ctx ends.
func (a *app) run(ctx context.Context, hup <-chan os.Signal) error {
	for {
		select {
		case <-ctx.Done():
			return a.shutdown()
		case <-hup:
			if err := a.reload(ctx); err != nil {
				a.log.Error("reload failed; the running config is kept", "err", err)
			}
		case reply := <-a.reloads:
			reply <- a.reload(ctx)
		}
	}
}

func start(ctx context.Context, cfg *fileConfig, log *slog.Logger, udpReaders int) (*app, error) {
	a := &app{cfg: cfg, log: log, reloads: make(chan chan error)}
	reg := prometheus.NewRegistry()
	var err error
	if cfg.Log.Audit.Path != "" {
		if a.audit, err = metrics.NewAuditLog(cfg.Log.Audit, log); err != nil {
			return nil, err
		}
	}
	if a.dnstap, err = metrics.NewDnstap(cfg.Dnstap, log); err != nil {
		return nil, err
	}
	a.rec, err = metrics.New(reg, metrics.Options{Version: versionString(), Logger: log, Audit: a.audit, Dnstap: a.dnstap})
	if err != nil {
		return nil, err
	}
	a.fwd, err = upstream.New(cfg.Upstream, upstream.Options{Logger: log, Observer: a.rec})
	if err != nil {
		return nil, err
	}
	a.engine, err = blocklist.NewEngine(ctx, cfg.Policy, blocklistOptions(cfg, log, a.rec))
	if err != nil {
		return nil, err
	}
	a.resolver, err = resolver.New(resolver.Options{
		Config:     cfg.Resolver,
		UDPReaders: udpReaders,
		MaxPending: cfg.Upstream.MaxInflight,
		Upstream:   a.fwd,
		Policy:     policyAdapter{a.engine},
		Notify:     a.engine.HandleNotify,
		Metrics:    a.rec,
		Logger:     log,
	})
	if err != nil {
		return nil, err
	}
	a.admin = metrics.NewAdmin(cfg.Admin, reg, a.resolver.Ready, log)
	a.admin.SetTop(a.rec.Top())
	a.registerAdminHandlers()
	if err := a.resolver.Start(); err != nil {
		return nil, err
	}
	if err := a.admin.Start(); err != nil {
		_ = a.resolver.Shutdown(context.Background())
		return nil, err
	}
	go a.engine.Run(ctx)
	if err := a.startPrimary(); err != nil {
		_ = a.resolver.Shutdown(context.Background())
		_ = a.admin.Shutdown(context.Background())
		return nil, err
	}
	top := a.rec.Top()
	top.Start(ctx)
	context.AfterFunc(ctx, top.Close)
	return a, nil
}

// reserveSchedulerSlot sizes the UDP read threads to the CPUs Go may use,
// and adds one P beyond them; it changes a process-wide setting, so only
// the serve command calls it, once: the readers sit in blocking reads, and with no idle P
// the runtime's sysmon would take each reader's P away every few tens of
// microseconds and hand it back on the next packet (measured: 1.9 context
// switches and 16 us CPU per query at 20k QPS, against 1.2 and 11 us). An
// explicit GOMAXPROCS in the environment is left as the operator set it.
func reserveSchedulerSlot() int {
	procs := runtime.GOMAXPROCS(0)
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(procs + 1)
	}
	return procs
}

func blocklistOptions(cfg *fileConfig, log *slog.Logger, rec *metrics.Recorder) blocklist.Options {
	opts := blocklist.Options{Logger: log, StateDir: cfg.StateDir}
	if cfg.path != "" {
		opts.BaseDir = filepath.Dir(cfg.path)
	}
	if rec != nil {
		opts.OnListUpdate = func(s blocklist.ListStatus) { recordList(rec, s) }
	}
	return opts
}

// reload re-reads the config file and applies what can change while
// serving: lists, groups, blocking answers, access control. A config that
// does not load leaves everything as it was.
func (a *app) reload(ctx context.Context) error {
	defer notifyReload(a.log)()
	if err := a.audit.Reopen(); err != nil { // lets logrotate-style tools move the file
		a.log.Error("reopening the audit log failed", "err", err)
	}
	if a.cfg.path != "" {
		if err := a.applyConfigFile(ctx); err != nil {
			return err
		}
	}
	// Fetch every list source again too: that is what an operator who
	// just fixed a list expects. Sources that fail keep their last good
	// content, so this only warns.
	if err := a.engine.Reload(ctx); err != nil {
		a.log.Warn("list reload: some sources kept their last good content", "err", err)
	}
	return nil
}

// applyConfigFile loads the config file again and switches to it, or
// returns why not and changes nothing.
func (a *app) applyConfigFile(ctx context.Context) error {
	next, err := loadConfigFile(a.cfg.path, resolvConfPaths)
	if err != nil {
		return err
	}
	if err := a.engine.Apply(ctx, next.Policy); err != nil {
		return err
	}
	if err := a.resolver.Apply(next.Resolver); err != nil {
		return err // cannot happen: loadConfigFile validated it
	}
	if changed := restartOnly(a.cfg, next); len(changed) > 0 {
		a.log.Warn("config reloaded; these settings change only at restart", "keys", strings.Join(changed, ", "))
	} else {
		a.log.Info("config reloaded")
	}
	next.Resolver.Listen, next.Upstream, next.Resolver.Cache, next.Admin, next.Log, next.Dnstap = a.cfg.Resolver.Listen, a.cfg.Upstream, a.cfg.Resolver.Cache, a.cfg.Admin, a.cfg.Log, a.cfg.Dnstap
	a.cfg = next
	return nil
}

func (a *app) shutdown() error {
	sdNotify(a.log, "STOPPING=1")
	a.log.Info("shutting down: finishing queries in flight")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := []error{a.resolver.Shutdown(ctx), a.stopPrimary(ctx), a.admin.Shutdown(ctx), a.fwd.Close()}
	if a.audit != nil {
		errs = append(errs, a.audit.Close())
	}
	a.dnstap.Close() // after the resolver: sends what its last queries queued
	return errors.Join(errs...)
}

func newLogger(c logConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func configName(cfg *fileConfig) string {
	if cfg.path == "" {
		return "embedded default"
	}
	return cfg.path
}
