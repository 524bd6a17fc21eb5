package resolver

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Client speaks raw HTTP/2 frames to a DoH listener, to reach what
// well-behaved clients never send.
type h2Client struct {
	t    *testing.T
	conn net.Conn
	fr   *http2.Framer
	enc  *hpack.Encoder
	hbuf bytes.Buffer
}

// dialTLSH2 opens a TLS connection that negotiated h2 and sends first.
func dialTLSH2(t *testing.T, f *dohFixture, first string) net.Conn {
	t.Helper()
	conn, err := tls.Dial("tcp", f.addr, clientTLS(f.ca, "dns.test", "h2"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, first); err != nil {
		t.Fatal(err)
	}
	return conn
}

// dialH2 is a client past the preface and its SETTINGS.
func dialH2(t *testing.T, f *dohFixture, settings ...http2.Setting) *h2Client {
	t.Helper()
	conn := dialTLSH2(t, f, http2.ClientPreface)
	c := &h2Client{t: t, conn: conn, fr: http2.NewFramer(conn, conn)}
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.enc = hpack.NewEncoder(&c.hbuf)
	if err := c.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	return c
}

// get opens stream id with a GET of wire.
func (c *h2Client) get(id uint32, wire []byte) {
	c.t.Helper()
	c.hbuf.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "dns.test"},
		{":path", DoHPath + "?dns=" + base64.RawURLEncoding.EncodeToString(wire)}} {
		_ = c.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(),
		EndStream: true, EndHeaders: true}); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next frame that is not SETTINGS or WINDOW_UPDATE, or
// the error that ended the connection.
func (c *h2Client) next() (http2.Frame, error) {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		switch f.(type) {
		case *http2.SettingsFrame, *http2.WindowUpdateFrame:
			continue
		}
		return f, nil
	}
}

// goAway reads until the server's GOAWAY and returns its code.
func (c *h2Client) goAway() http2.ErrCode {
	c.t.Helper()
	for {
		f, err := c.next()
		if err != nil {
			c.t.Fatalf("connection ended without GOAWAY: %v", err)
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			return ga.ErrCode
		}
	}
}

// TestDoHH2FlowControl: an answer larger than the client's stream window
// waits for WINDOW_UPDATE and then arrives whole.
func TestDoHH2FlowControl(t *testing.T) {
	f := startDoH(t)
	c := dialH2(t, f, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 10})
	c.get(1, packQuery(t, "www.example.org.", dns.TypeTXT))
	var body []byte
	for len(body) < 10 {
		fr, err := c.next()
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := fr.(*http2.DataFrame); ok {
			if d.StreamEnded() {
				t.Fatal("the whole answer came past a 10-byte window")
			}
			body = append(body, d.Data()...)
		}
	}
	if len(body) != 10 {
		t.Fatalf("%d bytes through a 10-byte window", len(body))
	}
	if err := c.fr.WriteWindowUpdate(1, 1000); err != nil {
		t.Fatal(err)
	}
	for {
		fr, err := c.next()
		if err != nil {
			t.Fatal(err)
		}
		d, ok := fr.(*http2.DataFrame)
		if !ok {
			continue
		}
		body = append(body, d.Data()...)
		if d.StreamEnded() {
			break
		}
	}
	m := new(dns.Msg)
	if err := m.Unpack(body); err != nil || len(m.Answer) != 2 {
		t.Fatalf("answer after WINDOW_UPDATE: %v %v", err, m)
	}
}

// TestDoHH2RapidReset: streams the client resets still count against
// MAX_CONCURRENT_STREAMS while their queries are in the pipeline, so
// opening and resetting streams cannot queue unbounded work.
func TestDoHH2RapidReset(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 2*dohMaxStreams)
	f := startDoHWith(t, func(ctx context.Context, q Query) []byte {
		started <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})
	c := dialH2(t, f)
	wire := packQuery(t, "slow.test.", dns.TypeA)
	for i := range dohMaxStreams + 10 {
		id := uint32(2*i + 1)
		c.get(id, wire)
		if err := c.fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			t.Fatal(err)
		}
	}
	var refused int
	for refused < 10 {
		fr, err := c.next()
		if err != nil {
			t.Fatalf("after %d refusals: %v", refused, err)
		}
		if rst, ok := fr.(*http2.RSTStreamFrame); ok && rst.ErrCode == http2.ErrCodeRefusedStream {
			refused++
		}
	}
	if n := len(started); n > dohMaxStreams {
		t.Errorf("%d queries reached the pipeline, at most %d may", n, dohMaxStreams)
	}
	close(release)
	// Once those finish, the connection serves again.
	c.get(uint32(2*(dohMaxStreams+10)+1), packQuery(t, "www.example.org.", dns.TypeA))
	for {
		fr, err := c.next()
		if err != nil {
			t.Fatal(err)
		}
		if h, ok := fr.(*http2.MetaHeadersFrame); ok {
			if s := h.PseudoValue("status"); s != "503" { // the handler sent nothing
				t.Fatalf("status %s", s)
			}
			return
		}
	}
}

