package blocklist

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// A builder sized far too small grows, and one sized far too large shrinks,
// and both find every name with its rules.
func TestIndexBuilderGrowsAndShrinks(t *testing.T) {
	for _, guess := range []int{0, 1 << 16} {
		b := newIndexBuilder(guess, 0)
		const n = 5000
		for i := range n {
			if err := addRule(b, 0, fmt.Sprintf("n%d.example", i), ScopeSubtree, KindBlock, AnswerDefault); err != nil {
				t.Fatal(err)
			}
		}
		ix := b.finish()
		if ix.Len() != n || len(ix.slots) != tableSize(n) {
			t.Fatalf("guess %d: %d names in %d slots; want %d in %d", guess, ix.Len(), len(ix.slots), n, tableSize(n))
		}
		for i := range n {
			name := fmt.Sprintf("www.n%d.example", i)
			if block, _, _ := ix.Lookup(name, Masks{Block: 1}); !block.Found || block.Rule != name[4:] {
				t.Fatalf("guess %d: Lookup(%s) = %+v", guess, name, block)
			}
		}
	}
}

// A "*.name" rule for a name already indexed without one moves the entry,
// so both spellings still point into the arena.
func TestIndexWildcardAfterExact(t *testing.T) {
	ix, err := BuildIndex([][]Rule{
		{{Name: "a.example"}, {Name: "b.example"}},
		{{Name: "a.example", Scope: ScopeBelow}},
	})
	if err != nil {
		t.Fatal(err)
	}
	block, _, _ := ix.Lookup("x.a.example", Masks{Block: 0b10})
	if !block.Found || block.Rule != "*.a.example" || block.List != 1 {
		t.Errorf("Lookup(x.a.example) in list 1 = %+v", block)
	}
	block, _, _ = ix.Lookup("a.example", Masks{Block: 0b11})
	if !block.Found || block.Rule != "a.example" || block.List != 0 {
		t.Errorf("Lookup(a.example) = %+v", block)
	}
	if block, _, _ = ix.Lookup("a.example", Masks{Block: 0b10}); block.Found {
		t.Errorf("*.a.example matched a.example itself: %+v", block)
	}
}

// More than 255 distinct list combinations need wide profile ids.
func TestIndexManyProfiles(t *testing.T) {
	const lists = 10
	all := make([][]Rule, lists)
	for i := range 1 << lists {
		for l := range lists {
			if i&(1<<l) != 0 {
				all[l] = append(all[l], Rule{Name: fmt.Sprintf("c%d.example", i)})
			}
		}
	}
	ix, err := BuildIndex(all)
	if err != nil {
		t.Fatal(err)
	}
	if ix.ids.wide == nil {
		t.Fatalf("%d profiles kept in narrow ids", len(ix.profiles))
	}
	for i := range 1 << lists {
		for l := range lists {
			block, _, _ := ix.Lookup(fmt.Sprintf("c%d.example", i), Masks{Block: 1 << l})
			if block.Found != (i&(1<<l) != 0) {
				t.Fatalf("c%d.example in list %d: found = %v", i, l, block.Found)
			}
		}
	}
}

func TestIndexPasses(t *testing.T) {
	cfg := Config{Lists: map[string]ListConfig{
		"a": {Sources: []string{"x", "y"}},
		"b": {Sources: []string{"y", "z"}},
		"c": {Sources: []string{"x", "z"}},
	}}
	got := indexPasses(cfg, sortedListNames(cfg.Lists))
	want := []indexPass{{"x", []int{0, 2}}, {"y", []int{0, 1}}, {"z", []int{1, 2}}}
	if !slices.EqualFunc(got, want, passEqual) {
		t.Errorf("consistent orders: passes %v; want %v", got, want)
	}
	// Now b wants z before y, while the order of first use puts y first:
	// one parse per source would feed b's rules out of order, so each list
	// gets its own passes.
	cfg.Lists["b"] = ListConfig{Sources: []string{"z", "y"}}
	got = indexPasses(cfg, sortedListNames(cfg.Lists))
	want = []indexPass{{"x", []int{0}}, {"y", []int{0}}, {"z", []int{1}}, {"y", []int{1}}, {"x", []int{2}}, {"z", []int{2}}}
	if !slices.EqualFunc(got, want, passEqual) {
		t.Errorf("conflicting orders: passes %v; want %v", got, want)
	}
}

func passEqual(a, b indexPass) bool { return a.spec == b.spec && slices.Equal(a.bits, b.bits) }

func TestReadAllSized(t *testing.T) {
	text := strings.Repeat("line.example\n", 1000)
	for _, expected := range []int64{-1, 0, 10, int64(len(text)), 1 << 20} {
		got, err := readAllSized(strings.NewReader(text), expected)
		if err != nil || string(got) != text {
			t.Errorf("expected size %d: got %d bytes, %v", expected, len(got), err)
		}
	}
}

// The guard runs a batch behind the parser (indexSink): over several
// batches, every rule must still land, in order, with guard rejections
// reported at their own lines and exceptions applied.
func TestGuardedBuildOverManyBatches(t *testing.T) {
	var text strings.Builder
	const n = 3*guardBatchRules + 17
	for i := 1; i <= n; i++ {
		switch {
		case i%1000 == 0:
			text.WriteString("||co.uk^\n") // a public suffix: the guard drops it
		case i == 2*guardBatchRules+5:
			text.WriteString("@@||name7.example^\n") // an exception deep in the file
		default:
			fmt.Fprintf(&text, "||name%d.example^\n", i)
		}
	}
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Lists = map[string]ListConfig{"big": {Sources: []string{tempFile(t, dir, "big.txt", text.String())}}}
	cfg.Groups[0].Block = []string{"big"}
	e := newEngine(t, cfg, Options{BaseDir: dir})

	for _, i := range []int{1, 999, 1001, guardBatchRules, guardBatchRules + 1, 2 * guardBatchRules, n} {
		expect(t, e, "10.0.0.1", fmt.Sprintf("x.name%d.example", i), Block, "big")
	}
	if v := e.Decide(addr("10.0.0.1"), "name7.example"); v.Action == Block {
		t.Errorf("name7.example: %+v; the exception on line %d should allow it", v, 2*guardBatchRules+5)
	}
	expect(t, e, "10.0.0.1", "bbc.co.uk", Allow, "")

	src := listStatus(t, e, "big").Sources[0]
	if want := n/1000 + 0; src.Rejected != want {
		t.Errorf("rejected %d, want %d (one per public suffix line)", src.Rejected, want)
	}
	for k, r := range src.RejectedLines {
		if r.Line != (k+1)*1000 || !strings.Contains(r.Reason, "public suffix") {
			t.Errorf("rejected line %d: %+v, want line %d for a public suffix", k, r, (k+1)*1000)
		}
	}
}
