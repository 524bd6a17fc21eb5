package blocklist

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dnsward/dnsward/internal/dnstest"
)

// queenslandRecords is the size of Queensland's protective-DNS RPZ.
const queenslandRecords = 1_500_000

// scaleName is the i-th synthetic trigger name, shaped like feed entries.
func scaleName(i int) string { return fmt.Sprintf("host%07d.threat-%03d.example", i, i%997) }

func writeScaleZone(t testing.TB, path, zone string, serial, from, to int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintf(w, "$ORIGIN %s.\n$TTL 60\n@ SOA ns.%s. admin.%s. %d 3600 60 604800 60\n@ NS localhost.\n", zone, zone, zone, serial)
	for i := from; i < to; i++ {
		fmt.Fprintf(w, "%s CNAME .\n", scaleName(i))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// peakSampler records the highest heap in use while it runs.
type peakSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func samplePeak() *peakSampler {
	p := &peakSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > p.peak.Load() {
				p.peak.Store(ms.HeapInuse)
			}
			select {
			case <-p.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return p
}

func (p *peakSampler) finish() uint64 {
	close(p.stop)
	<-p.done
	return p.peak.Load()
}

// resetPeakRSS makes /proc/self/status's VmHWM start again from the
// current RSS, so it measures only what follows.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// TestXFRQueenslandScale measures a 1.5M-record RPZ served by knotd: the
// first AXFR (transfer, parse, index build) with its peak heap and RSS,
// then an IXFR of 1,000 changes. It takes tens of seconds and ~1 GB in
// knotd, so it runs only with DNSWARD_XFR_SCALE=1:
//
//	DNSWARD_XFR_SCALE=1 go test -run XFRQueenslandScale -v ./blocklist
func TestXFRQueenslandScale(t *testing.T) {
	if os.Getenv("DNSWARD_XFR_SCALE") == "" {
		t.Skip("set DNSWARD_XFR_SCALE=1 to measure a 1.5M-record zone transfer")
	}
	const zone = "rpz.test"
	k := dnstest.StartKnotZone(t, dnstest.KnotZone{Name: zone, WriteZone: func(path string) { writeScaleZone(t, path, zone, 1, 0, queenslandRecords) }})
	dir := t.TempDir()

	runtime.GC()
	resetPeakRSS()
	peak := samplePeak()
	start, cpu := time.Now(), cpuTime()
	e := newEngine(t, knotConfig(k), Options{StateDir: dir})
	took, cpu := time.Since(start), cpuTime()-cpu
	heap := peak.finish()
	z := zoneOf(t, e, "rpz")
	t.Logf("AXFR of %d records: %s wall, %s CPU to enforce (transfer, parse twice, index); peak heap in use %d MiB, peak RSS %s",
		z.Records, took.Round(time.Millisecond), cpu.Round(time.Millisecond), heap>>20, peakRSS())
	expect(t, e, "10.0.0.1", scaleName(123456), Block, "rpz")

	// 1,000 changes: 500 names removed, 500 added, applied by knotd as a
	// zone-file difference (so it journals them for IXFR).
	writeScaleZone(t, k.ZoneFile(), zone, 2, 500, queenslandRecords+500)
	k.Knotc("zone-reload", zone)
	k.WaitServing(2, 2*time.Minute)
	runtime.GC()
	resetPeakRSS()
	peak = samplePeak()
	start, cpu = time.Now(), cpuTime()
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	took, cpu = time.Since(start), cpuTime()-cpu
	heap = peak.finish()
	z = zoneOf(t, e, "rpz")
	if z.LastTransfer != "ixfr" || z.Serial != 2 {
		t.Fatalf("zone %+v; want serial 2 by IXFR", z)
	}
	t.Logf("IXFR of 1,000 changes: %s wall, %s CPU to enforce (SOA check, IXFR, apply to the kept text, parse twice, index); peak heap %d MiB, peak RSS %s",
		took.Round(time.Millisecond), cpu.Round(time.Millisecond), heap>>20, peakRSS())
	expect(t, e, "10.0.0.1", scaleName(queenslandRecords+10), Block, "rpz")
	expect(t, e, "10.0.0.1", scaleName(10), Allow, "")
}
