package blocklist

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bigListPath is the benchmark harness's 1,000,000-rule list; override with
// DNSWARD_BIG_LIST. Benchmarks using it skip when it is absent.
func bigListPath(b *testing.B) string {
	b.Helper()
	p := os.Getenv("DNSWARD_BIG_LIST")
	if p == "" {
		p = filepath.Join("..", "bench", "out", "blocklist.txt")
	}
	if _, err := os.Stat(p); err != nil {
		b.Skipf("big list not available (%v); run bench/genlists or set DNSWARD_BIG_LIST", err)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		b.Fatal(err)
	}
	return abs
}

// cpuTime is user+system CPU of this process so far: wall time alone is
// noise on a shared 2-core machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procStatusMB reads a "Vm..." field of /proc/self/status in MB; 0 when
// unavailable.
func procStatusMB(field string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), field+":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
		return kb / 1024
	}
	return 0
}

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkNewEngineBigList measures start-up on the 1M-rule list: wall and
// CPU time of NewEngine, live heap per rule after it, and the process's
// VmHWM/VmRSS. Run it alone in a fresh process for meaningful VmHWM:
//
//	go test -run '^$' -bench NewEngineBigList -benchtime 1x ./blocklist/
func BenchmarkNewEngineBigList(b *testing.B) {
	path := bigListPath(b)
	cfg := fileListConfig(path)
	before := liveHeap()
	var e *Engine
	var wall, cpu time.Duration
	b.ResetTimer()
	for b.Loop() {
		e = nil
		c0, t0 := cpuTime(), time.Now()
		e = newEngine(b, cfg, Options{})
		wall += time.Since(t0)
		cpu += cpuTime() - c0
	}
	b.StopTimer()
	rules := e.Lists()[0].Rules
	hwm, rss := procStatusMB("VmHWM"), procStatusMB("VmRSS")
	heap := float64(liveHeap()) - float64(before)
	rssAfterGC := procStatusMB("VmRSS")
	runtime.KeepAlive(e)
	n := float64(b.N)
	b.ReportMetric(wall.Seconds()/n, "wall-s/op")
	b.ReportMetric(cpu.Seconds()/n, "cpu-s/op")
	b.ReportMetric(heap/float64(rules), "heap-bytes/rule")
	b.ReportMetric(hwm, "VmHWM-MB")
	b.ReportMetric(rss, "VmRSS-MB")
	b.ReportMetric(rssAfterGC, "VmRSS-after-GC-MB")
}

// BenchmarkReloadBigListMemory reloads the 1M-rule list 5 times, the file
// changing every other time, and fails if the live heap grows: each reload
// must free the snapshot it replaces.
func BenchmarkReloadBigListMemory(b *testing.B) {
	src := bigListPath(b)
	data, err := os.ReadFile(src)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "big.txt")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	e := newEngine(b, fileListConfig(path), Options{})
	ctx := context.Background()
	var heaps []uint64
	var rsses []float64
	var cpu time.Duration
	reloads := 0
	b.ResetTimer()
	for b.Loop() {
		for i := range 5 {
			if i%2 == 0 { // a changed file: new content replaces the old
				extra := []byte("reload" + strconv.Itoa(reloads) + ".example\n")
				if err := os.WriteFile(path, append(bytes.Clone(data), extra...), 0o644); err != nil {
					b.Fatal(err)
				}
			}
			c0 := cpuTime()
			if err := e.Reload(ctx); err != nil {
				b.Fatal(err)
			}
			cpu += cpuTime() - c0
			reloads++
			heaps = append(heaps, liveHeap())
			rsses = append(rsses, procStatusMB("VmRSS"))
		}
	}
	b.StopTimer()
	first, last := heaps[0], heaps[len(heaps)-1]
	b.Logf("live heap MB after each reload: %v", mbs(heaps))
	b.Logf("VmRSS MB after each reload: %v", rsses)
	if last > first+first/10+1<<20 {
		b.Errorf("live heap grew from %d to %d bytes over %d reloads", first, last, len(heaps))
	}
	b.ReportMetric(cpu.Seconds()/float64(reloads), "cpu-s/reload")
	b.ReportMetric(float64(last)-float64(first), "heap-growth-bytes")
	b.ReportMetric(rsses[len(rsses)-1]-rsses[0], "rss-growth-MB")
	b.ReportMetric(procStatusMB("VmHWM"), "VmHWM-MB")
	runtime.KeepAlive(e)
}

func mbs(v []uint64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x*10>>20) / 10
	}
	return out
}
