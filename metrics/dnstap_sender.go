package metrics

import (
	"net"
	"net/netip"
	"time"

	dnstap "github.com/dnstap/golang-dnstap"
	"google.golang.org/protobuf/proto"
)

// dnstapSender owns the connection to the reader. Only the writer
// goroutine uses it.
type dnstapSender struct {
	d        *Dnstap
	conn     net.Conn
	w        dnstapWriter // nil while disconnected
	pending  uint64       // frames written since the last successful flush
	nextDial time.Time
	down     bool   // the last attempt failed (logged once per outage)
	buf      []byte // reused for marshalling
}

// connect makes sure there is a session, dialling at most once per retry
// interval and never after Close.
func (s *dnstapSender) connect() bool {
	if s.w != nil {
		return true
	}
	if s.d.ctx.Err() != nil || time.Now().Before(s.nextDial) {
		return false
	}
	conn, w, err := dialDnstap(s.d.ctx, s.d.network, s.d.addr)
	if err != nil {
		s.nextDial = time.Now().Add(s.d.retry)
		if !s.down && s.d.ctx.Err() == nil {
			s.d.log.Warn("dnstap: reader unreachable; dropping messages until it is back", "reader", s.d.addr, "err", err)
		}
		s.down = true
		return false
	}
	s.conn, s.w, s.down = conn, w, false
	s.d.log.Info("dnstap: connected to reader", "reader", s.d.addr)
	return true
}

// send writes e's frames into the session's buffer; flush sends them.
func (s *dnstapSender) send(e *dnstapEvent, deadline time.Time) {
	n := e.frames()
	if !s.connect() {
		s.d.dropped.Add(n)
		return
	}
	_ = s.conn.SetWriteDeadline(deadline)
	for i, m := range s.d.messages(e) {
		var err error
		if s.buf, err = (proto.MarshalOptions{}).MarshalAppend(s.buf[:0], m); err != nil {
			s.d.log.Debug("dnstap: encoding a message failed", "err", err)
			s.d.dropped.Add(1)
			continue
		}
		if _, err := s.w.WriteFrame(s.buf); err != nil {
			s.fail(err, n-uint64(i))
			return
		}
		s.pending++
	}
}

func (s *dnstapSender) flush(deadline time.Time) {
	if s.w == nil || s.pending == 0 {
		return
	}
	_ = s.conn.SetWriteDeadline(deadline)
	if err := s.w.Flush(); err != nil {
		s.fail(err, 0)
		return
	}
	s.pending = 0
}

// fail drops the session after a write error; lost counts the frames of
// the current event not written. The next event dials again at once.
func (s *dnstapSender) fail(err error, lost uint64) {
	s.d.dropped.Add(s.pending + lost)
	s.d.log.Warn("dnstap: writing to reader failed; reconnecting", "reader", s.d.addr, "err", err)
	_ = s.conn.Close()
	s.conn, s.w, s.pending = nil, nil, 0
}

// drain sends what is queued, then ends the session with the Frame
// Streams STOP/FINISH exchange, all before deadline.
func (s *dnstapSender) drain(deadline time.Time) {
	for {
		select {
		case e := <-s.d.in:
			s.send(&e, deadline)
		default:
			s.flush(deadline)
			if s.w != nil {
				_ = s.conn.SetDeadline(deadline)
				if err := s.w.Close(); err != nil {
					s.d.log.Debug("dnstap: closing the session failed", "reader", s.d.addr, "err", err)
				}
				_ = s.conn.Close()
				s.conn, s.w = nil, nil
			}
			return
		}
	}
}

// messages builds the CLIENT_QUERY and CLIENT_RESPONSE messages of e.
func (d *Dnstap) messages(e *dnstapEvent) []*dnstap.Dnstap {
	out := make([]*dnstap.Dnstap, 0, 2)
	if e.query != nil {
		m := d.message(e, dnstap.Message_CLIENT_QUERY)
		m.QueryMessage = e.query
		out = append(out, d.envelope(m))
	}
	if e.response != nil {
		m := d.message(e, dnstap.Message_CLIENT_RESPONSE)
		setTime(&m.ResponseTimeSec, &m.ResponseTimeNsec, e.responseTime)
		m.ResponseMessage = e.response
		out = append(out, d.envelope(m))
	}
	return out
}

func (d *Dnstap) envelope(m *dnstap.Message) *dnstap.Dnstap {
	return &dnstap.Dnstap{Identity: d.identity, Version: d.version, Type: dnstap.Dnstap_MESSAGE.Enum(), Message: m}
}

// message fills what both messages share: client ("query") and listener
// ("response") addresses, transport and the query time.
func (d *Dnstap) message(e *dnstapEvent, typ dnstap.Message_Type) *dnstap.Message {
	m := &dnstap.Message{Type: typ.Enum(), SocketProtocol: dnstap.SocketProtocol_UDP.Enum()}
	if e.tcp {
		m.SocketProtocol = dnstap.SocketProtocol_TCP.Enum()
	}
	if c := e.client; c.IsValid() {
		m.SocketFamily = dnstap.SocketFamily_INET.Enum()
		if c.Addr().Is6() {
			m.SocketFamily = dnstap.SocketFamily_INET6.Enum()
		}
		m.QueryAddress, m.QueryPort = c.Addr().AsSlice(), port(c)
		// A listener on the other family (a dual-stack socket) is left out.
		if sv := e.server; sv.IsValid() && sv.Addr().Is4() == c.Addr().Is4() {
			m.ResponseAddress, m.ResponsePort = sv.Addr().AsSlice(), port(sv)
		}
	}
	setTime(&m.QueryTimeSec, &m.QueryTimeNsec, e.queryTime)
	return m
}

// port returns a's port for a message, nil (left out) when unknown.
func port(a netip.AddrPort) *uint32 {
	if a.Port() == 0 {
		return nil
	}
	return proto.Uint32(uint32(a.Port()))
}

func setTime(sec **uint64, nsec **uint32, t time.Time) {
	if t.IsZero() {
		return
	}
	*sec, *nsec = proto.Uint64(uint64(t.Unix())), proto.Uint32(uint32(t.Nanosecond()))
}
