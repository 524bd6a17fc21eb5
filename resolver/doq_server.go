package resolver

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// DNS over QUIC (RFC 9250): ALPN "doq", one query per bidirectional
// stream, each message with a 2-byte length prefix and ID 0.
const DoQALPN = "doq"

// RFC 9250 §4.3 error codes.
const (
	doqNoError          quic.ApplicationErrorCode = 0x0
	doqInternalError    quic.ApplicationErrorCode = 0x1
	doqProtocolError    quic.ApplicationErrorCode = 0x2
	doqRequestCancelled quic.StreamErrorCode      = 0x3
	doqExcessiveLoad    quic.ApplicationErrorCode = 0x4
)

// Defaults of DoQServer.
const (
	DefaultDoQIdleTimeout = 30 * time.Second
	DefaultDoQMaxStreams  = 100 // concurrent queries per connection
	doqStreamTimeout      = 5 * time.Second
)

// DoQServer serves DoQ on one UDP socket and hands every query to Handle.
type DoQServer struct {
	Handle     QueryHandler
	TLS        *tls.Config // NextProtos is set to ["doq"]
	ServerName string      // tls.server_name: the SNI label in front of it is a device token
	// IdleTimeout closes a connection without traffic; MaxStreams bounds
	// its concurrent queries; MaxConns the connections (past it a new one
	// is closed with DOQ_EXCESSIVE_LOAD). Zero values get the defaults.
	IdleTimeout      time.Duration
	MaxStreams       int64
	MaxConns         int
	HandshakeTimeout time.Duration
	Logger           *slog.Logger
	// OnHandshakeError, when set, is told of each connection whose
	// handshake failed (TLS, ALPN, or the handshake timeout).
	OnHandshakeError func(transport string)

	open atomic.Int64
}

// Serve accepts connections on pc until ctx is done or pc fails. It
// closes what it opened (not pc) before returning.
func (s *DoQServer) Serve(ctx context.Context, pc net.PacketConn) error {
	s.defaults()
	tr := &quic.Transport{Conn: pc, ConnContext: s.watchHandshake(ctx)}
	defer tr.Close()
	tc := s.TLS.Clone()
	tc.NextProtos = []string{DoQALPN}
	ln, err := tr.Listen(tc, &quic.Config{
		HandshakeIdleTimeout:  s.HandshakeTimeout,
		MaxIdleTimeout:        s.IdleTimeout,
		MaxIncomingStreams:    s.MaxStreams,
		MaxIncomingUniStreams: -1,    // DoQ uses none
		Allow0RTT:             false, // 0-RTT data can be replayed
	})
	if err != nil {
		return err
	}
	defer ln.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if accepted, ok := conn.Context().Value(handshakeDoneKey{}).(*atomic.Bool); ok {
			accepted.Store(true)
		}
		if s.open.Add(1) > int64(s.MaxConns) {
			s.open.Add(-1)
			_ = conn.CloseWithError(doqExcessiveLoad, "too many connections")
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.open.Add(-1)
			s.serveConn(ctx, conn)
		}()
	}
}

// handshakeDoneKey holds, in a connection's context, whether Accept
// handed it to us, i.e. its handshake completed.
type handshakeDoneKey struct{}

// watchHandshake counts a failed handshake when quic-go ends a
// connection's context (which it does when a handshake fails, too)
// before Accept returned the connection. quic-go tells of failed
// handshakes no other way short of a tracer that sees every packet.
// Connections ended by our own shutdown are not counted.
func (s *DoQServer) watchHandshake(serving context.Context) func(context.Context, *quic.ClientInfo) (context.Context, error) {
	return func(ctx context.Context, _ *quic.ClientInfo) (context.Context, error) {
		accepted := new(atomic.Bool)
		context.AfterFunc(ctx, func() {
			if !accepted.Load() && serving.Err() == nil && s.OnHandshakeError != nil {
				s.OnHandshakeError(TransportQUIC.String())
			}
		})
		return context.WithValue(ctx, handshakeDoneKey{}, accepted), nil
	}
}

func (s *DoQServer) defaults() {
	if s.IdleTimeout <= 0 {
		s.IdleTimeout = DefaultDoQIdleTimeout
	}
	if s.MaxStreams <= 0 {
		s.MaxStreams = DefaultDoQMaxStreams
	}
	if s.MaxConns <= 0 {
		s.MaxConns = DefaultMaxConns
	}
	if s.HandshakeTimeout <= 0 {
		s.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
}

// serveConn answers the streams of one connection until it closes.
func (s *DoQServer) serveConn(ctx context.Context, conn *quic.Conn) {
	token := TokenFromSNI(conn.ConnectionState().TLS.ServerName, s.ServerName)
	base := Query{Client: addrPortOf(conn.RemoteAddr()), Local: addrPortOf(conn.LocalAddr()), Transport: TransportQUIC, Token: token}
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		st, err := conn.AcceptStream(ctx)
		if err != nil {
			return // closed by the peer, the idle timeout, or a protocol error below
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveStream(ctx, conn, st, base)
		}()
	}
}

// serveStream reads one query, answers it and closes the stream.
func (s *DoQServer) serveStream(ctx context.Context, conn *quic.Conn, st *quic.Stream, q Query) {
	_ = st.SetDeadline(time.Now().Add(doqStreamTimeout))
	wire, err := readFramed(st)
	if err != nil {
		if errors.Is(err, errBadFrame) {
			_ = conn.CloseWithError(doqProtocolError, err.Error())
		}
		st.CancelRead(quic.StreamErrorCode(doqNoError))
		st.CancelWrite(doqRequestCancelled)
		return
	}
	if binary.BigEndian.Uint16(wire) != 0 { // RFC 9250 §4.2.1: a connection error
		_ = conn.CloseWithError(doqProtocolError, "message ID is not 0")
		return
	}
	q.Wire = wire
	qctx, cancel := context.WithTimeout(ctx, doqStreamTimeout)
	reply := s.Handle(qctx, q)
	cancel()
	if reply == nil {
		st.CancelWrite(doqRequestCancelled)
		return
	}
	out := make([]byte, 2+len(reply))
	binary.BigEndian.PutUint16(out, uint16(len(reply)))
	copy(out[2:], reply)
	if _, err := st.Write(out); err != nil {
		s.Logger.Debug("DoQ: writing a reply failed", "client", q.Client, "error", err)
		return
	}
	_ = st.Close() // FIN: the reply is complete
}

var errBadFrame = errors.New("DoQ stream does not hold one length-prefixed DNS message")

// readFramed reads the 2-byte length and the message it announces.
func readFramed(r io.Reader) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(l[:]))
	if n < minDNSMessage {
		return nil, errBadFrame
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errBadFrame // FIN before the message ended
		}
		return nil, err
	}
	return msg, nil
}

// OpenConns is how many connections the server holds.
func (s *DoQServer) OpenConns() int { return int(s.open.Load()) }

// TokenFromSNI is the device token in a DoT/DoQ server name: the first
// label of {token}.{serverName}. Any other name carries none.
func TokenFromSNI(sni, serverName string) string {
	if serverName == "" {
		return ""
	}
	sni = strings.TrimSuffix(strings.ToLower(sni), ".")
	tok, ok := strings.CutSuffix(sni, "."+strings.ToLower(serverName))
	if !ok || tok == "" || strings.Contains(tok, ".") {
		return ""
	}
	return tok
}
