package resolver

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// DoH over HTTP/2 is served here, not by net/http's server. A DNS answer
// is a few hundred bytes, and net/http's HTTP/2 server spent about four
// times the pipeline's cost on each (a goroutine per request and per
// frame write, their stack growth, a select per frame). Here one
// goroutine reads a connection's frames and runs each request through
// the pipeline; a cache miss is answered from the upstream's goroutine.
// x/net/http2 parses and writes the frames (HPACK and CONTINUATION
// included); this file keeps the connection's state and limits.

const (
	h2Preface      = http2.ClientPreface
	h2ConnWindow   = 1 << 20           // what a client may send before we return credit
	h2StreamWindow = maxDNSMessage + 1 // one byte past a whole message shows a POST body is too long
	h2MaxFrame     = 16384             // HTTP/2's default frame size, which we keep
	// h2MaxJunk bounds frames that ask nothing (PING, SETTINGS,
	// RST_STREAM, PRIORITY, empty DATA...) between two requests: past it
	// the connection is a flood and gets ENHANCE_YOUR_CALM.
	h2MaxJunk = 1000
	h2BufSize = 8 << 10
	// h2CloseLinger is how long a connection closed for an error keeps
	// reading (and discarding) before it closes; see closeAfterError.
	h2CloseLinger = time.Second
)

// h2Server serves the HTTP/2 connections of one DoH listener.
type h2Server struct {
	h   *DoHHandler
	log *slog.Logger

	mu       sync.Mutex
	conns    map[*h2Conn]struct{}
	draining bool
}

// serveConn is the listener's TLSNextProto "h2" hook: it runs one
// connection to its end; net/http closes it afterwards.
func (s *h2Server) serveConn(_ *http.Server, tc *tls.Conn, _ http.Handler) {
	c := newH2Conn(s, tc)
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	c.serve()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// shutdown runs when the http.Server shuts down: every connection gets a
// GOAWAY, finishes the requests it has and closes.
func (s *h2Server) shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.draining = true
	for c := range s.conns {
		c.drain()
	}
}

// h2Conn is one client connection. Only the reader goroutine changes the
// fields above mu, and it holds mu while it handles a frame; the fields
// below mu, and writing, are under mu for every goroutine.
type h2Conn struct {
	srv   *h2Server
	c     net.Conn // a *tls.Conn that negotiated h2
	br    *bufio.Reader
	fr    *http2.Framer
	peer  netip.AddrPort // the TCP peer: the PROXY header's client when a trusted balancer sent one
	local netip.AddrPort
	s     *scratch
	wire  []byte // decoded GET queries

	lastID      uint32 // the highest stream the client opened
	recvWindow  int32  // connection credit the client has left
	recvUnacked int32  // credit consumed and not yet returned
	junk        int
	settled     bool // the client's first SETTINGS came

	mu         sync.Mutex
	idle       *sync.Cond // broadcast when active drops to 0
	bw         *bufio.Writer
	enc        *hpack.Encoder
	hbuf       bytes.Buffer
	streams    map[uint32]*h2Stream
	active     int // streams not finished, reset ones still in the pipeline included
	uploads    int // streams whose POST body is still coming
	sendWindow int64
	initWindow int64       // the client's SETTINGS_INITIAL_WINDOW_SIZE
	maxFrame   int         // the client's SETTINGS_MAX_FRAME_SIZE
	blocked    []*h2Stream // answers waiting for flow-control credit
	idleSince  time.Time
	draining   bool // a GOAWAY went out: no new streams, close when idle
	goneAway   bool
	goAwayErr  bool // that GOAWAY named an error (closeAfterError)
	closed     bool
}

func newH2Conn(s *h2Server, tc net.Conn) *h2Conn {
	c := &h2Conn{srv: s, c: tc, br: bufio.NewReaderSize(tc, h2BufSize), peer: addrPortOf(tc.RemoteAddr()),
		local: addrPortOf(tc.LocalAddr()), recvWindow: h2ConnWindow, bw: bufio.NewWriterSize(tc, h2BufSize),
		streams: make(map[uint32]*h2Stream), sendWindow: 65535, initWindow: 65535, maxFrame: h2MaxFrame,
		idleSince: time.Now()}
	c.idle = sync.NewCond(&c.mu)
	c.fr = http2.NewFramer(c.bw, c.br)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.MaxHeaderListSize = dohMaxHeaderBytes
	c.fr.SetMaxReadFrameSize(h2MaxFrame)
	c.fr.SetReuseFrames()
	c.enc = hpack.NewEncoder(&c.hbuf)
	return c
}

// serve reads frames until the client leaves, errs or goes idle.
func (c *h2Conn) serve() {
	c.s = newScratch()
	defer c.finish()
	if !c.greet() {
		return
	}
	for {
		if !c.setReadDeadline() {
			return
		}
		f, err := c.fr.ReadFrame()
		if err == nil {
			err = c.dispatch(f)
		}
		if err != nil && !c.recover(err) {
			return
		}
		if c.br.Buffered() == 0 { // answers of what came in one read leave in one write
			c.mu.Lock()
			c.flush()
			c.mu.Unlock()
		}
	}
}

// greet reads the client's preface and sends our SETTINGS and the
// connection's larger window.
func (c *h2Conn) greet() bool {
	_ = c.c.SetReadDeadline(time.Now().Add(dohReadHeaderTimeout))
	var p [len(h2Preface)]byte
	if _, err := io.ReadFull(c.br, p[:]); err != nil || string(p[:]) != h2Preface {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.fr.WriteSettings(
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: dohMaxStreams},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: dohMaxHeaderBytes},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2StreamWindow},
		http2.Setting{ID: http2.SettingEnablePush, Val: 0})
	_ = c.fr.WriteWindowUpdate(0, h2ConnWindow-65535)
	c.flush()
	return !c.closed
}

