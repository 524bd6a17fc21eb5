package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/dnsward/dnsward/blocklist"
)

// checkCmd validates a config file, loads every list it names, and prints
// a summary. Any error exits non-zero, so CI and config management can
// gate deployments on it.
func checkCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML config file to check (required)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "dnsward check: -config FILE is required")
		return 2
	}
	cfg, err := loadConfigFile(*path, resolvConfPaths)
	if err != nil {
		fmt.Fprintln(stderr, "dnsward:", err)
		return 1
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	engine, err := newEngineForCLI(context.Background(), cfg, quiet)
	if err != nil {
		fmt.Fprintf(stderr, "dnsward: %s: %v\n", *path, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: OK\n", *path)
	fmt.Fprintf(stdout, "  listen:    %s (udp+tcp)\n", strings.Join(cfg.Resolver.Listen, ", "))
	fmt.Fprintf(stdout, "  upstream:  %s (%s, timeout %s)\n", strings.Join(cfg.Upstream.Servers, ", "), cfg.Upstream.Strategy, cfg.Upstream.Timeout)
	fmt.Fprintf(stdout, "  cache:     %d entries, ttl %s..%s, negative up to %s\n", cfg.Resolver.Cache.MaxEntries,
		cfg.Resolver.Cache.MinTTL, cfg.Resolver.Cache.MaxTTL, cfg.Resolver.Cache.NegativeMaxTTL)
	fmt.Fprintf(stdout, "  blocking:  answer %s, ttl %s\n", cfg.Resolver.Blocking.Answer, cfg.Resolver.Blocking.TTL)
	failed := false
	for _, l := range engine.Lists() {
		fmt.Fprintf(stdout, "  list %-20s %8d rules, %d rejected\n", l.Name, l.Rules, l.Rejected)
		printZones(stdout, l)
		if !l.OK {
			fmt.Fprintf(stdout, "    problem: %s\n", l.Outcome)
			failed = true
		}
	}
	for _, g := range cfg.Policy.Groups {
		fmt.Fprintf(stdout, "  group %-19s clients %s; block %v allow %v monitor %v\n", g.Name,
			strings.Join(g.Clients, ", "), g.Block, g.Allow, g.Monitor)
	}
	if cfg.Policy.DefaultGroup != "" {
		fmt.Fprintf(stdout, "  default group: %s\n", cfg.Policy.DefaultGroup)
	}
	printPrimary(stdout, cfg)
	if failed {
		fmt.Fprintln(stderr, "dnsward: some list sources could not be loaded (see above)")
		return 1
	}
	return 0
}

// newEngineForCLI loads the policy once, without background refreshes.
func newEngineForCLI(ctx context.Context, cfg *fileConfig, log *slog.Logger) (*blocklist.Engine, error) {
	return blocklist.NewEngine(ctx, cfg.Policy, blocklistOptions(cfg, log, nil))
}
