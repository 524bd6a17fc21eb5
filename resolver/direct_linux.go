package resolver

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"os"
	"time"
	"unsafe"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/dnsward/dnsward/metrics"
	"github.com/dnsward/dnsward/resolver/upstream"
)

// A UDP read loop sends cache misses upstream itself when the forwarder
// allows it (a healthy plain-UDP upstream, see directForwarder): a fresh
// socket per query, so a fresh random source port, whose reply the loop
// waits for in one epoll set with its listening socket, the way
// event-driven C resolvers work. That saves the goroutine, timers and
// poller registration a query costs on the full pipeline, which were most
// of a cache miss's CPU. Anything out of the ordinary — a timeout, a
// truncated, failed or malformed reply, an answer too big for the client
// or with a CNAME the client's policy blocks — goes to the full pipeline
// with the client's original packet, which then answers as it always has.

// directForwarder is what the loop needs from the forwarder
// (upstream.Forwarder implements it).
type directForwarder interface {
	// DirectUDP fills addrs and idxs with the upstreams the next query
	// goes to (two when parallel_best races them) and returns how many;
	// 0 means the loop must leave the query to the full pipeline.
	DirectUDP(now time.Time, addrs []netip.AddrPort, idxs []int) (n int, timeout time.Duration)
	// ReportDirect records a result for health, metrics and readiness.
	ReportDirect(idx int, err error, elapsed time.Duration)
}

const (
	directSlots      = 1024 // upstream queries in flight per loop
	directWaiters    = 32   // identical client queries sharing one upstream query
	directReadBatch  = 64   // client packets read per wake-up before replies are looked at again
	directReplySize  = 4096 // as the forwarder's UDP transport reads
	listenerToken    = -1   // epoll data of the listening socket
	maxPollWait      = 500 * time.Millisecond
	maxQuestionBytes = 255 + 4
)

// directWaiter is a client waiting for a direct query's answer.
type directWaiter struct {
	pkt   []byte // a copy of the query packet
	from  netip.AddrPort
	at    time.Time
	group string
}

// directSlot is one question in flight, asked of one upstream or raced
// between two.
type directSlot struct {
	gen      uint32 // counts reuses, so a stale epoll event cannot match
	inUse    bool
	socks    [directRace]directSocket
	key      cacheKey
	question [maxQuestionBytes]byte // as sent: name, type, class
	qlen     int
	sent     time.Time
	deadline time.Time
	waiters  []directWaiter
}

// directRace is the most upstreams one question is sent to at once, as
// the forwarder's parallel_best strategy does.
const directRace = 2

// directSocket is one upstream query: its own socket and random ID.
type directSocket struct {
	fd int // -1 when closed or unused
	id uint16
	up int // the forwarder's index of the upstream
}

// waiting reports whether any of the slot's queries can still answer.
func (sl *directSlot) waiting() bool {
	for _, so := range sl.socks {
		if so.fd >= 0 {
			return true
		}
	}
	return false
}

// epoll data names a slot's socket: slot index and socket number in Fd,
// the slot's generation in Pad.
func epollData(idx int32, which int, gen uint32) unix.EpollEvent {
	return unix.EpollEvent{Events: unix.EPOLLIN, Fd: idx*directRace + int32(which), Pad: int32(gen)}
}

type slotRef struct {
	idx int32
	gen uint32
}

// directLoop is one read loop's state; only that loop's thread uses it.
type directLoop struct {
	r         *Resolver
	fwd       directForwarder
	sock      *rawUDP
	epfd      int
	listening bool
	slots     []directSlot
	free      []int32
	byKey     map[cacheKey]int32
	fifo      []slotRef // in sending order; every query has the same timeout
	handoff   []directWaiter
	events    [64]unix.EpollEvent
	reply     [directReplySize]byte
	query     [512]byte
}

