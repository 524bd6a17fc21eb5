// Command soakstat turns a running `dnsperf -v` into the soak report: it
// reads dnsperf's per-query lines from stdin and, every interval, writes a
// markdown table row with the queries answered and lost, latency
// percentiles, the kernel's UDP receive-buffer drops, the server's RSS
// (from /proc) and goroutines (go_goroutines on its /metrics), and the
// events bench/soak.sh logged meanwhile.
//
//	dnsperf -v ... | soakstat -pid PID -metrics URL -events FILE -every 30s -out table.md
//
// dnsperf 2.10 has no latency histogram or per-interval loss, but with -v
// it prints "> RCODE NAME TYPE SECONDS" per answer and "> T NAME TYPE" per
// timeout; a timeout is counted when dnsperf gives up (its -t after the
// query was sent). Other lines go to -raw.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

type options struct {
	pid               int
	metrics, events   string
	out, raw, summary string
	every             time.Duration
}

func main() {
	var o options
	flag.IntVar(&o.pid, "pid", 0, "process whose RSS is sampled (/proc/PID/status)")
	flag.StringVar(&o.metrics, "metrics", "", "Prometheus URL to read go_goroutines from")
	flag.StringVar(&o.events, "events", "", "file of \"SECONDS EVENT\" lines appended by the soak script")
	flag.StringVar(&o.out, "out", "soak-table.md", "markdown table, one row per interval")
	flag.StringVar(&o.raw, "raw", "dnsperf-status.txt", "dnsperf's other output (status, final statistics)")
	flag.StringVar(&o.summary, "summary", "soak-summary.md", "totals over the whole run")
	flag.DurationVar(&o.every, "every", 30*time.Second, "interval of the table rows")
	flag.Parse()
	if err := run(o, os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "soakstat:", err)
		os.Exit(1)
	}
}

// interval accumulates one table row.
type interval struct {
	answered, lost, servfail int
	latencies                []float64 // seconds
}

type stats struct {
	mu    sync.Mutex
	cur   interval
	total interval
}

func (s *stats) line(l string) bool {
	if !strings.HasPrefix(l, "> ") {
		return false
	}
	f := strings.Fields(l[2:])
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case len(f) >= 1 && f[0] == "T":
		s.cur.lost++
	case len(f) >= 4:
		s.cur.answered++
		if f[0] == "SERVFAIL" {
			s.cur.servfail++
		}
		if v, err := strconv.ParseFloat(f[3], 64); err == nil {
			s.cur.latencies = append(s.cur.latencies, v)
		}
	}
	return true
}

// take ends the current interval and folds it into the totals.
func (s *stats) take() interval {
	s.mu.Lock()
	defer s.mu.Unlock()
	iv := s.cur
	s.cur = interval{}
	s.total.answered += iv.answered
	s.total.lost += iv.lost
	s.total.servfail += iv.servfail
	s.total.latencies = append(s.total.latencies, iv.latencies...)
	return iv
}

func run(o options, in io.Reader) error {
	table, err := os.Create(o.out)
	if err != nil {
		return err
	}
	defer table.Close()
	raw, err := os.Create(o.raw)
	if err != nil {
		return err
	}
	defer raw.Close()
	fmt.Fprintln(table, "| t | answered | lost | SERVFAIL | QPS | p50 ms | p99 ms | max ms | kernel drops | RSS MiB | goroutines | events |")
	fmt.Fprintln(table, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")

	s := &stats{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if !s.line(sc.Text()) {
				fmt.Fprintln(raw, sc.Text())
			}
		}
	}()
	start := time.Now()
	r := reporter{o: o, table: table, start: start, drops: udpRcvbufErrors()}
	tick := time.NewTicker(o.every)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			r.row(s.take(), o.every)
		case <-done:
			// The tail after the last full interval gets a row only if it
			// is long enough to mean something; the totals count it anyway.
			span := time.Since(start) - r.last
			if iv := s.take(); iv.answered+iv.lost > 0 && span >= o.every/5 {
				r.row(iv, span)
			}
			return r.summarize(s.total, time.Since(start))
		}
	}
}

type reporter struct {
	o          options
	table      io.Writer
	start      time.Time
	last       time.Duration
	eventsRead int
	rss, gor   []float64
	drops      int64 // UDP RcvbufErrors at the previous row
}

