package resolver

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Stream transports (TCP, and DNS over TLS on top of it) carry messages
// with a two-byte length prefix (RFC 1035 §4.2.2). A connection reads
// queries one after another and hands each to the pipeline without
// waiting for the previous answer; answers are written as they are
// ready, out of order when a cache hit overtakes a miss (RFC 7766 §6.2.1.1).

const (
	// maxPipelined bounds one connection's queries in flight; past it the
	// connection stops reading until answers have gone out.
	maxPipelined = 64
	// messageTimeout bounds reading one message once its first byte came,
	// so a client that sends a length and stalls (slow-loris) is cut off.
	messageTimeout = 3 * time.Second
	// writeTimeout bounds writing one answer to a client that stops reading.
	writeTimeout = 5 * time.Second
)

// streamListener accepts connections for one address and transport.
type streamListener struct {
	r         *Resolver
	l         net.Listener
	transport Transport
	cfg       TCPConfig

	mu        sync.Mutex
	conns     map[*streamConn]struct{}
	perClient map[netip.Addr]int
	closing   bool
	running   sync.WaitGroup
}

func (r *Resolver) newStreamListener(l net.Listener, t Transport) *streamListener {
	return &streamListener{r: r, l: l, transport: t, cfg: r.cfg.TCP,
		conns: make(map[*streamConn]struct{}), perClient: make(map[netip.Addr]int)}
}

// serve accepts until the listener is closed.
func (sl *streamListener) serve() {
	for {
		c, err := sl.l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			sl.r.log.Warn("accepting a connection failed", "err", err)
			time.Sleep(50 * time.Millisecond) // e.g. out of file descriptors: let some close
			continue
		}
		if sc := sl.admit(c); sc != nil {
			go sc.serve()
		}
	}
}

// admit registers a new connection, or closes it when the listener is
// full or the client already holds its share.
func (sl *streamListener) admit(c net.Conn) *streamConn {
	peer := addrPortOf(c.RemoteAddr())
	sc := &streamConn{sl: sl, c: c, peer: peer, client: peer.Addr().Unmap(), local: addrPortOf(c.LocalAddr()),
		slots: make(chan struct{}, maxPipelined)}
	if tc, ok := c.(*tls.Conn); ok && sl.r.listeners.enc.certs != nil { // a device token in the server name
		sc.token = TokenFromSNI(tc.ConnectionState().ServerName, sl.r.listeners.enc.certs.ServerName())
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.closing || len(sl.conns) >= sl.cfg.MaxConnections || sl.perClient[sc.client] >= sl.cfg.MaxPerClient {
		c.Close()
		return nil
	}
	sl.conns[sc] = struct{}{}
	sl.perClient[sc.client]++
	sl.running.Add(1)
	return sc
}

func (sl *streamListener) forget(sc *streamConn) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	delete(sl.conns, sc)
	if sl.perClient[sc.client]--; sl.perClient[sc.client] <= 0 {
		delete(sl.perClient, sc.client)
	}
	sl.running.Done()
}

// close stops accepting and wakes every connection's reader, which then
// finishes the queries in flight and closes.
func (sl *streamListener) close() {
	sl.mu.Lock()
	sl.closing = true
	for sc := range sl.conns {
		_ = sc.c.SetReadDeadline(time.Unix(1, 0))
	}
	sl.mu.Unlock()
	sl.l.Close()
}

func (sl *streamListener) wait() { sl.running.Wait() }

// streamConn is one client connection.
type streamConn struct {
	sl     *streamListener
	c      net.Conn
	peer   netip.AddrPort
	client netip.Addr
	token  string // from the TLS server name ({token}.{server_name})
	local  netip.AddrPort
	slots  chan struct{} // one per query in flight

	wmu  sync.Mutex
	wbuf []byte
}

// serve reads queries until the client closes, goes idle, stalls or
// sends something that is not DNS framing.
func (sc *streamConn) serve() {
	defer sc.sl.forget(sc)
	defer sc.c.Close()
	defer sc.drain()
	s := newScratch()
	var msg []byte
	for {
		n, err := sc.readLength()
		if err != nil || n == 0 {
			return
		}
		if cap(msg) < n {
			msg = make([]byte, n)
		}
		_ = sc.c.SetReadDeadline(time.Now().Add(messageTimeout))
		if _, err := io.ReadFull(sc.c, msg[:n]); err != nil {
			return
		}
		sc.slots <- struct{}{}
		req := request{pkt: msg[:n], client: sc.client, token: sc.token, transport: sc.sl.transport, from: sc, peer: sc.peer, local: sc.local}
		if out, pending := sc.sl.r.serve(&req, s); !pending {
			sc.reply(out, s)
		}
	}
}

// readLength waits for the next message's two-byte length: up to the
// idle timeout while nothing is in flight, longer while answers are
// still to come (the connection is not idle then).
func (sc *streamConn) readLength() (int, error) {
	var b [2]byte
	for {
		_ = sc.c.SetReadDeadline(time.Now().Add(sc.sl.cfg.IdleTimeout))
		_, err := io.ReadFull(sc.c, b[:1])
		if err == nil {
			break
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || len(sc.slots) == 0 || sc.sl.isClosing() {
			return 0, err
		}
	}
	_ = sc.c.SetReadDeadline(time.Now().Add(messageTimeout))
	if _, err := io.ReadFull(sc.c, b[1:]); err != nil {
		return 0, err
	}
	return int(b[0])<<8 | int(b[1]), nil
}

func (sl *streamListener) isClosing() bool {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return sl.closing
}

// reply writes one answer, framed, and frees its slot; nil writes nothing.
func (sc *streamConn) reply(out []byte, _ *scratch) {
	defer func() { <-sc.slots }()
	if out == nil {
		return
	}
	sc.wmu.Lock()
	defer sc.wmu.Unlock()
	sc.wbuf = append(append(sc.wbuf[:0], byte(len(out)>>8), byte(len(out))), out...)
	_ = sc.c.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := sc.c.Write(sc.wbuf); err != nil {
		sc.c.Close() // the reader sees it and ends the connection
	}
}

// drain waits until every query of the connection has been answered.
func (sc *streamConn) drain() {
	for range cap(sc.slots) {
		sc.slots <- struct{}{}
	}
}
