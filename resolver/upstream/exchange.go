package upstream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnswire"
)

// exchange is one query on its way through the upstreams: it keeps up to
// width attempts in flight (two for parallel_best, else one), starts the
// next upstream in order whenever one fails, and reports the first good
// answer — or, when all fail, an upstream's own SERVFAIL/REFUSED answer
// or an error — to done exactly once. Attempts report from whatever
// goroutine their transport runs on (the UDP poller, a stream goroutine).
type exchange struct {
	f      *Forwarder
	wire   []byte // the query with ID 0
	qlen   int    // length of its question section
	order  []*upstream
	width  int
	budget time.Time // no attempt runs past it
	done   func(*dns.Msg, error)

	poller *udpPoller // where UDP attempts wait; a Lane's when started on one

	mu       sync.Mutex
	next     int
	running  []*attempt
	fails    failures
	finished bool
}

// attempt is one try at one upstream. The transport runs it and calls
// finish once, unless the exchange cancels it first.
type attempt struct {
	ex       *exchange
	up       *upstream
	started  time.Time
	deadline time.Time

	mu     sync.Mutex
	cancel func()      // set by the transport; stops the attempt
	over   bool        // finished or cancelled
	resent atomic.Bool // the UDP query went out again: which copy was answered is unknown
	// poller is where a UDP attempt waits (the forwarder's, or a Lane);
	// the exchange's next attempt after this one goes there too, so a
	// lane's exchanges stay on its owner's thread.
	poller *udpPoller
}

// nextLocked prepares an attempt at the next upstream in order; the
// caller starts it once ex.mu is released, since a transport may report
// at once (a socket error) and reporting takes ex.mu.
func (ex *exchange) nextLocked() *attempt {
	u := ex.order[ex.next]
	ex.next++
	now := time.Now()
	a := &attempt{ex: ex, up: u, started: now, deadline: now.Add(ex.f.timeout), poller: ex.poller}
	if a.deadline.After(ex.budget) {
		a.deadline = ex.budget
	}
	ex.running = append(ex.running, a)
	return a
}

// begin starts the first attempts: up to width of the upstreams in order.
func (ex *exchange) begin(healthy int) {
	ex.mu.Lock()
	var first []*attempt
	for len(first) < max(1, min(ex.width, healthy)) && ex.canLaunchLocked() {
		first = append(first, ex.nextLocked())
	}
	ex.mu.Unlock()
	for _, a := range first {
		a.up.tr.start(a)
	}
}

// canLaunchLocked reports whether another upstream may be tried.
func (ex *exchange) canLaunchLocked() bool {
	return !ex.finished && ex.next < len(ex.order) && time.Now().Before(ex.budget)
}

// onCancel registers how to stop the attempt. If the exchange ended
// before the transport got this far, stop runs at once.
func (a *attempt) onCancel(stop func()) {
	a.mu.Lock()
	over := a.over
	a.cancel = stop
	a.mu.Unlock()
	if over {
		stop()
	}
}

// finish is the transport's report: msg is the validated reply, or err
// says why there is none. cancelled is true when the attempt was stopped
// from outside (it then says nothing about the upstream).
func (a *attempt) finish(msg *dns.Msg, err error, cancelled bool) {
	a.mu.Lock()
	if a.over {
		a.mu.Unlock()
		return
	}
	a.over = true
	a.mu.Unlock()
	if cancelled {
		return
	}
	r := classify(msg, err)
	if r.err != nil {
		r.err = fmt.Errorf("%s: %w", a.up.name, r.err)
	}
	a.ex.f.account(a, r)
	a.ex.result(a, r)
}

