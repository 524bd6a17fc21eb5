package blocklist

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// BenchmarkEngineReload1M measures a full reload of a 1,000,000-rule file
// list and the engine's steady-state heap (raw last-good content + index)
// per rule after it.
func BenchmarkEngineReload1M(b *testing.B) {
	const n = 1_000_000
	dir := b.TempDir()
	f, err := os.Create(filepath.Join(dir, "big.txt"))
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		fmt.Fprintf(f, "host%d.tracker%d.example\n", i, i%9973)
	}
	f.Close()
	cfg := fileListConfig("big.txt")

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	e := newEngine(b, cfg, Options{BaseDir: dir})
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	heapPerRule := float64(after.HeapAlloc-before.HeapAlloc) / n

	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if err := e.Reload(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(heapPerRule, "heap-bytes/rule")
	runtime.KeepAlive(e)
}
