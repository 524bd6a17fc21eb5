package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"
)

const (
	maxIdleConns = 4                // per upstream; enough for a 2-core box without pipelining
	maxIdleTime  = 15 * time.Second // servers drop idle clients after 10-30 s; don't reuse older ones
)

type dialFunc func(ctx context.Context, deadline time.Time) (net.Conn, error)

// streamTransport speaks DNS over TCP or TLS (RFC 1035 length-prefixed
// messages), one query at a time per connection, keeping a few idle
// connections for reuse.
type streamTransport struct {
	dial dialFunc

	mu     sync.Mutex
	idle   []idleConn
	closed bool
}

type idleConn struct {
	conn  net.Conn
	since time.Time
}

func newStreamTransport(dial dialFunc) *streamTransport {
	return &streamTransport{dial: dial}
}

func tcpDialer(addr string) dialFunc {
	return func(ctx context.Context, deadline time.Time) (net.Conn, error) {
		d := net.Dialer{Deadline: deadline}
		return d.DialContext(ctx, "tcp", addr)
	}
}

func tlsDialer(addr string, cfg *tls.Config) dialFunc {
	return func(ctx context.Context, deadline time.Time) (net.Conn, error) {
		d := tls.Dialer{NetDialer: &net.Dialer{Deadline: deadline}, Config: cfg}
		return d.DialContext(ctx, "tcp", addr) // deadline covers the handshake too
	}
}

func (t *streamTransport) start(a *attempt) { startBlocking(a, t.exchange) }

// aLongTimeAgo is a deadline in the past: setting it wakes a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

func (t *streamTransport) exchange(ctx context.Context, deadline time.Time, wire []byte, qlen int) (*dns.Msg, error) {
	query, id := withID(wire)
	frame := make([]byte, 2+len(query))
	frame[0], frame[1] = byte(len(query)>>8), byte(len(query))
	copy(frame[2:], query)

	for retried := false; ; retried = true {
		var conn net.Conn
		reused := false
		if !retried {
			conn, reused = t.get()
		}
		if conn == nil {
			var err error
			if conn, err = t.dial(ctx, deadline); err != nil {
				return nil, err
			}
		}
		msg, err := t.roundTrip(ctx, conn, deadline, frame, id, wire, qlen)
		if err == nil {
			return msg, nil
		}
		// A pooled connection the server has since closed fails with EOF or a
		// reset; that says nothing about the server, so try once more on a new one.
		staleConn := reused && !retried && !errors.Is(err, errBadResponse) && !isTimeout(err) && ctx.Err() == nil
		if !staleConn {
			return nil, err
		}
	}
}

// roundTrip writes frame and reads one reply; the connection goes back to the
// pool on success and is closed otherwise.
func (t *streamTransport) roundTrip(ctx context.Context, conn net.Conn, deadline time.Time, frame []byte, id uint16, wire []byte, qlen int) (*dns.Msg, error) {
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(aLongTimeAgo) })
	msg, err := writeRead(conn, frame, id, wire, qlen)
	if !stop() || err != nil {
		// On cancellation the deadline may already be poisoned: don't pool it.
		conn.Close()
		return msg, err
	}
	t.put(conn)
	return msg, nil
}

func writeRead(conn net.Conn, frame []byte, id uint16, wire []byte, qlen int) (*dns.Msg, error) {
	if _, err := conn.Write(frame); err != nil {
		return nil, err
	}
	var size [2]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return nil, err
	}
	// The 16-bit length caps a reply at 65535 bytes.
	buf := make([]byte, int(size[0])<<8|int(size[1]))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return nil, err
	}
	return parseReply(buf, wire, id, qlen)
}

func (t *streamTransport) get() (net.Conn, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.idle) > 0 {
		last := t.idle[len(t.idle)-1]
		t.idle = t.idle[:len(t.idle)-1]
		if time.Since(last.since) < maxIdleTime {
			return last.conn, true
		}
		last.conn.Close()
	}
	return nil, false
}

func (t *streamTransport) put(conn net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || len(t.idle) >= maxIdleConns {
		conn.Close()
		return
	}
	t.idle = append(t.idle, idleConn{conn: conn, since: time.Now()})
}

func (t *streamTransport) close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for _, ic := range t.idle {
		ic.conn.Close()
	}
	t.idle = nil
	return nil
}

// startBlocking runs a transport's blocking exchange on a goroutine of
// its own: TCP, TLS and HTTPS attempts, and the TCP retry of a truncated
// UDP reply.
func startBlocking(a *attempt, run func(ctx context.Context, deadline time.Time, wire []byte, qlen int) (*dns.Msg, error)) {
	a.poller = nil // it reports from a goroutine of its own, not from a poller
	ctx, cancel := context.WithDeadline(context.Background(), a.deadline)
	a.onCancel(cancel)
	go func() {
		msg, err := run(ctx, a.deadline, a.ex.wire, a.ex.qlen)
		cancelled := errors.Is(ctx.Err(), context.Canceled)
		cancel()
		a.finish(msg, err, cancelled)
	}()
}
