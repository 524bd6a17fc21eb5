package resolver

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"
)

type doqFixture struct {
	ca   *testCA
	addr string
	echo *echoHandler
	srv  *DoQServer
}

// startDoQ serves limits (IdleTimeout, MaxConns...) with the echo handler.
func startDoQ(t testing.TB, limits *DoQServer) *doqFixture {
	t.Helper()
	f := &doqFixture{ca: newTestCA(t), echo: &echoHandler{}}
	store := testCertStore(t, f.ca)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = pc.LocalAddr().String()
	srv := &DoQServer{Handle: f.echo.handle, TLS: store.ServerTLSConfig(), ServerName: store.ServerName(),
		IdleTimeout: limits.IdleTimeout, MaxConns: limits.MaxConns, Logger: slog.New(slog.DiscardHandler),
		OnHandshakeError: limits.OnHandshakeError}
	f.srv = srv
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, pc) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		pc.Close()
	})
	return f
}

func (f *doqFixture) dial(t testing.TB, sni string, alpn ...string) (*quic.Conn, error) {
	t.Helper()
	if alpn == nil {
		alpn = []string{DoQALPN}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := quic.DialAddr(ctx, f.addr, clientTLS(f.ca, sni, alpn...), &quic.Config{MaxIdleTimeout: 30 * time.Second})
	if err == nil {
		t.Cleanup(func() { c.CloseWithError(0, "") })
	}
	return c, err
}

// ask sends one framed message on a new stream and reads the reply.
func askDoQ(c *quic.Conn, wire []byte) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	st, err := c.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	_ = st.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := st.Write(binary.BigEndian.AppendUint16(nil, uint16(len(wire)))); err != nil {
		return nil, err
	}
	if _, err := st.Write(wire); err != nil {
		return nil, err
	}
	st.Close()
	reply, err := readFramed(st)
	if err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	return m, m.Unpack(reply)
}

func TestDoQQueries(t *testing.T) {
	f := startDoQ(t, &DoQServer{})
	c, err := f.dial(t, testToken+".dns.test")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 { // streams in parallel on one connection
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := askDoQ(c, packQuery(t, "www.example.org.", dns.TypeA))
			switch {
			case err != nil:
				errs <- err
			case m.Id != 0 || len(m.Answer) != 1:
				errs <- errors.New("bad reply " + m.String())
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	q := f.echo.lastQuery(t)
	if q.Token != testToken || q.Transport != TransportQUIC || q.Client.Addr().String() != "127.0.0.1" {
		t.Errorf("query seen by the pipeline: %+v", q)
	}

	c2, err := f.dial(t, "dns.test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := askDoQ(c2, packQuery(t, "www.example.org.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	if q := f.echo.lastQuery(t); q.Token != "" {
		t.Errorf("token %q without one in the server name", q.Token)
	}
}

func TestDoQProtocolErrors(t *testing.T) {
	f := startDoQ(t, &DoQServer{})
	if _, err := f.dial(t, "dns.test", "dot"); err == nil {
		t.Error("handshake with ALPN dot succeeded; DoQ must require doq")
	}
	for name, wire := range map[string][]byte{
		"non-zero ID": func() []byte { w := packQuery(t, "www.example.org.", dns.TypeA); w[1] = 7; return w }(),
		"short frame": {0, 0, 0},
	} {
		c, err := f.dial(t, "dns.test")
		if err != nil {
			t.Fatal(err)
		}
		_, err = askDoQ(c, wire)
		var ae *quic.ApplicationError
		if !errors.As(err, &ae) || ae.ErrorCode != doqProtocolError {
			t.Errorf("%s: %v; want the connection closed with DOQ_PROTOCOL_ERROR", name, err)
		}
	}
	c, err := f.dial(t, "dns.test")
	if err != nil {
		t.Fatal(err)
	}
	_, err = askDoQ(c, packQuery(t, "drop.test.", dns.TypeA))
	var se *quic.StreamError
	if !errors.As(err, &se) || se.ErrorCode != doqRequestCancelled {
		t.Errorf("dropped query: %v; want the stream reset with DOQ_REQUEST_CANCELLED", err)
	}
	if _, err := askDoQ(c, packQuery(t, "www.example.org.", dns.TypeA)); err != nil {
		t.Errorf("the connection should survive a dropped query: %v", err)
	}
}

func TestDoQIdleTimeout(t *testing.T) {
	f := startDoQ(t, &DoQServer{IdleTimeout: 200 * time.Millisecond})
	c, err := f.dial(t, "dns.test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := askDoQ(c, packQuery(t, "www.example.org.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	// The server closes silently (RFC 9000 §10.1); the client would notice
	// only at its own timeout, at least 5 s in quic-go, so watch the server.
	waitFor(t, 3*time.Second, "idle connection closed by the server", func() bool { return f.srv.OpenConns() == 0 })
}

func TestDoQMaxConns(t *testing.T) {
	f := startDoQ(t, &DoQServer{MaxConns: 1})
	first, err := f.dial(t, "dns.test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := askDoQ(first, packQuery(t, "www.example.org.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	second, err := f.dial(t, "dns.test")
	if err == nil {
		_, err = askDoQ(second, packQuery(t, "www.example.org.", dns.TypeA))
	}
	var ae *quic.ApplicationError
	if !errors.As(err, &ae) || ae.ErrorCode != doqExcessiveLoad {
		t.Errorf("second connection: %v; want DOQ_EXCESSIVE_LOAD", err)
	}
}

// TestDoQHandshakeErrors: a client that offers the wrong ALPN, or does
// not trust the certificate, is a counted handshake failure; a good
// connection is not.
func TestDoQHandshakeErrors(t *testing.T) {
	var failed atomic.Int32
	f := startDoQ(t, &DoQServer{OnHandshakeError: func(transport string) {
		if transport == "quic" {
			failed.Add(1)
		}
	}})
	if _, err := f.dial(t, "dns.test", "h3"); err == nil {
		t.Fatal("ALPN h3 was accepted")
	}
	if _, err := f.dial(t, "not-in-the-certificate.example"); err == nil {
		t.Fatal("a certificate for another name was accepted")
	}
	good, err := f.dial(t, "dns.test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := askDoQ(good, packQuery(t, "www.example.org.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for failed.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := failed.Load(); n != 2 {
		t.Errorf("%d handshake failures counted, want 2", n)
	}
}

func TestTokenFromSNI(t *testing.T) {
	for sni, want := range map[string]string{
		testToken + ".dns.test":  testToken,
		testToken + ".DNS.Test.": testToken,
		"dns.test":               "",
		"a.b.dns.test":           "",
		"x.other.test":           "",
		"xdns.test":              "",
		"":                       "",
	} {
		if got := TokenFromSNI(sni, "dns.test"); got != want {
			t.Errorf("TokenFromSNI(%q) = %q, want %q", sni, got, want)
		}
	}
	if got := TokenFromSNI(testToken+".dns.test", ""); got != "" {
		t.Errorf("no server name: %q", got)
	}
}