// newDirectLoop returns nil when direct sending is not possible; the loop
// then hands every miss to the full pipeline.
func (r *Resolver) newDirectLoop(u udpSocket) *directLoop {
	fwd, ok := r.upstream.(directForwarder)
	sock, raw := u.(*rawUDP)
	if !ok || !raw || r.cache == nil {
		return nil
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		r.log.Warn("cache misses take the slower path: epoll unavailable", "err", err)
		return nil
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: listenerToken}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, sock.fd, &ev); err != nil {
		unix.Close(epfd)
		r.log.Warn("cache misses take the slower path: epoll unavailable", "err", err)
		return nil
	}
	d := &directLoop{r: r, fwd: fwd, sock: sock, epfd: epfd, listening: true,
		slots: make([]directSlot, directSlots), byKey: make(map[cacheKey]int32)}
	for i := range d.slots {
		for j := range d.slots[i].socks {
			d.slots[i].socks[j].fd = -1
		}
		d.free = append(d.free, int32(len(d.slots)-1-i))
	}
	return d
}

// busy reports whether upstream queries are in flight.
func (d *directLoop) busy() bool { return len(d.byKey) > 0 }

func (d *directLoop) close() { unix.Close(d.epfd) }

// send starts an upstream query for the miss fastUDP left in s, or joins
// one in flight for the same question. False means the full pipeline
// must answer it.
func (d *directLoop) send(pkt []byte, from netip.AddrPort, s *fastScratch) bool {
	q := &s.q
	now := d.r.now()
	key := cacheKey{name: unsafe.String(&q.qname[0], len(q.qname)), qtype: q.qtype, qclass: q.qclass,
		do: q.do, cd: q.flags&0x0010 != 0}
	if i, ok := d.byKey[key]; ok {
		sl := &d.slots[i]
		if len(sl.waiters) >= directWaiters {
			return false
		}
		sl.waiters = append(sl.waiters, newWaiter(pkt, from, now, s))
		d.countMiss()
		return true
	}
	if len(d.free) == 0 {
		return false
	}
	sent := time.Now() // not r.now, which tests may stop: timeouts run on real time
	var addrs [directRace]netip.AddrPort
	var ups [directRace]int
	n, timeout := d.fwd.DirectUDP(sent, addrs[:], ups[:])
	if n == 0 {
		return false
	}
	idx := d.free[len(d.free)-1]
	sl := &d.slots[idx]
	var wire []byte
	for i := range n {
		id := uint16(rand.Uint32())
		wire = appendDirectQuery(d.query[:0], q, id)
		fd, err := dialAndSend(addrs[i], wire)
		if err == nil {
			ev := epollData(idx, i, sl.gen)
			if err = unix.EpollCtl(d.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
				unix.Close(fd)
			}
		}
		if err != nil {
			d.closeSockets(sl)
			return false // the full pipeline tries again and reports what fails
		}
		sl.socks[i] = directSocket{fd: fd, id: id, up: ups[i]}
	}
	d.free = d.free[:len(d.free)-1]
	key.name = string(q.qname)
	sl.inUse, sl.key, sl.sent, sl.deadline = true, key, sent, sent.Add(timeout)
	sl.qlen = copy(sl.question[:], wire[headerLen:headerLen+len(q.rawQName)+4])
	sl.waiters = append(sl.waiters[:0], newWaiter(pkt, from, now, s))
	d.byKey[key] = idx
	d.fifo = append(d.fifo, slotRef{idx: idx, gen: sl.gen})
	d.countMiss()
	return true
}

func newWaiter(pkt []byte, from netip.AddrPort, now time.Time, s *fastScratch) directWaiter {
	return directWaiter{pkt: append([]byte(nil), pkt...), from: from, at: now, group: s.group}
}

func (d *directLoop) countMiss() {
	if d.r.rec != nil {
		d.r.rec.CacheMiss()
	}
}

// appendDirectQuery builds the upstream query the full pipeline would
// send: the question lower-cased, RD set, CD as the client asked, and an
// OPT record offering our UDP size with the client's DO bit.
func appendDirectQuery(dst []byte, q *wireQuery, id uint16) []byte {
	flags := 0x0100 | q.flags&0x0010
	dst = binary.BigEndian.AppendUint16(dst, id)
	dst = binary.BigEndian.AppendUint16(dst, flags)
	dst = append(dst, 0, 1, 0, 0, 0, 0, 0, 1) // QD 1, AN 0, NS 0, AR 1
	start := len(dst)
	dst = append(dst, q.rawQName...)
	for i := start; i < len(dst); i++ { // label lengths are below 64, never in A-Z
		if 'A' <= dst[i] && dst[i] <= 'Z' {
			dst[i] += 'a' - 'A'
		}
	}
	dst = binary.BigEndian.AppendUint16(dst, q.qtype)
	dst = binary.BigEndian.AppendUint16(dst, q.qclass)
	var do byte
	if q.do {
		do = 0x80
	}
	return append(dst, 0, 0, 41, byte(ourUDPSize>>8), byte(ourUDPSize&0xff), 0, 0, do, 0, 0, 0)
}

