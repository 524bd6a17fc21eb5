package rpzprimary

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const queenslandNames = 1_500_000

func scaleName(i int) string { return fmt.Sprintf("host%07d.threat-%03d.example", i, i%997) }

func writeScaleList(t testing.TB, path string, from, to int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := from; i < to; i++ {
		fmt.Fprintln(w, scaleName(i))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// countTransfer runs a transfer and counts its records.
func countTransfer(t testing.TB, addr string, q *dns.Msg) int {
	t.Helper()
	tr := &dns.Transfer{TsigSecret: map[string]string{keyName + ".": secret}, ReadTimeout: time.Minute}
	ch, err := tr.In(signed(q), addr)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for env := range ch {
		if env.Error != nil {
			t.Fatalf("transfer: %v", env.Error)
		}
		n += len(env.RR)
	}
	return n
}

// TestPrimaryQueenslandScale measures dnsward serving a 1.5M-name policy
// (3M RPZ records: each name and *.name): building the zone, the AXFR
// out, and an IXFR of 1,000 changed names. Run with DNSWARD_XFR_SCALE=1.
func TestPrimaryQueenslandScale(t *testing.T) {
	if os.Getenv("DNSWARD_XFR_SCALE") == "" {
		t.Skip("set DNSWARD_XFR_SCALE=1 to measure a 1.5M-name RPZ primary")
	}
	f := newPolicy(t, "", "")
	writeScaleList(t, filepath.Join(f.dir, "block.txt"), 0, queenslandNames)
	if err := f.engine.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.HeapInuse
	start, cpu := time.Now(), cpuTime()
	s, addr := startPrimary(t, f, nil)
	runtime.ReadMemStats(&ms)
	t.Logf("zone built from the policy: %d records in %s wall, %s CPU; heap in use +%d MiB",
		s.Zones()[0].Records, time.Since(start).Round(time.Millisecond), (cpuTime() - cpu).Round(time.Millisecond), (ms.HeapInuse-before)>>20)

	var q dns.Msg
	q.SetAxfr("rpz.test.")
	start, cpu = time.Now(), cpuTime()
	n := countTransfer(t, addr, &q)
	t.Logf("AXFR out of %d records: %s wall, %s CPU (server and client in one process)", n, time.Since(start).Round(time.Millisecond), (cpuTime() - cpu).Round(time.Millisecond))

	old := s.Zones()[0].Serial
	writeScaleList(t, filepath.Join(f.dir, "block.txt"), 500, queenslandNames+500)
	if err := f.engine.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for s.Zones()[0].Serial == old && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	q.SetIxfr("rpz.test.", old, "localhost.", "hostmaster.rpz.test.")
	start, cpu = time.Now(), cpuTime()
	n = countTransfer(t, addr, &q)
	t.Logf("IXFR out of 1,000 changed names: %d records in %s wall, %s CPU", n, time.Since(start).Round(time.Millisecond), (cpuTime() - cpu).Round(time.Millisecond))
	if n != 4+2000 {
		t.Errorf("IXFR has %d records; want 4 SOA and 2,000 changes (1,000 names, each name and *.name)", n)
	}
}
