package main

import (
	"fmt"
	"io"
	"strings"
)

func write(w io.Writer, r *results, rate int) {
	if r.rounds > 1 {
		fmt.Fprintf(w, "Medians of %d rounds. Ratios are the median of each round's dnsward / Unbound ratio (the two ran back to back), with the range over the rounds in brackets. ", r.rounds)
	} else {
		fmt.Fprintf(w, "Ratios are dnsward / Unbound. ")
	}
	fmt.Fprintf(w, "Above 1 is better for QPS, below 1 is better for CPU, latency and memory.\n")
	fmt.Fprintf(w, "Scenarios ending in @rate run at a fixed %d QPS; the others send as fast as dnsperf can.\n\n", rate)
	fmt.Fprintln(w, "| scenario | QPS dnsward | QPS Unbound | QPS ratio | lost dnsward | lost Unbound | avg ms dnsward | avg ms Unbound | CPU µs/query dnsward | CPU µs/query Unbound | CPU ratio |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, scen := range r.scenarios {
		a, b := r.runs[scen][ours], r.runs[scen][theirs]
		if a == nil || b == nil {
			continue
		}
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %s | %.0f | %.0f | %.3f | %.3f | %.1f | %.1f | %s |\n", scen,
			median(a.qps), median(b.qps), pairedText(a.qps, b.qps),
			median(a.lost), median(b.lost), median(a.avgMs), median(b.avgMs),
			median(a.cpuUs), median(b.cpuUs), pairedText(a.cpuUs, b.cpuUs))
	}
	pa, pb := r.procs[ours], r.procs[theirs]
	fmt.Fprintln(w, "\n| process | dnsward | Unbound | ratio |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: |")
	fmt.Fprintf(w, "| start-up to first blocked answer (ms) | %.0f | %.0f | %s |\n", pa.startupMs, pb.startupMs, ratio(pa.startupMs, pb.startupMs))
	fmt.Fprintf(w, "| RSS with the list loaded, before the load runs (MB) | %.0f | %.0f | %s |\n", pa.rssKB/1024, pb.rssKB/1024, ratio(pa.rssKB, pb.rssKB))
	if pa.hwmLoadedKB > 0 && pb.hwmLoadedKB > 0 {
		fmt.Fprintf(w, "| VmHWM after start-up and warm-up: loading the list (MB) | %.0f | %.0f | %s |\n", pa.hwmLoadedKB/1024, pb.hwmLoadedKB/1024, ratio(pa.hwmLoadedKB, pb.hwmLoadedKB))
	}
	fmt.Fprintf(w, "| VmHWM at the end, after all runs (MB) | %.0f | %.0f | %s |\n", pa.hwmKB/1024, pb.hwmKB/1024, ratio(pa.hwmKB, pb.hwmKB))
	writeTargets(w, r, rate)
}

// writeTargets checks the targets against the medians (ratios:
// the median of the per-round ratios).
func writeTargets(w io.Writer, r *results, rate int) {
	fmt.Fprintln(w, "\n| target | measured | met |")
	fmt.Fprintln(w, "| --- | --- | --- |")
	row := func(target, measured string, ok bool) {
		fmt.Fprintf(w, "| %s | %s | %s |\n", target, measured, map[bool]string{true: "yes", false: "**no**"}[ok])
	}
	both := func(scen string) (*runStats, *runStats, bool) {
		a, b := r.runs[scen][ours], r.runs[scen][theirs]
		return a, b, a != nil && b != nil
	}
	for _, scen := range []string{"cached@rate", "blocked@rate"} {
		if a, b, ok := both(scen); ok {
			x, _, _ := pairedRatio(a.cpuUs, b.cpuUs)
			row("CPU per query, "+scen+" ≤ 1.0× Unbound", pairedText(a.cpuUs, b.cpuUs), x <= 1.0)
		}
	}
	for _, scen := range []string{"cached", "blocked", "miss"} {
		if a, b, ok := both(scen); ok {
			x, _, _ := pairedRatio(a.qps, b.qps)
			row("QPS, "+scen+" ≥ 1.0× Unbound", pairedText(a.qps, b.qps), x >= 1.0)
		}
	}
	// Issue 13: cached answers over DNS over TLS and over HTTPS.
	for _, scen := range []string{"dot", "doh"} {
		if a, b, ok := both(scen); ok {
			x, _, _ := pairedRatio(a.qps, b.qps)
			row("QPS, cached over "+scen+" ≥ 1.0× Unbound", pairedText(a.qps, b.qps), x >= 1.0)
			y, _, _ := pairedRatio(a.cpuUs, b.cpuUs)
			row("CPU per query, cached over "+scen+" ≤ 1.0× Unbound", pairedText(a.cpuUs, b.cpuUs), y <= 1.0)
		}
	}
	for _, scen := range r.scenarios {
		if a := r.runs[scen][ours]; a != nil && strings.HasSuffix(scen, "@rate") {
			ms, lost := median(a.avgMs), median(a.lost)
			row(fmt.Sprintf("avg latency at %d QPS ≤ 0.1 ms with 0 lost (%s)", rate, scen),
				fmt.Sprintf("%.3f ms, %.0f lost", ms, lost), ms <= 0.1 && lost == 0)
		}
	}
	if p, ok := r.procs[ours]; ok {
		row("RSS with 1M rules ≤ 100 MB (VmHWM at the end)", fmt.Sprintf("%.0f MB", p.hwmKB/1024), p.hwmKB <= 100*1024)
		if p.hwmLoadedKB > 0 {
			row("RSS with 1M rules ≤ 100 MB (VmHWM after start-up)", fmt.Sprintf("%.0f MB", p.hwmLoadedKB/1024), p.hwmLoadedKB <= 100*1024)
		}
		row("start-up to first blocked answer ≤ 1 s", fmt.Sprintf("%.0f ms", p.startupMs), p.startupMs <= 1000)
	}
}