// setReadDeadline gives an idle connection until dohIdleTimeout after
// its last answer, and a busy one dohReadTimeout per frame; false once
// the connection drains.
func (c *h2Conn) setReadDeadline() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.draining || c.closed {
		return false
	}
	deadline := c.idleSince.Add(dohIdleTimeout)
	if c.active > 0 {
		deadline = time.Now().Add(dohReadTimeout)
	}
	_ = c.c.SetReadDeadline(deadline)
	return true
}

// dispatch handles one frame; an error is an http2.StreamError or
// ConnectionError for recover.
func (c *h2Conn) dispatch(f http2.Frame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireUploads()
	if sf, ok := f.(*http2.SettingsFrame); !c.settled && (!ok || sf.IsAck()) {
		return http2.ConnectionError(http2.ErrCodeProtocol) // RFC 9113 §3.4: SETTINGS comes first
	}
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		return c.onHeaders(f)
	case *http2.DataFrame:
		return c.onData(f)
	case *http2.SettingsFrame:
		c.settled = true
		return c.onSettings(f)
	case *http2.WindowUpdateFrame:
		return c.onWindowUpdate(f)
	case *http2.PingFrame:
		if !f.IsAck() {
			_ = c.fr.WritePing(true, f.Data)
		}
	case *http2.RSTStreamFrame:
		if err := c.onReset(f.StreamID); err != nil {
			return err
		}
	case *http2.GoAwayFrame:
		c.draining = true // the client opens nothing more: close once answered
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol) // clients never push
	}
	return c.countJunk()
}

func (c *h2Conn) countJunk() error {
	if c.junk++; c.junk > h2MaxJunk {
		return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
	}
	return nil
}

// recover answers a frame's error: a stream error resets that stream,
// anything else ends the connection (with a GOAWAY where it still can).
// True means read on.
func (c *h2Conn) recover(err error) bool {
	var se http2.StreamError
	var ce http2.ConnectionError
	var ne net.Error
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case errors.As(err, &se):
		c.lastID = max(c.lastID, se.StreamID) // a HEADERS that failed still used its ID
		c.resetStream(se.StreamID, se.Code)
		return c.countJunk() == nil
	case errors.As(err, &ce):
		c.goAway(http2.ErrCode(ce))
	case errors.Is(err, http2.ErrFrameTooLarge):
		c.goAway(http2.ErrCodeFrameSize)
	case errors.As(err, &ne) && ne.Timeout() && c.active > 0 && !c.draining:
		c.expireUploads()
		return true // answers are on their way; the pipeline bounds them
	case errors.As(err, &ne) && ne.Timeout():
		c.goAway(http2.ErrCodeNo) // idle
	default:
		c.srv.log.Debug("DoH connection ended", "client", c.peer, "err", err)
	}
	return false
}

// goAway tells the client the connection ends, once.
func (c *h2Conn) goAway(code http2.ErrCode) {
	if c.goneAway || c.closed {
		return
	}
	c.goneAway, c.draining, c.goAwayErr = true, true, code != http2.ErrCodeNo
	_ = c.fr.WriteGoAway(c.lastID, code, nil)
	c.flush()
	if code != http2.ErrCodeNo {
		c.srv.log.Debug("DoH connection closed", "client", c.peer, "code", code)
	}
}

// drain is the server's shutdown of this connection: GOAWAY, and the
// reader wakes to finish.
func (c *h2Conn) drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.goAway(http2.ErrCodeNo)
	_ = c.c.SetReadDeadline(time.Unix(1, 0))
}

// finish waits, after the reader stopped, for the answers still in the
// pipeline (bounded by the query timeout) when the connection can still
// carry them, then closes it.
func (c *h2Conn) finish() {
	c.mu.Lock()
	if c.goneAway && !c.closed && c.active > 0 {
		t := time.AfterFunc(dohQueryTimeout, func() {
			c.mu.Lock()
			c.closed = true
			c.idle.Broadcast()
			c.mu.Unlock()
		})
		for c.active > 0 && !c.closed {
			c.idle.Wait()
		}
		t.Stop()
	}
	c.flush()
	c.closed = true
	lingers := c.goAwayErr
	c.mu.Unlock()
	if lingers {
		c.closeAfterError()
		return
	}
	c.c.Close()
}

// closeAfterError closes a connection told why in a GOAWAY, without
// losing that GOAWAY: a client still sending (a flood) leaves bytes
// unread, closing then makes the kernel reset the connection, and the
// reset can destroy the GOAWAY before the client reads it. So the rest is
// read and discarded until the client closes or h2CloseLinger passes.
func (c *h2Conn) closeAfterError() {
	_ = c.c.SetReadDeadline(time.Now().Add(h2CloseLinger))
	_, _ = io.Copy(io.Discard, c.c)
	c.c.Close()
}

// flush writes what is buffered; a client that stops reading for
// dohWriteTimeout loses the connection.
func (c *h2Conn) flush() {
	if c.closed || c.bw.Buffered() == 0 {
		return
	}
	_ = c.c.SetWriteDeadline(time.Now().Add(dohWriteTimeout))
	if err := c.bw.Flush(); err != nil {
		c.closed = true
		c.c.Close() // the reader sees it and ends
	}
}