// TestDoHH2Floods: a connection that only sends PINGs, or opens with
// something other than SETTINGS, is closed with a GOAWAY naming why.
func TestDoHH2Floods(t *testing.T) {
	f := startDoH(t)
	c := dialH2(t, f)
	for i := range h2MaxJunk + 10 {
		if err := c.fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			break // the server may already have closed
		}
	}
	if code := c.goAway(); code != http2.ErrCodeEnhanceYourCalm {
		t.Errorf("ping flood: GOAWAY %v", code)
	}

	conn := dialTLSH2(t, f, http2.ClientPreface)
	raw := &h2Client{t: t, conn: conn, fr: http2.NewFramer(conn, conn)}
	raw.fr.WritePing(false, [8]byte{})
	if code := raw.goAway(); code != http2.ErrCodeProtocol {
		t.Errorf("PING before SETTINGS: GOAWAY %v", code)
	}

	// Not HTTP/2 at all after ALPN h2: closed, nothing else.
	conn2 := dialTLSH2(t, f, "GET /dns-query HTTP/1.1\r\nHost: dns.test\r\n\r\n")
	if n, err := conn2.Read(make([]byte, 100)); !errors.Is(err, io.EOF) {
		t.Errorf("garbage preface: read %d bytes, %v; want EOF", n, err)
	}
}

// TestDoHH2Shutdown: a server shutting down sends GOAWAY and still
// delivers the answer of a query it had in hand.
func TestDoHH2Shutdown(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	f := startDoHWith(t, func(ctx context.Context, q Query) []byte {
		close(started)
		<-release
		return (&echoHandler{}).handle(ctx, q)
	})
	c := dialH2(t, f)
	c.get(1, packQuery(t, "www.example.org.", dns.TypeA))
	<-started
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- f.srv.Shutdown(ctx)
	}()
	if code := c.goAway(); code != http2.ErrCodeNo {
		t.Errorf("GOAWAY %v", code)
	}
	close(release)
	for {
		fr, err := c.next()
		if err != nil {
			t.Fatalf("answer lost in shutdown: %v", err)
		}
		if d, ok := fr.(*http2.DataFrame); ok && d.StreamEnded() {
			break
		}
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// FuzzDoHH2 feeds arbitrary bytes, after the preface and a SETTINGS
// frame, to an HTTP/2 connection: it must end without a panic or a hang.
func FuzzDoHH2(f *testing.F) {
	var seed bytes.Buffer
	fr := http2.NewFramer(&seed, nil)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, kv := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":path", DoHPath + "/tok"},
		{"content-type", dohContentType}, {"x-forwarded-for", "192.0.2.7"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
	_ = fr.WriteData(1, true, packQuery(f, "www.example.org.", dns.TypeA))
	_ = fr.WriteWindowUpdate(0, 100)
	_ = fr.WriteRSTStream(3, http2.ErrCodeCancel)
	f.Add(seed.Bytes())
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0})
	echo := &echoHandler{}
	f.Fuzz(func(t *testing.T, data []byte) {
		srv := &h2Server{h: &DoHHandler{Handle: echo.handle}, log: slog.New(slog.DiscardHandler), conns: map[*h2Conn]struct{}{}}
		client, server := net.Pipe()
		go io.Copy(io.Discard, client)
		done := make(chan struct{})
		go func() {
			defer close(done)
			newH2Conn(srv, server).serve()
		}()
		var in bytes.Buffer
		in.WriteString(http2.ClientPreface)
		_ = http2.NewFramer(&in, nil).WriteSettings()
		in.Write(data)
		_ = client.SetWriteDeadline(time.Now().Add(2 * time.Second))
		_, _ = client.Write(in.Bytes())
		client.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("connection did not end after the client closed")
		}
	})
}