// dialAndSend opens a UDP socket connected to addr (the kernel picks a
// random source port and drops datagrams from anyone else) and sends wire.
func dialAndSend(addr netip.AddrPort, wire []byte) (int, error) {
	if addr.Addr().Zone() != "" {
		return -1, errSlowPath // scoped IPv6 needs an interface index: the full path handles it
	}
	family, sa := unix.AF_INET, unix.Sockaddr(nil)
	if ip := addr.Addr().Unmap(); ip.Is4() {
		sa = &unix.SockaddrInet4{Port: int(addr.Port()), Addr: ip.As4()}
	} else {
		family, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: int(addr.Port()), Addr: ip.As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Connect(fd, sa); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if _, err := unix.Write(fd, wire); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// poll waits for upstream replies, timeouts or client packets, handles
// the first two, and reports whether client packets are waiting.
func (d *directLoop) poll(s *fastScratch) bool {
	if d.listening && d.sock.closed.Load() {
		// Shutting down: stop reading clients (a shut-down socket would
		// stay readable) and finish what is in flight.
		_ = unix.EpollCtl(d.epfd, unix.EPOLL_CTL_DEL, d.sock.fd, nil)
		d.listening = false
	}
	wait := maxPollWait
	if head, ok := d.nextDeadline(); ok {
		wait = min(wait, max(time.Until(head), 0))
	}
	msec := int((wait + time.Millisecond - 1) / time.Millisecond)
	n, err := unix.EpollWait(d.epfd, d.events[:], msec)
	if err != nil {
		n = 0 // EINTR
	}
	clients := false
	for _, ev := range d.events[:n] {
		if ev.Fd == listenerToken {
			clients = d.listening
			continue
		}
		d.onReadable(ev.Fd/directRace, int(ev.Fd%directRace), uint32(ev.Pad), s)
	}
	d.expire(time.Now())
	return clients
}

func (d *directLoop) nextDeadline() (time.Time, bool) {
	for len(d.fifo) > 0 {
		ref := d.fifo[0]
		if sl := &d.slots[ref.idx]; sl.inUse && sl.gen == ref.gen {
			return sl.deadline, true
		}
		d.fifo = d.fifo[1:] // answered already
	}
	return time.Time{}, false
}

// expire gives up on queries past their deadline.
func (d *directLoop) expire(now time.Time) {
	for {
		head, ok := d.nextDeadline()
		if !ok || now.Before(head) {
			return
		}
		ref := d.fifo[0]
		d.fifo = d.fifo[1:]
		sl := &d.slots[ref.idx]
		for _, so := range sl.socks {
			if so.fd >= 0 {
				d.fwd.ReportDirect(so.up, os.ErrDeadlineExceeded, time.Since(sl.sent))
			}
		}
		d.handOver(ref.idx)
	}
}

// onReadable reads what arrived on one of slot idx's sockets.
func (d *directLoop) onReadable(idx int32, which int, gen uint32, s *fastScratch) {
	if idx < 0 || int(idx) >= len(d.slots) {
		return
	}
	sl := &d.slots[idx]
	so := &sl.socks[which]
	if !sl.inUse || sl.gen != gen || so.fd < 0 {
		return // a late event for a socket already closed
	}
	defer func() {
		if p := recover(); p != nil {
			d.r.log.Error("handling an upstream reply panicked", "panic", p, "qname", sl.key.name)
			if sl.inUse && sl.gen == gen {
				d.handOver(idx)
			}
		}
	}()
	for {
		n, err := unix.Read(so.fd, d.reply[:])
		switch {
		case err == unix.EAGAIN:
			return // only datagrams that were not the reply: keep waiting
		case err == unix.EINTR:
			continue
		case err != nil: // e.g. ICMP port unreachable
			d.fwd.ReportDirect(so.up, os.NewSyscallError("read", err), time.Since(sl.sent))
			d.drop(idx, so)
			return
		}
		switch msg, verdict := d.check(sl, so, d.reply[:n]); verdict {
		case replyForeign:
			continue // wrong ID or question: possibly spoofed, keep listening
		case replyUnusual:
			d.drop(idx, so) // the full pipeline decides, unless the other racer answers
		default:
			d.fwd.ReportDirect(so.up, nil, time.Since(sl.sent))
			d.answer(idx, msg, s)
		}
		return
	}
}

// drop stops waiting on one socket; with none left, the clients go to the
// full pipeline.
func (d *directLoop) drop(idx int32, so *directSocket) {
	unix.Close(so.fd)
	so.fd = -1
	if !d.slots[idx].waiting() {
		d.handOver(idx)
	}
}

type replyVerdict int

const (
	replyForeign replyVerdict = iota // not the reply to this query
	replyUnusual                     // the reply, but for the full pipeline to deal with
	replyGood
)

// check decides what a datagram from the upstream is, the way the
// forwarder's parseReply and classify do.
func (d *directLoop) check(sl *directSlot, so *directSocket, b []byte) (*dns.Msg, replyVerdict) {
	if len(b) < headerLen+sl.qlen || binary.BigEndian.Uint16(b) != so.id || b[2]&0x80 == 0 ||
		binary.BigEndian.Uint16(b[4:]) != 1 || !equalFoldBytes(b[headerLen:headerLen+sl.qlen], sl.question[:sl.qlen]) {
		return nil, replyForeign
	}
	msg := new(dns.Msg)
	if err := msg.Unpack(b); err != nil || msg.Truncated ||
		(msg.Rcode != dns.RcodeSuccess && msg.Rcode != dns.RcodeNameError) || upstream.CheckRecordData(msg) != nil {
		return nil, replyUnusual
	}
	return msg, replyGood
}

// equalFoldBytes compares wire names and type/class bytes ignoring ASCII
// case (RFC 4343); label lengths are below 64, so folding never changes one.
func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// answer caches a good reply and answers every waiting client from the
// cache entry, exactly as a cache hit is answered.
func (d *directLoop) answer(idx int32, msg *dns.Msg, s *fastScratch) {
	e := d.r.cache.put(d.slots[idx].key, msg)
	waiters := d.release(idx)
	for _, w := range waiters {
		if e == nil || !d.answerOne(w, e, s) {
			// Not cacheable (no SOA in a negative answer), or not for
			// the loop: the full pipeline asks again or answers from cache.
			d.r.toSlow(d.sock, w.pkt, w.from)
		}
	}
	clear(d.handoff)
}

func (d *directLoop) answerOne(w directWaiter, e *cacheEntry, s *fastScratch) bool {
	q, err := parseQuery(w.pkt, s.name[:])
	if err != nil {
		return false
	}
	client := w.from.Addr().Unmap()
	out, ok := d.r.appendCached(s.out[:0], e, &q, client, d.r.now())
	if !ok {
		return false
	}
	_ = d.sock.writeTo(out, w.from)
	if d.r.rec != nil {
		ev := metrics.QueryEvent{Time: w.at, Client: client, Proto: "udp", QType: q.qtype,
			Group: w.group, Outcome: metrics.OutcomeForwarded}
		d.r.recordAnswer(&ev, &q, w.pkt, out, w.from, s)
	}
	return true
}

// handOver gives slot idx's clients to the full pipeline.
func (d *directLoop) handOver(idx int32) {
	for _, w := range d.release(idx) {
		d.r.toSlow(d.sock, w.pkt, w.from)
	}
	clear(d.handoff)
}

// release closes slot idx's sockets and frees the slot. It returns the
// waiters in d.handoff, valid until the next release. A racer that has
// not answered is abandoned, as the forwarder cancels it, without a report.
func (d *directLoop) release(idx int32) []directWaiter {
	sl := &d.slots[idx]
	d.handoff = append(d.handoff[:0], sl.waiters...)
	clear(sl.waiters)
	sl.waiters = sl.waiters[:0]
	d.closeSockets(sl)
	sl.inUse = false
	sl.gen++
	delete(d.byKey, sl.key)
	d.free = append(d.free, idx)
	return d.handoff
}

// closeSockets closes a slot's sockets, which also takes them out of the
// epoll set.
func (d *directLoop) closeSockets(sl *directSlot) {
	for i := range sl.socks {
		if sl.socks[i].fd >= 0 {
			unix.Close(sl.socks[i].fd)
			sl.socks[i].fd = -1
		}
	}
}
