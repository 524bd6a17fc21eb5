// Command report turns bench/run.sh's results.tsv into a Markdown table of
// dnsward against Unbound, with ratios and the targets.
//
// results.tsv rows (tab-separated):
//
//	run  ROUND SCENARIO SERVER QPS COMPLETED LOST AVG_MS CPU_US_PER_QUERY
//	proc SERVER STARTUP_MS RSS_LOADED_KB HWM_KB [HWM_LOADED_KB]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

const (
	ours   = "dnsward"
	theirs = "unbound"
)

type runStats struct{ qps, completed, lost, avgMs, cpuUs []float64 }

type procStats struct{ startupMs, rssKB, hwmKB, hwmLoadedKB float64 }

type results struct {
	scenarios []string // in first-seen order
	runs      map[string]map[string]*runStats
	procs     map[string]procStats
	rounds    int
}

func main() {
	in := flag.String("in", "bench/out/results.tsv", "results from bench/run.sh")
	rate := flag.Int("rate", 20000, "the fixed rate of the @rate scenarios, for the heading")
	flag.Parse()
	f, err := os.Open(*in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	defer f.Close()
	r, err := parse(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	write(os.Stdout, r, *rate)
}

func parse(rd io.Reader) (*results, error) {
	r := &results{runs: map[string]map[string]*runStats{}, procs: map[string]procStats{}}
	sc := bufio.NewScanner(rd)
	for line := 1; sc.Scan(); line++ {
		f := strings.Split(sc.Text(), "\t")
		nums := func(from int) ([]float64, error) {
			var out []float64
			for _, s := range f[from:] {
				v, err := strconv.ParseFloat(s, 64)
				if err != nil {
					return nil, fmt.Errorf("line %d: %q is not a number", line, s)
				}
				out = append(out, v)
			}
			return out, nil
		}
		switch {
		case f[0] == "run" && len(f) == 9:
			v, err := nums(4)
			if err != nil {
				return nil, err
			}
			round, _ := strconv.Atoi(f[1])
			r.rounds = max(r.rounds, round)
			scen, server := f[2], f[3]
			if r.runs[scen] == nil {
				r.runs[scen] = map[string]*runStats{}
				r.scenarios = append(r.scenarios, scen)
			}
			s := r.runs[scen][server]
			if s == nil {
				s = &runStats{}
				r.runs[scen][server] = s
			}
			s.qps, s.completed, s.lost = append(s.qps, v[0]), append(s.completed, v[1]), append(s.lost, v[2])
			s.avgMs, s.cpuUs = append(s.avgMs, v[3]), append(s.cpuUs, v[4])
		case f[0] == "proc" && (len(f) == 5 || len(f) == 6):
			v, err := nums(2)
			if err != nil {
				return nil, err
			}
			p := procStats{startupMs: v[0], rssKB: v[1], hwmKB: v[2]}
			if len(v) == 4 {
				p.hwmLoadedKB = v[3]
			}
			r.procs[f[1]] = p
		default:
			return nil, fmt.Errorf("line %d: unexpected row %q", line, sc.Text())
		}
	}
	return r, sc.Err()
}

// median of the rounds; NaN-free because every slice has at least one value.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// pairedRatio compares the two servers round by round: a[i] and b[i] ran
// back to back, so their ratio is free of the machine's drift between
// rounds, which on a shared VM is larger than the differences measured.
// It returns the median of the per-round ratios and their range.
func pairedRatio(a, b []float64) (med, lo, hi float64) {
	var rs []float64
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			rs = append(rs, a[i]/b[i])
		}
	}
	if len(rs) == 0 {
		return 0, 0, 0
	}
	return median(rs), slices.Min(rs), slices.Max(rs)
}

// pairedText is pairedRatio as table text: "1.07×", with the range of the
// rounds when there were several.
func pairedText(a, b []float64) string {
	med, lo, hi := pairedRatio(a, b)
	if med == 0 {
		return "–"
	}
	if len(a) < 2 {
		return fmt.Sprintf("%.2f×", med)
	}
	return fmt.Sprintf("%.2f× (%.2f–%.2f)", med, lo, hi)
}
