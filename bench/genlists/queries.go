package main

import (
	"bufio"
	"fmt"
	"math/rand"
)

// The allowed zone: bench/upstream answers every name, and no rule covers it.
const allowedZone = "bench.test"

func cachedName(i int) string { return fmt.Sprintf("host%d.%s", i, allowedZone) }

// writeCached writes n distinct allowed A queries: the warm set.
func writeCached(path string, n int) error {
	return writeWith(path, func(w *bufio.Writer) error {
		for i := 0; i < n; i++ {
			fmt.Fprintf(w, "%s A\n", cachedName(i))
		}
		return nil
	})
}

// blockedQuery is a listed name or a name below it, asking A or AAAA.
func blockedQuery(rules []string, rng *rand.Rand) string {
	name := rules[rng.Intn(len(rules))]
	if rng.Intn(2) == 0 {
		name = fmt.Sprintf("q%d.%s", rng.Intn(1000), name)
	}
	qtype := "A"
	if rng.Intn(4) == 0 {
		qtype = "AAAA"
	}
	return name + " " + qtype
}

func writeBlocked(path string, rules []string, n int, seed int64) error {
	rng := rand.New(rand.NewSource(seed + 1))
	return writeWith(path, func(w *bufio.Writer) error {
		for i := 0; i < n; i++ {
			w.WriteString(blockedQuery(rules, rng))
			w.WriteByte('\n')
		}
		return nil
	})
}

// writeMixed writes n lines: nine cached names for each blocked one.
func writeMixed(path string, rules []string, cached, n int, seed int64) error {
	rng := rand.New(rand.NewSource(seed + 2))
	return writeWith(path, func(w *bufio.Writer) error {
		for i := 0; i < n; i++ {
			if i%10 == 9 {
				w.WriteString(blockedQuery(rules, rng))
				w.WriteByte('\n')
				continue
			}
			fmt.Fprintf(w, "%s A\n", cachedName(rng.Intn(cached)))
		}
		return nil
	})
}

// writeMiss writes n names that never repeat within the file, so every query
// is a cache miss that goes upstream (until dnsperf wraps around the file).
func writeMiss(path string, n int, seed int64) error {
	rng := rand.New(rand.NewSource(seed + 3))
	return writeWith(path, func(w *bufio.Writer) error {
		for i := 0; i < n; i++ {
			fmt.Fprintf(w, "m%d-%x.%s A\n", i, rng.Uint32(), allowedZone)
		}
		return nil
	})
}
