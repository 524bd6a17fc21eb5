package upstream

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// udpReadSize bounds one UDP reply. We advertise 1232 bytes, but servers that
// ignore EDNS sizes still send up to 4096; a bigger datagram fails to unpack.
const udpReadSize = 4096

// aLongTimeAgo is a deadline in the past: setting it wakes a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

type transport interface {
	exchange(ctx context.Context, deadline time.Time, wire []byte, q dns.Question) (*dns.Msg, error)
	close() error
}

// udpTransport sends each query from a fresh socket (random source port) and
// retries over TCP to the same server when the reply is truncated.
type udpTransport struct {
	addr netip.AddrPort
	tcp  *streamTransport
	bufs sync.Pool
}

func newUDPTransport(addr string, tcp *streamTransport) *udpTransport {
	t := &udpTransport{addr: netip.MustParseAddrPort(addr), tcp: tcp}
	t.bufs.New = func() any { b := make([]byte, udpReadSize); return &b }
	return t
}

func (t *udpTransport) exchange(ctx context.Context, deadline time.Time, wire []byte, q dns.Question) (*dns.Msg, error) {
	msg, err := t.exchangeUDP(ctx, deadline, wire, q)
	if err == nil && msg.Truncated {
		return t.tcp.exchange(ctx, deadline, wire, q)
	}
	return msg, err
}

func (t *udpTransport) exchangeUDP(ctx context.Context, deadline time.Time, wire []byte, q dns.Question) (*dns.Msg, error) {
	conn, err := dialFreshUDP(t.addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(aLongTimeAgo) })
	defer stop()

	out, id := withID(wire)
	bufp := t.bufs.Get().(*[]byte)
	defer t.bufs.Put(bufp)
	n, err := conn.sendAndRead(out, *bufp)
	// Replies with the wrong ID or question may be spoofed: drop them and keep
	// listening for the real one until the deadline.
	var rejected error
	for ; ; n, err = conn.read(*bufp) {
		if err != nil {
			if rejected != nil && errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil {
				return nil, rejected
			}
			return nil, err
		}
		msg, err := parseReply((*bufp)[:n], id, q)
		if err != nil {
			rejected = err
			continue
		}
		return msg, nil
	}
}

func (t *udpTransport) close() error { return t.tcp.close() }

// udpConn is the part of a connected UDP socket an exchange uses.
type udpConn interface {
	sendAndRead(b, buf []byte) (int, error) // send b, read the first reply
	read(buf []byte) (int, error)           // read the next datagram
	SetDeadline(t time.Time) error
	Close() error
}

// netUDP is a udpConn on net's socket, where raw sockets are not used.
type netUDP struct{ *net.UDPConn }

func dialNetUDP(addr netip.AddrPort) (udpConn, error) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, err
	}
	return netUDP{c}, nil
}

func (c netUDP) sendAndRead(b, buf []byte) (int, error) {
	if _, err := c.Write(b); err != nil {
		return 0, err
	}
	return c.Read(buf)
}

func (c netUDP) read(buf []byte) (int, error) { return c.Read(buf) }
