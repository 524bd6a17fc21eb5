package blocklist

import (
	"runtime"
	"slices"
	"unsafe"

	"github.com/miekg/dns"
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
	addrs *addrBuilder // response-IP rules
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
	scope      Scope
	kind       RuleKind
	answer     RuleAnswer
	record     dns.RR
	line       int
	reason     string // the guard's objection, if any
}

func (k *indexSink) rule(r parsedRule) {
	switch {
	case r.name == nil:
		k.addr(r) // networks have no order to keep with names
	case k.cur == nil && (k.guard == nil || r.kind != KindBlock):
		if r.record != nil { // nothing batched to keep order with
			k.insertLocal(r.name, r.scope, r.kind, r.answer, r.record, r.line)
		} else {
			k.insert(r.name, r.scope, r.kind, r.answer)
		}
	default:
		k.queue(r)
	}
}

func (k *indexSink) queue(r parsedRule) {
	if k.cur == nil {
		k.cur, k.spare = new(ruleBatch), new(ruleBatch)
		k.toGuard, k.verdicts = make(chan *ruleBatch), make(chan *ruleBatch)
		go k.guardLoop()
	}
	start := len(k.cur.names)
	k.cur.names = append(k.cur.names, r.name...)
	k.cur.rules = append(k.cur.rules, batchedRule{start: start, end: len(k.cur.names),
		scope: r.scope, kind: r.kind, answer: r.answer, record: r.record, line: r.line})
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
				r.reason = k.guard.checkBlock(unsafe.String(unsafe.SliceData(name), len(name)), r.scope)
			}
		}
		k.verdicts <- batch
	}
}

// insertBatch applies a batch's rules in order and empties it for reuse.
func (k *indexSink) insertBatch(batch *ruleBatch) {
	records := false
	for i := range batch.rules {
		br := &batch.rules[i]
		name := batch.names[br.start:br.end]
		switch {
		case br.reason != "":
			k.reject(Rule{Name: string(name), Scope: br.scope}, br.line, br.reason)
		case br.record != nil:
			records = true
			k.insertLocal(name, br.scope, br.kind, br.answer, br.record, br.line)
		default:
			k.insert(name, br.scope, br.kind, br.answer)
		}
	}
	if records {
		clear(batch.rules) // let the records go
	}
	batch.names, batch.rules = batch.names[:0], batch.rules[:0]
}

func (k *indexSink) insert(name []byte, scope Scope, kind RuleKind, answer RuleAnswer) {
	k.kept++
	for _, bit := range k.bits {
		if err := addRule(k.b, bit, name, scope, kind, answer); err != nil && k.err == nil {
			k.err = err
		}
	}
}

// insertLocal inserts a rule with one record of local data.
func (k *indexSink) insertLocal(name []byte, scope Scope, kind RuleKind, answer RuleAnswer, rr dns.RR, line int) {
	k.insert(name, scope, kind, answer)
	for i, bit := range k.bits {
		if !k.b.addLocal(bit, string(name), scope, rr) && i == 0 {
			k.conflict(Rule{Name: string(name), Scope: scope}, line)
		}
	}
}

// addr guards and adds one response-IP rule.
func (k *indexSink) addr(r parsedRule) {
	if k.guard != nil && r.kind == KindBlock {
		if reason := checkAddr(r.prefix); reason != "" {
			k.reject(Rule{Prefix: r.prefix}, r.line, reason)
			return
		}
	}
	k.kept++
	for i, bit := range k.bits {
		if !k.addrs.add(bit, r) && i == 0 {
			k.conflict(Rule{Prefix: r.prefix}, r.line)
		}
	}
}

func (k *indexSink) reject(r Rule, line int, reason string) {
	k.note(Rejected{Line: line, Text: ruleText(r), Reason: "guard: " + reason})
}

// conflict notes local data dropped because an earlier rule of the source
// gave the same trigger another action.
func (k *indexSink) conflict(r Rule, line int) {
	k.kept--
	k.note(Rejected{Line: line, Text: ruleText(r), Reason: "local data for a trigger whose first rule has another action; the first rule decides"})
}

func (k *indexSink) note(rej Rejected) {
	s := k.src
	s.guardRejN++
	if len(s.guardRej) < maxShownRejected {
		s.guardRej = append(s.guardRej, rej)
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
