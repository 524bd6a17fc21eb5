package upstream

import (
	"math/rand/v2"
	"net/netip"
)

// udpReadSize bounds one UDP reply. We advertise 1232 bytes, but servers that
// ignore EDNS sizes still send up to 4096; a bigger datagram fails to unpack.
const udpReadSize = 4096

// transport runs attempts at one upstream server.
type transport interface {
	// start begins the attempt and reports through a.finish, from any
	// goroutine; it may report before it returns (a socket error).
	start(a *attempt)
	close() error
}

// udpTransport sends each query from a fresh socket (a fresh random
// source port, as Unbound does; with the random ID that is 32 bits an
// off-path spoofer must guess) through the forwarder's poller, and asks
// again over TCP when the reply is truncated.
type udpTransport struct {
	addr   netip.AddrPort
	poller *udpPoller
	tcp    *streamTransport
}

func newUDPTransport(addr string, p *udpPoller, tcp *streamTransport) *udpTransport {
	return &udpTransport{addr: netip.MustParseAddrPort(addr), poller: p, tcp: tcp}
}

func (t *udpTransport) start(a *attempt) {
	if a.poller != nil {
		a.poller.send(a, t) // the exchange's lane
		return
	}
	t.poller.send(a, t)
}
func (t *udpTransport) close() error { return t.tcp.close() }

// replied hands a reply datagram on: checked and unpacked, or retried
// over TCP when truncated (the attempt's deadline still holds).
func (t *udpTransport) replied(a *attempt, buf []byte, id uint16) {
	msg, err := parseReply(buf, a.ex.wire, id, a.ex.qlen)
	if err == nil && msg.Truncated {
		startBlocking(a, t.tcp.exchange)
		return
	}
	a.finish(msg, err, false)
}

func randomID() uint16 { return uint16(rand.Uint32()) }