// stop cancels an attempt that has not finished.
func (a *attempt) stop() {
	a.mu.Lock()
	if a.over {
		a.mu.Unlock()
		return
	}
	a.over = true
	stop := a.cancel
	a.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// result takes one attempt's outcome and decides whether the exchange is over.
func (ex *exchange) result(a *attempt, r result) {
	ex.mu.Lock()
	if ex.finished {
		ex.mu.Unlock()
		return
	}
	ex.removeLocked(a)
	if r.outcome == OutcomeSuccess {
		ex.finishLocked(r.msg, nil)
		return
	}
	ex.fails.add(r)
	if ex.canLaunchLocked() {
		ex.poller = a.poller // nil after a stream attempt: the forwarder's poller
		next := ex.nextLocked()
		ex.mu.Unlock()
		next.up.tr.start(next)
		return
	}
	if len(ex.running) > 0 {
		ex.mu.Unlock()
		return // a racer may still answer
	}
	msg, err := ex.fails.result()
	ex.finishLocked(msg, err)
}

func (ex *exchange) removeLocked(a *attempt) {
	for i, b := range ex.running {
		if b == a {
			ex.running = append(ex.running[:i], ex.running[i+1:]...)
			return
		}
	}
}

// finishLocked ends the exchange, stops the attempts still running and
// reports; it releases ex.mu.
func (ex *exchange) finishLocked(msg *dns.Msg, err error) {
	ex.finished = true
	losers := ex.running
	ex.running = nil
	ex.mu.Unlock()
	for _, a := range losers {
		a.stop()
	}
	ex.done(msg, err)
}

// abort ends the exchange early with err (the caller gave up).
func (ex *exchange) abort(err error) {
	ex.mu.Lock()
	if ex.finished {
		ex.mu.Unlock()
		return
	}
	ex.finishLocked(nil, err)
}

// result is one attempt's classified outcome.
type result struct {
	msg     *dns.Msg
	err     error
	outcome string
}

// classify decides what a reply (or its absence) means: the one place
// where an upstream's answer is judged good, failed or bad.
func classify(msg *dns.Msg, err error) result {
	switch {
	case err == nil && (msg.Rcode == dns.RcodeFormatError || msg.Rcode == dns.RcodeNotImplemented):
		return result{err: fmt.Errorf("%w: rcode %s", errBadResponse, dns.RcodeToString[msg.Rcode]), outcome: OutcomeBadResponse}
	case err == nil && (msg.Rcode == dns.RcodeServerFailure || msg.Rcode == dns.RcodeRefused):
		return result{msg: msg, err: fmt.Errorf("rcode %s", dns.RcodeToString[msg.Rcode]), outcome: OutcomeServfail}
	case err == nil:
		return result{msg: msg, outcome: OutcomeSuccess}
	case errors.Is(err, errBadResponse):
		return result{err: err, outcome: OutcomeBadResponse}
	case isTimeout(err):
		return result{err: err, outcome: OutcomeTimeout}
	default:
		return result{err: err, outcome: OutcomeError}
	}
}

// failures collects what went wrong so the caller gets one clear error, or
// an upstream's own SERVFAIL/REFUSED answer when there is one.
type failures struct {
	errs  []error
	reply *dns.Msg
}

func (fs *failures) add(r result) {
	if r.msg != nil && fs.reply == nil {
		fs.reply = r.msg
	}
	if r.err != nil {
		fs.errs = append(fs.errs, r.err)
	}
}

func (fs *failures) result() (*dns.Msg, error) {
	if fs.reply != nil {
		return fs.reply, nil
	}
	if len(fs.errs) == 0 {
		return nil, errors.New("upstream: no upstream could be tried before the deadline")
	}
	return nil, fmt.Errorf("upstream: every upstream failed: %w", errorList(fs.errs))
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// errorList is errors.Join on one line, which reads better in logs.
type errorList []error

func (l errorList) Unwrap() []error { return l }

func (l errorList) Error() string {
	parts := make([]string, len(l))
	for i, err := range l {
		parts[i] = err.Error()
	}
	return strings.Join(parts, "; ")
}

// Below: the query every transport sends, and the one check of every
// reply (matchesQuery, parseReply), whichever transport brought it.

// errBadResponse marks a reply that is malformed or answers another query.
var errBadResponse = errors.New("bad response")

// packQuery returns q in wire form with ID 0 (each attempt sets its own):
// RD set, CD as asked, and an OPT record offering dnswire.UDPSize with the
// DO bit. It also returns the question section's length, for matchesQuery.
func packQuery(q Query) ([]byte, int, error) {
	buf := make([]byte, dnswire.HeaderLen, dnswire.HeaderLen+len(q.Name)+2+4+11)
	flags := uint16(dnswire.FlagRD)
	if q.CD {
		flags |= dnswire.FlagCD
	}
	binary.BigEndian.PutUint16(buf[2:], flags)
	binary.BigEndian.PutUint16(buf[4:], 1) // QDCOUNT
	buf = buf[:cap(buf)]
	end, err := dns.PackDomainName(q.Name, buf, dnswire.HeaderLen, nil, false)
	if err != nil {
		return nil, 0, fmt.Errorf("packing query for %q: %w", q.Name, err)
	}
	buf = buf[:end]
	buf = binary.BigEndian.AppendUint16(buf, q.Type)
	buf = binary.BigEndian.AppendUint16(buf, q.Class)
	qlen := len(buf) - dnswire.HeaderLen
	buf, _ = dnswire.AppendOPT(buf, q.DO, 0)
	return buf, qlen, nil
}

// withID returns a copy of wire carrying a fresh random ID.
func withID(wire []byte) ([]byte, uint16) {
	id := randomID()
	out := make([]byte, len(wire))
	copy(out, wire)
	binary.BigEndian.PutUint16(out, id)
	return out, id
}

// matchesQuery is the cheap check that a datagram is the reply to the
// query sent with this ID and question section (wire is that query):
// anything else may be spoofed and is ignored while the real reply is
// awaited. Some servers drop the question from error replies.
func matchesQuery(reply, wire []byte, id uint16, qlen int) bool {
	h := dnswire.HeaderLen
	if len(reply) < h || binary.BigEndian.Uint16(reply) != id || reply[2]&0x80 == 0 {
		return false
	}
	switch binary.BigEndian.Uint16(reply[4:]) {
	case 0:
		rcode := reply[3] & 0xF
		return rcode != dns.RcodeSuccess && rcode != dns.RcodeNameError
	case 1:
		return len(reply) >= h+qlen && dnswire.EqualFold(reply[h:h+qlen], wire[h:h+qlen])
	}
	return false
}

// parseReply checks that buf answers the query (see matchesQuery),
// unpacks it and checks its records; anything else is errBadResponse.
func parseReply(buf, wire []byte, id uint16, qlen int) (*dns.Msg, error) {
	if !matchesQuery(buf, wire, id, qlen) {
		return nil, fmt.Errorf("%w: not a reply to this query (ID, QR bit or question differ)", errBadResponse)
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadResponse, err)
	}
	if err := CheckRecordData(r); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadResponse, err)
	}
	return r, nil
}

