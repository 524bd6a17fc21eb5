package blocklist

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// sharedListsDir holds the big real lists; they are not copied into the
// repository.
var sharedListsDir = filepath.Join("..", "..", "shared", "data", "lists")

// millionRuleLists returns the phishing and tracking lists plus synthetic
// names up to 1,000,000 rules, as three lists.
func millionRuleLists(b *testing.B) [][]Rule {
	b.Helper()
	var lists [][]Rule
	total := 0
	for _, name := range []string{"blocklistproject-phishing.domains", "blocklistproject-tracking.domains"} {
		path := filepath.Join(sharedListsDir, name)
		if _, err := os.Stat(path); err != nil {
			b.Skipf("%s not available: %v", path, err)
		}
		p := parseTestFile(b, path)
		lists = append(lists, p.Rules)
		total += len(p.Rules)
	}
	synthetic := make([]Rule, 0, 1_000_000-total)
	tlds := []string{"com", "net", "org", "io", "xyz", "info", "co.uk", "de"}
	for i := 0; total < 1_000_000; i++ {
		// ~22 bytes, like the real entries: "3f9a1c2e.trk417.net".
		h := uint32(i) * 2654435761
		name := strconv.FormatUint(uint64(h), 16) + ".trk" + strconv.Itoa(i%1000) + "." + tlds[i%len(tlds)]
		synthetic = append(synthetic, Rule{Name: name, Line: i + 1})
		total++
	}
	return append(lists, synthetic)
}

func BenchmarkBuild1M(b *testing.B) {
	lists := millionRuleLists(b)
	rules := 0
	for _, l := range lists {
		rules += len(l)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var ix *Index
	start := time.Now()
	b.ResetTimer()
	for range b.N {
		var err error
		if ix, err = BuildIndex(lists); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	elapsed := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(ix)
	runtime.KeepAlive(lists)
	b.ReportMetric(elapsed.Seconds()/float64(b.N), "s/build")
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(rules), "heap-bytes/rule")
	b.ReportMetric(float64(rules), "rules")
	b.ReportMetric(float64(ix.Len()), "names")
}

func BenchmarkLookup(b *testing.B) {
	lists := [][]Rule{parseTestFile(b, "testdata/blocklistproject-tiktok.domains").Rules}
	if _, err := os.Stat(filepath.Join(sharedListsDir, "blocklistproject-phishing.domains")); err == nil {
		lists = append(lists, millionRuleLists(b)...)
	}
	ix, err := BuildIndex(lists)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("index of %d names in %d lists", ix.Len(), len(lists))
	m := Masks{Block: 0b0011, Allow: 0b0100, Monitor: 0b1000}
	for _, tc := range []struct{ name, query string }{
		{"hit", "v16-webapp.tiktok.com."},
		{"hit-mixed-case", "WWW.TikTok.COM."},
		{"miss", "www.example.org."},
		{"miss-deep", "a.b.c.d.e.f.g.h.example.org."},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				ix.Lookup(tc.query, m)
			}
		})
	}
	b.Run("hit-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				ix.Lookup("v16-webapp.tiktok.com.", m)
			}
		})
	})
}

func BenchmarkParsePhishing(b *testing.B) {
	path := filepath.Join(sharedListsDir, "blocklistproject-phishing.domains")
	data, err := os.ReadFile(path)
	if err != nil {
		b.Skipf("%s not available: %v", path, err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for range b.N {
		if _, err := Parse(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
