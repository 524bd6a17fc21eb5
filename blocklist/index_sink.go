package blocklist

import (
	"runtime"
	"slices"
	"unsafe"
)

// indexSink streams one source's parsed rules through the guard into the
// index builder, once for each list bit the source feeds.
//
// The guard's public-suffix lookup costs about as much as parsing and
// inserting together, so when a guard applies it runs on a second
// goroutine, a batch behind: the sink copies rules into a batch, hands it
// to the guard, and inserts the batch before it, whose verdicts are in.
// Rules are inserted in source order either way.
type indexSink struct {
	b     *indexBuilder
	bits  []int
	guard *Guard // nil for sources only used to allow
	src   *source
	kept  int // rules that passed the guard
	err   error

	cur      *ruleBatch
	spare    *ruleBatch
	toGuard  chan *ruleBatch
	verdicts chan *ruleBatch
	inFlight bool
	guarded  int // rules handed to the guard since the last collection
}

// guardBatchRules balances the hand-over cost against memory.
const guardBatchRules = 4096

// collectEveryRules: the guard's public-suffix lookup allocates about 48
// bytes per rule that are garbage at once (golang.org/x/net/publicsuffix
// first tries the name as an IP address, and the failed parse allocates its
// error). Left to the collector's pacing, a 1M-rule build grows the heap by
// that garbage, 12 MB of peak memory and thousands of page faults; a
// collection every 256k guarded rules keeps it small for a few ms of CPU.
const collectEveryRules = 1 << 18

// ruleBatch is rules copied out of the parser's buffer, with the guard's
// verdicts once it has seen them.
type ruleBatch struct {
	names []byte
	rules []batchedRule
}

type batchedRule struct {
	start, end int
	onlyBelow  bool
	kind       RuleKind
	answer     RuleAnswer
	line       int
	reason     string // the guard's objection, if any
}

func (k *indexSink) rule(name []byte, onlyBelow bool, kind RuleKind, answer RuleAnswer, line int) {
	if k.cur == nil && (k.guard == nil || kind != KindBlock) {
		k.insert(name, onlyBelow, kind, answer) // nothing batched to keep order with
		return
	}
	k.queue(name, onlyBelow, kind, answer, line)
}

func (k *indexSink) queue(name []byte, onlyBelow bool, kind RuleKind, answer RuleAnswer, line int) {
	if k.cur == nil {
		k.cur, k.spare = new(ruleBatch), new(ruleBatch)
		k.toGuard, k.verdicts = make(chan *ruleBatch), make(chan *ruleBatch)
		go k.guardLoop()
	}
	start := len(k.cur.names)
	k.cur.names = append(k.cur.names, name...)
	k.cur.rules = append(k.cur.rules, batchedRule{start: start, end: len(k.cur.names),
		onlyBelow: onlyBelow, kind: kind, answer: answer, line: line})
	if len(k.cur.rules) == guardBatchRules {
		k.handOff()
	}
}

// handOff collects the batch in the guard's hands, if any, sends it the
// current one, and inserts the collected one meanwhile.
func (k *indexSink) handOff() {
	var done *ruleBatch
	if k.inFlight {
		done = <-k.verdicts
	}
	k.toGuard <- k.cur
	k.inFlight = true
	if k.guarded += len(k.cur.rules); k.guarded >= collectEveryRules {
		k.guarded = 0
		runtime.GC()
	}
	if done == nil {
		done = k.spare
	}
	k.insertBatch(done)
	k.cur, k.spare = done, nil
}

// finish inserts whatever is still batched and stops the guard goroutine.
// The sink's counts and error are final after it.
func (k *indexSink) finish() {
	if k.cur == nil {
		return
	}
	if k.inFlight {
		k.insertBatch(<-k.verdicts)
		k.inFlight = false
	}
	if len(k.cur.rules) > 0 {
		k.toGuard <- k.cur
		k.insertBatch(<-k.verdicts)
	}
	close(k.toGuard)
}

func (k *indexSink) guardLoop() {
	for batch := range k.toGuard {
		for i := range batch.rules {
			r := &batch.rules[i]
			if k.guard != nil && r.kind == KindBlock {
				name := batch.names[r.start:r.end]
				// The guard keeps no reference to the name.
				r.reason = k.guard.checkBlock(unsafe.String(unsafe.SliceData(name), len(name)), r.onlyBelow)
			}
		}
		k.verdicts <- batch
	}
}

// insertBatch applies a batch's rules in order and empties it for reuse.
func (k *indexSink) insertBatch(batch *ruleBatch) {
	for _, r := range batch.rules {
		name := batch.names[r.start:r.end]
		if r.reason != "" {
			k.reject(name, r.onlyBelow, r.line, r.reason)
			continue
		}
		k.insert(name, r.onlyBelow, r.kind, r.answer)
	}
	batch.names, batch.rules = batch.names[:0], batch.rules[:0]
}

func (k *indexSink) insert(name []byte, onlyBelow bool, kind RuleKind, answer RuleAnswer) {
	k.kept++
	for _, bit := range k.bits {
		if err := addRule(k.b, bit, name, onlyBelow, kind, answer); err != nil && k.err == nil {
			k.err = err
		}
	}
}

func (k *indexSink) reject(name []byte, onlyBelow bool, line int, reason string) {
	s := k.src
	s.guardRejN++
	if len(s.guardRej) < maxShownRejected {
		r := Rule{Name: string(name), OnlyBelow: onlyBelow}
		s.guardRej = append(s.guardRej, Rejected{Line: line, Text: ruleText(r), Reason: "guard: " + reason})
	}
}

// indexPass is one parse of a source, feeding the list bits that use it.
type indexPass struct {
	spec string
	bits []int
}

// indexPasses plans the build: each source is parsed once, in order of
// first use, feeding every list that uses it. A list's first block rule for
// a name decides the answer, so each list must see its sources in config
// order; when lists share sources in conflicting orders, every list gets
// its own passes instead.
func indexPasses(cfg Config, names []string) []indexPass {
	order := make(map[string]int)
	var passes []indexPass
	consistent := true
	for bit, name := range names {
		last := -1
		for _, spec := range cfg.Lists[name].Sources {
			i, ok := order[spec]
			if !ok {
				i = len(passes)
				order[spec] = i
				passes = append(passes, indexPass{spec: spec})
			}
			if !slices.Contains(passes[i].bits, bit) {
				passes[i].bits = append(passes[i].bits, bit)
			}
			consistent = consistent && i >= last
			last = max(last, i)
		}
	}
	if consistent {
		return passes
	}
	passes = passes[:0]
	for bit, name := range names {
		var done []string
		for _, spec := range cfg.Lists[name].Sources {
			if !slices.Contains(done, spec) {
				done = append(done, spec)
				passes = append(passes, indexPass{spec: spec, bits: []int{bit}})
			}
		}
	}
	return passes
}