// CheckRecordData rejects an unpacked message holding a record whose data
// is incomplete. miekg/dns accepts record data that stops early and leaves
// the missing fields zero; packed again, such a record can become bytes
// that no longer parse (an SOA cut after its first name gets an empty
// second name followed by five numbers), so passing it on or caching it
// would hand clients a broken packet. Unbound calls such replies FORMERR.
func CheckRecordData(m *dns.Msg) error {
	for _, section := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range section {
			if !completeData(rr) {
				h := rr.Header()
				return fmt.Errorf("%s record for %q has incomplete data", dns.TypeToString[h.Rrtype], h.Name)
			}
		}
	}
	return nil
}

// completeData reports whether rr's data was whole on the wire.
func completeData(rr dns.RR) bool {
	switch rr.(type) {
	case *dns.OPT, *dns.NULL, *dns.APL, *dns.RFC3597:
		// Opaque or list data, which may be empty: OPT without options
		// (RFC 6891), NULL (RFC 1035), APL with no items (RFC 3123), and
		// types we do not know (RFC 3597).
		return true
	}
	if rr.Header().Rdlength == 0 {
		return false // every other type needs some data
	}
	switch rr.(type) {
	case *dns.A, *dns.AAAA, *dns.CNAME, *dns.NS, *dns.PTR, *dns.DNAME, *dns.TXT:
		// Fixed-size data fails to unpack when short; one name or a run
		// of strings cannot be cut between fields. Most replies hold only
		// these, so they skip the round trip below.
		return true
	}
	// Anything else must survive being packed on its own and read back.
	buf := make([]byte, dns.Len(rr)+1)
	n, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return false
	}
	_, end, err := dns.UnpackRR(buf[:n], 0)
	return err == nil && end == n
}
