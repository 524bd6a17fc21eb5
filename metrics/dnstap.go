package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	dnstap "github.com/dnstap/golang-dnstap"
)

const (
	// dnstapRetryInterval is the pause after a failed connection attempt;
	// messages arriving meanwhile are dropped and counted.
	dnstapRetryInterval = time.Second
	// dnstapIOTimeout bounds a dial, the Frame Streams handshake and each
	// write, so a stalled reader cannot wedge the writer.
	dnstapIOTimeout = 5 * time.Second
	// dnstapCloseTimeout bounds sending what is queued when Close is called.
	dnstapCloseTimeout = 2 * time.Second
)

// Dnstap sends CLIENT_QUERY and CLIENT_RESPONSE messages to a dnstap
// reader over a unix socket or TCP, in Frame Streams. Queries wait in a
// bounded queue for one writer goroutine; when the queue is full or the
// reader is unreachable, messages are dropped and counted
// (dnsward_dnstap_dropped_total), so DNS never waits for the reader. The
// writer reconnects on its own after the reader restarts. A nil *Dnstap
// is valid and does nothing.
//
// golang-dnstap's FrameStreamSockOutput is not used: its writer retries a
// failed frame forever, so Close would hang while the reader is down.
type Dnstap struct {
	network, addr     string
	identity, version []byte
	log               *slog.Logger
	retry             time.Duration

	in      chan dnstapEvent
	dropped atomic.Uint64
	closed  atomic.Bool

	ctx       context.Context // cancelled by Close; stops dials
	cancel    context.CancelFunc
	closeOnce sync.Once
	done      chan struct{}
}

// dnstapEvent is one answered query, copied out of the QueryEvent so the
// resolver may reuse its buffers once Recorder.Query returns.
type dnstapEvent struct {
	queryTime, responseTime time.Time
	client, server          netip.AddrPort
	tcp                     bool
	query, response         []byte // nil when not given
}

func (e *dnstapEvent) frames() uint64 {
	var n uint64
	if e.query != nil {
		n++
	}
	if e.response != nil {
		n++
	}
	return n
}

// NewDnstap starts the writer for cfg. It returns nil, nil when dnstap is
// off. A reader that is not listening yet is not an error: the writer
// logs it and connects when the reader appears.
func NewDnstap(cfg DnstapConfig, logger *slog.Logger) (*Dnstap, error) {
	return newDnstap(cfg, logger, dnstapRetryInterval)
}

func newDnstap(cfg DnstapConfig, logger *slog.Logger, retry time.Duration) (*Dnstap, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, nil
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	size := cfg.BufferSize
	if size == 0 {
		size = defaultDnstapBufferSize
	}
	d := &Dnstap{network: "unix", addr: cfg.Socket, log: logger, retry: retry,
		in: make(chan dnstapEvent, size), done: make(chan struct{})}
	if cfg.TCP != "" {
		d.network, d.addr = "tcp", cfg.TCP
	}
	if cfg.Identity != "" {
		d.identity = []byte(cfg.Identity)
	}
	if cfg.Version != "" {
		d.version = []byte(cfg.Version)
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	go d.run()
	return d, nil
}

// record queues ev's wire messages without blocking, copying them.
func (d *Dnstap) record(ev *QueryEvent) {
	e := dnstapEvent{query: ev.QueryWire, response: ev.ResponseWire}
	n := e.frames()
	if n == 0 {
		return
	}
	if d.closed.Load() || len(d.in) == cap(d.in) { // full: skip the copy
		d.dropped.Add(n)
		return
	}
	q, r := e.query, e.response
	buf := make([]byte, len(q)+len(r)) // one allocation for both copies
	if q != nil {
		e.query = buf[:len(q):len(q)]
		copy(e.query, q)
	}
	if r != nil {
		e.response = buf[len(q):]
		copy(e.response, r)
	}
	e.queryTime, e.responseTime = ev.Time, ev.Time.Add(ev.Duration)
	e.client, e.server = ev.ClientAddrPort, ev.ServerAddrPort
	if !e.client.IsValid() && ev.Client.IsValid() {
		e.client = netip.AddrPortFrom(ev.Client, 0)
	}
	e.tcp = ev.Proto == "tcp"
	select {
	case d.in <- e:
	default:
		d.dropped.Add(n)
	}
}

// Dropped returns how many messages were not delivered: queue full,
// reader unreachable, or a write that failed.
func (d *Dnstap) Dropped() uint64 {
	if d == nil {
		return 0
	}
	return d.dropped.Load()
}

// Close sends what is queued (for at most dnstapCloseTimeout), ends the
// Frame Streams session and stops the writer. It returns at once when the
// reader is unreachable, and within dnstapIOTimeout when a write to a
// stalled reader is under way. Queries recorded after Close are dropped.
func (d *Dnstap) Close() {
	if d == nil {
		return
	}
	d.closeOnce.Do(func() {
		d.closed.Store(true)
		d.cancel()
	})
	<-d.done
}

func (d *Dnstap) run() {
	defer close(d.done)
	s := &dnstapSender{d: d}
	s.connect()
	for {
		select {
		case e := <-d.in:
			s.send(&e, time.Now().Add(dnstapIOTimeout))
			if len(d.in) == 0 { // end of a burst: one write for all of it
				s.flush(time.Now().Add(dnstapIOTimeout))
			}
		case <-d.ctx.Done():
			s.drain(time.Now().Add(dnstapCloseTimeout))
			if n := d.Dropped(); n > 0 {
				d.log.Warn("dnstap: messages were dropped", "reader", d.addr, "dropped", n)
			}
			return
		}
	}
}

// AddrPortOf returns the address and port of a *net.UDPAddr or
// *net.TCPAddr (IPv4-mapped addresses unmapped), and the zero AddrPort for
// anything else.
func AddrPortOf(a net.Addr) netip.AddrPort {
	var ip net.IP
	var port int
	switch a := a.(type) {
	case *net.UDPAddr:
		if a == nil {
			return netip.AddrPort{}
		}
		ip, port = a.IP, a.Port
	case *net.TCPAddr:
		if a == nil {
			return netip.AddrPort{}
		}
		ip, port = a.IP, a.Port
	default:
		return netip.AddrPort{}
	}
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(addr.Unmap(), uint16(port))
}

var errNoFlush = errors.New("dnstap writer cannot flush")

// dialDnstap connects to the reader and runs the Frame Streams handshake.
func dialDnstap(ctx context.Context, network, addr string) (net.Conn, dnstapWriter, error) {
	dialer := net.Dialer{Timeout: dnstapIOTimeout}
	conn, err := dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, nil, err
	}
	// Close must not wait for a reader that accepted but never answers.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(dnstapIOTimeout))
	w, err := dnstap.NewWriter(conn, &dnstap.WriterOptions{Bidirectional: true})
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("frame streams handshake: %w", err)
	}
	fw, ok := w.(dnstapWriter)
	if !ok {
		conn.Close()
		return nil, nil, errNoFlush
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, fw, nil
}

// dnstapWriter is what golang-dnstap's Frame Streams writer offers.
type dnstapWriter interface {
	dnstap.Writer
	Flush() error
}
