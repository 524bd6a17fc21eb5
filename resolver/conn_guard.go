package resolver

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of GuardOptions.
const (
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultMaxConns         = 1000
)

// GuardOptions configure GuardListener.
type GuardOptions struct {
	TLS   *tls.Config  // nil: no TLS (plain DNS over TCP)
	Proxy *ProxyPolicy // nil: trust no PROXY header (and refuse any)
	// ProxyHeaderOptional lets trusted peers connect without a PROXY
	// header: set it for DoH, where a trusted peer may be an HTTP proxy
	// sending Forwarded/X-Forwarded-For instead. TCP and DoT leave it false.
	ProxyHeaderOptional bool
	// HandshakeTimeout bounds the PROXY header and the TLS handshake
	// together, so a client that connects and says nothing holds no slot.
	HandshakeTimeout time.Duration
	// MaxConns bounds open connections; past it new ones are closed at once.
	MaxConns         int
	Transport        string                 // "tls" or "https": for logs and metrics
	OnHandshakeError func(transport string) // e.g. Recorder.TLSHandshakeError
	OnProxyReject    func(reason string)    // e.g. Recorder.ProxyRejected
	Logger           *slog.Logger
}

// GuardListener wraps a TCP listener so that Accept returns only
// connections that are ready to serve: the PROXY header applied (see
// ProxyPolicy), the TLS handshake done (a *tls.Conn, so http.Server
// negotiates HTTP/2 as usual). Each connection is prepared in its own
// goroutine under HandshakeTimeout, so a slow client never stalls Accept.
// The returned connections' RemoteAddr is the real client.
func GuardListener(ln net.Listener, opts GuardOptions) net.Listener {
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	g := &guardListener{Listener: ln, opts: opts, ready: make(chan net.Conn), done: make(chan struct{})}
	go g.acceptLoop()
	return g
}

type guardListener struct {
	net.Listener
	opts      GuardOptions
	open      atomic.Int64
	ready     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
	err       atomic.Pointer[error] // why the accept loop ended
}

func (g *guardListener) Accept() (net.Conn, error) {
	select {
	case c := <-g.ready:
		return c, nil
	case <-g.done:
		if err := g.err.Load(); err != nil {
			return nil, *err
		}
		return nil, net.ErrClosed
	}
}

func (g *guardListener) Close() error {
	err := g.Listener.Close()
	g.closeOnce.Do(func() { close(g.done) })
	return err
}

func (g *guardListener) acceptLoop() {
	for {
		raw, err := g.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond) // e.g. EMFILE: back off rather than spin
				continue
			}
			g.err.Store(&err)
			g.closeOnce.Do(func() { close(g.done) })
			return
		}
		if g.open.Add(1) > int64(g.opts.MaxConns) {
			g.open.Add(-1)
			raw.Close()
			g.opts.Logger.Debug("connection refused: max connections reached", "transport", g.opts.Transport, "max", g.opts.MaxConns)
			continue
		}
		go g.prepare(raw)
	}
}

// prepare applies PROXY and TLS to one connection and hands it to Accept.
func (g *guardListener) prepare(raw net.Conn) {
	release := func() { g.open.Add(-1) }
	_ = raw.SetDeadline(time.Now().Add(g.opts.HandshakeTimeout))
	cc, err := g.opts.Proxy.Accept(raw, g.opts.ProxyHeaderOptional)
	if err != nil {
		raw.Close()
		release()
		var pe *ProxyError
		if errors.As(err, &pe) {
			g.proxyRejected(raw, pe)
		} else if g.opts.TLS != nil {
			g.handshakeFailed(raw.RemoteAddr(), err)
		}
		return
	}
	cc.onClose = release
	var conn net.Conn = cc
	if g.opts.TLS != nil {
		tc := tls.Server(cc, g.opts.TLS)
		ctx, cancel := context.WithTimeout(context.Background(), g.opts.HandshakeTimeout)
		err = tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			tc.Close()
			g.handshakeFailed(cc.RemoteAddr(), err)
			return
		}
		conn = tc
	}
	_ = raw.SetDeadline(time.Time{})
	select {
	case g.ready <- conn:
	case <-g.done:
		conn.Close()
	}
}

func (g *guardListener) proxyRejected(raw net.Conn, pe *ProxyError) {
	if g.opts.OnProxyReject != nil {
		g.opts.OnProxyReject(pe.Reason)
	}
	g.opts.Logger.Debug("connection refused over its PROXY protocol header", "transport", g.opts.Transport,
		"peer", raw.RemoteAddr(), "reason", pe.Reason, "error", pe)
}

// handshakeFailed counts a TLS handshake that failed or never started in time.
func (g *guardListener) handshakeFailed(client net.Addr, err error) {
	if g.opts.OnHandshakeError != nil {
		g.opts.OnHandshakeError(g.opts.Transport)
	}
	g.opts.Logger.Debug("TLS handshake failed", "transport", g.opts.Transport, "client", client, "error", err)
}

// OpenConns is how many connections the listener holds, being prepared or served.
func (g *guardListener) OpenConns() int { return int(g.open.Load()) }

// clientConnOf finds the ClientConn under a connection a guard listener
// returned (through *tls.Conn), for the TCP peer and real client address.
func clientConnOf(c net.Conn) *ClientConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	cc, _ := c.(*ClientConn)
	return cc
}
