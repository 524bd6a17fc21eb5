package resolver

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Stream is one DoH request on an HTTP/2 connection. All its fields
// are under its connection's mu.
type h2Stream struct {
	c          *h2Conn
	id         uint32
	sendWindow int64
	recvd      int32     // DATA bytes received, padding included
	opened     time.Time // when an upload began

	get       bool
	query     string // a GET's dns parameter
	token     string
	forwarded []string
	xff       []string
	body      []byte // a POST's message so far

	uploading bool // the POST body is still coming
	answering bool // in the pipeline
	reset     bool // the client reset it: the answer is dropped
	done      bool
	pending   []byte // the part of the answer waiting for credit
}

// onHeaders opens a stream (or takes a POST's trailers) and, when the
// request is complete, answers it.
func (c *h2Conn) onHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 == 0 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if id <= c.lastID {
		if st := c.streams[id]; st != nil && st.uploading && f.StreamEnded() {
			return c.complete(st) // trailers end the body; their fields mean nothing to DNS
		}
		return http2.ConnectionError(http2.ErrCodeStreamClosed)
	}
	c.lastID = id
	if c.draining {
		return nil // after our GOAWAY: never processed, the client may retry it elsewhere
	}
	if c.active >= dohMaxStreams {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeRefusedStream}
	}
	st := &h2Stream{c: c, id: id, sendWindow: c.initWindow}
	c.streams[id] = st
	c.active++
	status, msg := st.readHeaders(f)
	if status == 0 && !f.StreamEnded() {
		st.uploading, st.opened = true, time.Now()
		c.uploads++
		return nil
	}
	if status != 0 {
		c.respondError(st, status, msg, !f.StreamEnded())
		return nil
	}
	return c.complete(st)
}

// readHeaders takes what the request's fields say; a status is an
// error to answer with.
func (st *h2Stream) readHeaders(f *http2.MetaHeadersFrame) (int, string) {
	if f.Truncated {
		return http.StatusRequestHeaderFieldsTooLarge, "header fields too large"
	}
	var method, path, ctype string
	for _, hf := range f.Fields {
		switch hf.Name {
		case ":method":
			method = hf.Value
		case ":path":
			path = hf.Value
		case "content-type":
			ctype = hf.Value
		case "content-length":
			if n, err := strconv.Atoi(hf.Value); err == nil && n > maxDNSMessage {
				return http.StatusRequestEntityTooLarge, dohTooLarge
			}
		case "forwarded":
			st.forwarded = append(st.forwarded, hf.Value)
		case "x-forwarded-for":
			st.xff = append(st.xff, hf.Value)
		}
	}
	path, rawQuery, _ := strings.Cut(path, "?")
	if strings.Contains(path, "%") {
		path, _ = url.PathUnescape(path)
	}
	token, ok := dohToken(path)
	if !ok {
		return http.StatusNotFound, "not found: DNS queries go to " + DoHPath
	}
	st.token = token
	switch method {
	case http.MethodGet:
		st.get, st.query = true, queryParam(rawQuery, "dns")
	case http.MethodPost:
		return checkDoHPostType(ctype)
	default:
		return http.StatusMethodNotAllowed, "use GET or POST"
	}
	return 0, ""
}

// queryParam is the first value of key in a URL's raw query.
func queryParam(rawQuery, key string) string {
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		k, v, _ := strings.Cut(pair, "=")
		if k != key {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			v, _ = url.QueryUnescape(v)
		}
		return v
	}
	return ""
}

// onData takes a POST body's bytes, keeping the connection's credit
// topped up.
func (c *h2Conn) onData(f *http2.DataFrame) error {
	n := int32(f.Length) // padding counts against flow control too
	if n > c.recvWindow {
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	c.recvWindow -= n
	if c.recvUnacked += n; c.recvUnacked >= h2ConnWindow/2 {
		_ = c.fr.WriteWindowUpdate(0, uint32(c.recvUnacked))
		c.recvWindow += c.recvUnacked
		c.recvUnacked = 0
	}
	st := c.streams[f.StreamID]
	if st == nil || !st.uploading {
		if f.StreamID > c.lastID {
			return http2.ConnectionError(http2.ErrCodeProtocol) // DATA on a stream never opened
		}
		return c.countJunk() // a stream we answered or reset: ignored (RFC 9113 §5.1)
	}
	if st.recvd += n; st.recvd > h2StreamWindow {
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeFlowControl}
	}
	data := f.Data()
	if len(st.body)+len(data) > maxDNSMessage {
		c.respondError(st, http.StatusRequestEntityTooLarge, dohTooLarge, !f.StreamEnded())
		return nil
	}
	st.body = append(st.body, data...)
	if f.StreamEnded() {
		return c.complete(st)
	}
	if len(data) == 0 {
		return c.countJunk()
	}
	return nil
}

