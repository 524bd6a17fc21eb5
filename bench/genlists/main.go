// Command genlists writes everything the benchmark needs into one directory:
// the 1,000,000-rule blocklist (real phishing and tracking lists topped up
// with synthetic names), the dnsperf query files, and matching dnsward and
// Unbound configurations. Output is deterministic for a given seed.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
)

type options struct {
	out      string // output directory
	realDir  string // directory with blocklistproject-*.domains ("" or missing: all synthetic)
	rules    int    // total rules in the list
	cached   int    // distinct names in cached.txt
	blocked  int    // lines in blocked.txt
	mixed    int    // lines in mixed.txt
	miss     int    // lines in miss.txt
	threads  int    // Unbound num-threads
	seed     int64
	upstream string // loopback IP:PORT of bench/upstream
	unbound  string // loopback IP:PORT Unbound listens on
	dnsward  string // loopback IP:PORT dnsward listens on
	admin    string // dnsward admin address
	// Encrypted listeners, all or none: a PEM certificate and key, and the
	// DoT and DoH addresses of both servers.
	cert, key                string
	unboundTLS, unboundHTTPS string
	dnswardTLS, dnswardHTTPS string
}

// encrypted reports whether the DoT and DoH listeners are configured.
func (o options) encrypted() bool { return o.cert != "" }

func main() {
	var o options
	flag.StringVar(&o.out, "out", "bench/out", "output directory")
	flag.StringVar(&o.realDir, "real", "../shared/data/lists", "directory holding blocklistproject-{phishing,tracking}.domains; if missing, the list is all synthetic")
	flag.IntVar(&o.rules, "rules", 1_000_000, "rules in the blocklist")
	flag.IntVar(&o.cached, "cached", 1000, "distinct allowed names in cached.txt")
	flag.IntVar(&o.blocked, "blocked", 200_000, "lines in blocked.txt")
	flag.IntVar(&o.mixed, "mixed", 200_000, "lines in mixed.txt")
	flag.IntVar(&o.miss, "miss", 3_000_000, "unique names in miss.txt")
	flag.IntVar(&o.threads, "threads", runtime.NumCPU(), "Unbound num-threads")
	flag.Int64Var(&o.seed, "seed", 1, "random seed")
	flag.StringVar(&o.upstream, "upstream", "127.0.0.1:5300", "bench upstream address")
	flag.StringVar(&o.unbound, "unbound", "127.0.0.1:5301", "Unbound listen address")
	flag.StringVar(&o.dnsward, "dnsward", "127.0.0.1:5302", "dnsward listen address")
	flag.StringVar(&o.admin, "admin", "127.0.0.1:5303", "dnsward admin address")
	flag.StringVar(&o.cert, "cert", "", "PEM certificate for the DoT/DoH listeners (empty: none)")
	flag.StringVar(&o.key, "key", "", "PEM key of -cert")
	flag.StringVar(&o.unboundTLS, "unbound-tls", "127.0.0.1:5304", "Unbound DoT address (with -cert)")
	flag.StringVar(&o.unboundHTTPS, "unbound-https", "127.0.0.1:5305", "Unbound DoH address (with -cert)")
	flag.StringVar(&o.dnswardTLS, "dnsward-tls", "127.0.0.1:5306", "dnsward DoT address (with -cert)")
	flag.StringVar(&o.dnswardHTTPS, "dnsward-https", "127.0.0.1:5307", "dnsward DoH address (with -cert)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "genlists:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if err := checkLoopback(o.upstream, o.unbound, o.dnsward, o.admin); err != nil {
		return err
	}
	if o.encrypted() {
		if o.key == "" {
			return fmt.Errorf("-cert needs -key")
		}
		if err := checkLoopback(o.unboundTLS, o.unboundHTTPS, o.dnswardTLS, o.dnswardHTTPS); err != nil {
			return err
		}
	}
	out, err := filepath.Abs(o.out)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	o.out = out

	rules, realCount, err := buildRules(o.realDir, o.rules, o.seed)
	if err != nil {
		return err
	}
	if realCount == 0 {
		slog.Warn("no real lists found: the blocklist is all synthetic", "looked_in", o.realDir)
	}
	slog.Info("rules", "total", len(rules), "real", realCount, "synthetic", len(rules)-realCount)

	steps := []struct {
		file  string
		write func(path string) error
	}{
		{"blocklist.txt", func(p string) error { return writeLines(p, rules) }},
		{"cached.txt", func(p string) error { return writeCached(p, o.cached) }},
		{"doh-paths.txt", func(p string) error { return writeDoHPaths(p, o.cached) }},
		{"blocked.txt", func(p string) error { return writeBlocked(p, rules, o.blocked, o.seed) }},
		{"mixed.txt", func(p string) error { return writeMixed(p, rules, o.cached, o.mixed, o.seed) }},
		{"miss.txt", func(p string) error { return writeMiss(p, o.miss, o.seed) }},
		{"unbound.conf", func(p string) error { return writeUnboundConf(p, o, rules) }},
		{"dnsward.yaml", func(p string) error { return writeDnswardConf(p, o) }},
		{"summary.txt", func(p string) error {
			return os.WriteFile(p, []byte(fmt.Sprintf("rules %d\nreal %d\nsynthetic %d\nreal_dir %s\n",
				len(rules), realCount, len(rules)-realCount, o.realDir)), 0o644)
		}},
	}
	for _, s := range steps {
		if err := s.write(filepath.Join(out, s.file)); err != nil {
			return fmt.Errorf("%s: %w", s.file, err)
		}
	}
	return nil
}
