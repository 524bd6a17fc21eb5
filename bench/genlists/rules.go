package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
)

// realListFiles are read from -real, in this order.
var realListFiles = []string{"blocklistproject-phishing.domains", "blocklistproject-tracking.domains"}

// words name the synthetic registrable domains, so rules spread over many
// different domains and depths as real lists do.
var words = []string{
	"alpha", "bravo", "cargo", "delta", "ember", "falcon", "garnet", "harbor", "indigo", "jasper",
	"kestrel", "lumen", "marble", "nectar", "onyx", "pepper", "quartz", "raven", "saffron", "tundra",
	"umber", "velvet", "willow", "xenon", "yonder", "zephyr", "adtrack", "pixel", "metric", "beacon",
}

// syntheticTLDs are reserved for documentation (RFC 2606, 6761),
// so synthetic rules can never match a real site.
var syntheticTLDs = []string{"example", "example.com", "example.net", "example.org"}

// buildRules returns exactly n distinct rules: the real lists first (when
// present), then synthetic names. realCount says how many are real.
func buildRules(realDir string, n int, seed int64) (rules []string, realCount int, err error) {
	seen := make(map[string]struct{}, n)
	add := func(name string) bool {
		if _, dup := seen[name]; dup || len(rules) >= n {
			return false
		}
		seen[name] = struct{}{}
		rules = append(rules, name)
		return true
	}
	for _, f := range realListFiles {
		names, err := readDomains(filepath.Join(realDir, f))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		for _, name := range names {
			add(name)
		}
	}
	realCount = len(rules)
	rng := rand.New(rand.NewSource(seed))
	for i := 0; len(rules) < n; i++ {
		add(syntheticRule(i, rng))
	}
	return rules, realCount, nil
}

// syntheticRule alternates whole registrable domains (word123.example) and
// hosts below them (blk-9.word123.example.net).
func syntheticRule(i int, rng *rand.Rand) string {
	reg := fmt.Sprintf("%s%d.%s", words[rng.Intn(len(words))], rng.Intn(200_000), syntheticTLDs[rng.Intn(len(syntheticTLDs))])
	if i%2 == 0 {
		return reg
	}
	return fmt.Sprintf("blk-%d.%s", i, reg)
}

// readDomains reads a plain-domain list, skipping comments, blank lines and
// anything both resolvers might not take as a zone name.
func readDomains(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		name := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(line)), ".")
		if usableRule(name) {
			names = append(names, name)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return names, nil
}

// usableRule keeps names with at least two labels of letters, digits, '-'
// and '_', none empty or over 63 bytes, and never under the benchmark's own
// allowed zone.
func usableRule(name string) bool {
	if len(name) == 0 || len(name) > 253 || !strings.Contains(name, ".") {
		return false
	}
	if name == "bench.test" || strings.HasSuffix(name, ".bench.test") {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if len(label) == 0 || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func writeLines(path string, lines []string) error {
	return writeWith(path, func(w *bufio.Writer) error {
		for _, l := range lines {
			w.WriteString(l)
			w.WriteByte('\n')
		}
		return nil
	})
}

// writeWith buffers writes to path and reports the first error of any step.
func writeWith(path string, fill func(w *bufio.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := fill(w); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