// complete runs a whole request through the pipeline. c.mu is held on
// entry and exit, but not while the pipeline runs: answers of other
// streams may be written meanwhile.
func (c *h2Conn) complete(st *h2Stream) error {
	c.endUpload(st)
	c.junk = 0
	wire, status, msg := st.body, 0, ""
	if st.get {
		wire, status, msg = decodeDoHGet(c.wire, st.query)
		if wire != nil {
			c.wire = wire
		}
	}
	if status == 0 {
		status, msg = checkDoHSize(wire)
	}
	if status != 0 {
		c.respondError(st, status, msg, false)
		return nil
	}
	q := Query{Wire: wire, Client: c.srv.h.clientBehind(c.peer, st.forwarded, st.xff), Local: c.local,
		Transport: TransportHTTPS, Token: st.token}
	st.answering = true
	c.mu.Unlock()
	out, pending := c.srv.h.answer(q, st, c.s)
	c.mu.Lock()
	if !pending {
		st.answering = false
		c.respond(st, out)
	}
	return nil
}

// answer runs q through the pipeline, or, for a handler without one,
// through Handle in a goroutine of its own.
func (h *DoHHandler) answer(q Query, from origin, s *scratch) ([]byte, bool) {
	if h.serve != nil {
		return h.serve(q, from, s)
	}
	q.Wire = append([]byte(nil), q.Wire...)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), dohQueryTimeout)
		defer cancel()
		from.reply(h.Handle(ctx, q), nil)
	}()
	return nil, true
}

// reply is the origin's side: a cache miss's answer, from the upstream's goroutine.
func (st *h2Stream) reply(out []byte, _ *scratch) {
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	st.answering = false
	c.respond(st, out)
	c.flush()
}

// respond sends a DNS answer (nil: the pipeline chose to send nothing,
// which HTTP can only say as an error).
func (c *h2Conn) respond(st *h2Stream, out []byte) {
	if out == nil {
		c.respondError(st, http.StatusServiceUnavailable, dohNoAnswer, false)
		return
	}
	if st.reset || c.closed {
		c.finishStream(st)
		return
	}
	c.writeHead(st.id, "200", dohContentType, len(out), dohCacheControl(out))
	c.sendBody(st, out)
}

// respondError answers with an HTTP error; unfinished, the client's
// upload is cut short by RST_STREAM(NO_ERROR) (RFC 9113 §8.1).
func (c *h2Conn) respondError(st *h2Stream, status int, msg string, unfinished bool) {
	if st.reset || c.closed {
		c.finishStream(st)
		return
	}
	c.endUpload(st) // what more of the body comes is ignored
	c.writeHead(st.id, strconv.Itoa(status), "text/plain; charset=utf-8", len(msg), "no-store")
	c.sendBody(st, []byte(msg))
	if unfinished && st.done {
		_ = c.fr.WriteRSTStream(st.id, http2.ErrCodeNo)
	}
}

func (c *h2Conn) writeHead(id uint32, status, ctype string, length int, cacheControl string) {
	c.hbuf.Reset()
	_ = c.enc.WriteField(hpack.HeaderField{Name: ":status", Value: status})
	_ = c.enc.WriteField(hpack.HeaderField{Name: "content-type", Value: ctype})
	_ = c.enc.WriteField(hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(length)})
	_ = c.enc.WriteField(hpack.HeaderField{Name: "cache-control", Value: cacheControl})
	_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndHeaders: true})
}

// endUpload marks a POST body as no longer coming.
func (c *h2Conn) endUpload(st *h2Stream) {
	if st.uploading {
		st.uploading = false
		c.uploads--
	}
}

// finishStream forgets a stream once its answer is out (or dropped).
func (c *h2Conn) finishStream(st *h2Stream) {
	if st.done {
		return
	}
	st.done = true
	c.endUpload(st)
	delete(c.streams, st.id)
	if c.active--; c.active == 0 {
		c.idleSince = time.Now()
		c.idle.Broadcast()
	}
}

// resetStream sends RST_STREAM for a stream error.
func (c *h2Conn) resetStream(id uint32, code http2.ErrCode) {
	_ = c.fr.WriteRSTStream(id, code)
	if st := c.streams[id]; st != nil {
		c.dropStream(st)
	}
}

// onReset is the client's RST_STREAM. A stream still in the pipeline
// keeps its place among the concurrent streams until its answer comes,
// so resetting streams cannot buy more work than MAX_CONCURRENT_STREAMS
// (the HTTP/2 "rapid reset" attack).
func (c *h2Conn) onReset(id uint32) error {
	st := c.streams[id]
	if st == nil {
		if id > c.lastID {
			return http2.ConnectionError(http2.ErrCodeProtocol) // an idle stream
		}
		return nil
	}
	c.dropStream(st)
	return nil
}

func (c *h2Conn) dropStream(st *h2Stream) {
	st.reset = true
	delete(c.streams, st.id)
	if !st.answering {
		c.finishStream(st)
	}
}

// expireUploads resets POSTs whose body has taken longer than
// dohReadTimeout (a client trickling a body to hold a stream).
func (c *h2Conn) expireUploads() {
	if c.uploads == 0 {
		return
	}
	cutoff := time.Now().Add(-dohReadTimeout)
	for _, st := range c.streams {
		if st.uploading && st.opened.Before(cutoff) {
			c.resetStream(st.id, http2.ErrCodeCancel)
		}
	}
}