func (r *reporter) row(iv interval, span time.Duration) {
	r.last = time.Since(r.start)
	p50, p99, pmax := percentiles(iv.latencies)
	rss := rssMiB(r.o.pid)
	gor := goroutines(r.o.metrics)
	if rss > 0 {
		r.rss = append(r.rss, rss)
	}
	if gor > 0 {
		r.gor = append(r.gor, gor)
	}
	drops := udpRcvbufErrors()
	fmt.Fprintf(r.table, "| %s | %d | %d | %d | %.0f | %.2f | %.2f | %.1f | %d | %.1f | %.0f | %s |\n",
		clock(r.last), iv.answered, iv.lost, iv.servfail, float64(iv.answered)/span.Seconds(),
		p50*1e3, p99*1e3, pmax*1e3, drops-r.drops, rss, gor, r.newEvents())
	r.drops = drops
}

func (r *reporter) summarize(t interval, elapsed time.Duration) error {
	f, err := os.Create(r.o.summary)
	if err != nil {
		return err
	}
	defer f.Close()
	p50, p99, pmax := percentiles(t.latencies)
	sent := t.answered + t.lost
	fmt.Fprintf(f, "- duration: %s; queries answered %d, lost %d (%.4f%%), SERVFAIL %d\n",
		elapsed.Round(time.Second), t.answered, t.lost, 100*float64(t.lost)/float64(max(sent, 1)), t.servfail)
	fmt.Fprintf(f, "- latency over the run: p50 %.2f ms, p99 %.2f ms, max %.1f ms\n", p50*1e3, p99*1e3, pmax*1e3)
	fmt.Fprintf(f, "- RSS: %s MiB; goroutines: %s\n", spread(r.rss, "%.1f"), spread(r.gor, "%.0f"))
	return nil
}

// spread is "first → last (min–max)" of a series sampled over the run.
func spread(v []float64, format string) string {
	if len(v) == 0 {
		return "not sampled"
	}
	f := func(x float64) string { return fmt.Sprintf(format, x) }
	return fmt.Sprintf("%s at the first row, %s at the last (min %s, max %s)", f(v[0]), f(v[len(v)-1]), f(slices.Min(v)), f(slices.Max(v)))
}

// newEvents returns the events logged since the previous row.
func (r *reporter) newEvents() string {
	if r.o.events == "" {
		return ""
	}
	data, err := os.ReadFile(r.o.events)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) == 1 && lines[0] == "" {
		lines = nil
	}
	fresh := lines[min(r.eventsRead, len(lines)):]
	r.eventsRead = len(lines)
	counts := map[string]int{}
	var order []string
	for _, l := range fresh {
		_, ev, _ := strings.Cut(l, " ")
		if counts[ev] == 0 {
			order = append(order, ev)
		}
		counts[ev]++
	}
	var out []string
	for _, ev := range order {
		if counts[ev] > 1 {
			ev = fmt.Sprintf("%s ×%d", ev, counts[ev])
		}
		out = append(out, ev)
	}
	return strings.Join(out, ", ")
}

func percentiles(v []float64) (p50, p99, pmax float64) {
	if len(v) == 0 {
		return 0, 0, 0
	}
	slices.Sort(v)
	at := func(q float64) float64 { return v[min(int(q*float64(len(v))), len(v)-1)] }
	return at(0.50), at(0.99), v[len(v)-1]
}

func clock(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// rssMiB reads VmRSS of pid, 0 when it cannot.
func rssMiB(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.Fields(rest)[0], 64)
			return kb / 1024
		}
	}
	return 0
}

// udpRcvbufErrors is the machine's count of UDP datagrams dropped for a
// full socket buffer (/proc/net/snmp): lost queries that never reached a
// server, or answers that never reached dnsperf.
func udpRcvbufErrors() int64 {
	data, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0
	}
	var header []string
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if header == nil {
			header = f
			continue
		}
		for i, name := range header {
			if name == "RcvbufErrors" && i < len(f) {
				n, _ := strconv.ParseInt(f[i], 10, 64)
				return n
			}
		}
	}
	return 0
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// goroutines reads go_goroutines from a Prometheus text page, 0 when it cannot.
func goroutines(url string) float64 {
	if url == "" {
		return 0
	}
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v
		}
	}
	return 0
}
