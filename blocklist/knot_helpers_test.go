package blocklist

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dnsward/dnsward/internal/dnstest"
)

// notifyListener is a UDP and TCP socket of the test's own that hands
// each NOTIFY to an engine, as the DNS listener will (knotd 3.2 sends
// NOTIFY over TCP, BIND over UDP). The engine is set once it exists: the
// primary must know the listener's address first.
type notifyListener struct {
	addr   string
	engine atomic.Pointer[Engine]
}

func newNotifyListener(t testing.TB) *notifyListener {
	t.Helper()
	pc, ln := dnstest.ListenUDPAndTCP(t)
	l := &notifyListener{addr: pc.LocalAddr().String()}
	t.Cleanup(func() { pc.Close(); ln.Close() })
	go l.serveUDP(pc)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed
			}
			go l.serveTCP(c)
		}
	}()
	return l
}

func (l *notifyListener) handle(msg []byte, from net.Addr) []byte {
	e := l.engine.Load()
	if e == nil {
		return nil
	}
	ap, err := netip.ParseAddrPort(from.String())
	if err != nil {
		return nil
	}
	return e.HandleNotify(msg, ap.Addr())
}

func (l *notifyListener) serveUDP(pc net.PacketConn) {
	buf := make([]byte, 65535)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return // closed
		}
		if reply := l.handle(buf[:n], from); reply != nil {
			pc.WriteTo(reply, from)
		}
	}
}

// serveTCP answers length-prefixed messages until the peer closes or is
// idle for 5 s.
func (l *notifyListener) serveTCP(c net.Conn) {
	defer c.Close()
	for {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(n[:]))
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		reply := l.handle(msg, c.RemoteAddr())
		if reply == nil {
			return
		}
		c.Write(binary.BigEndian.AppendUint16(nil, uint16(len(reply))))
		c.Write(reply)
	}
}
