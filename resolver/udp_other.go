//go:build !linux

package resolver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/dnsward/dnsward/internal/dnswire"
	"github.com/dnsward/dnsward/resolver/upstream"
)

// udpSocket outside Linux is a net.UDPConn read through Go's poller:
// slower, the same behaviour, so dnsward builds and its tests run on a
// developer's macOS or FreeBSD machine. A wildcard socket still replies
// from the address each query came to, through x/net's control messages.
type udpSocket struct {
	conn     *net.UDPConn
	local    netip.AddrPort
	wildcard bool
	closed   atomic.Bool
}

type udpIO struct {
	buf     []byte
	from    netip.AddrPort
	dst     netip.Addr
	ifindex int32
	oob     [128]byte
}

// udpBatch outside Linux is one packet per read, its reply written at once.
const udpBatchSize = 1

// udpCanDrain: net.UDPConn has no read that does not wait, so each socket
// has its leader loop only.
const udpCanDrain = false

type udpBatch struct {
	io udpIO
	n  int
}

func newUDPBatch() *udpBatch {
	return &udpBatch{io: udpIO{buf: make([]byte, dnswire.MaxMessageSize)}}
}

func (b *udpBatch) slot(int) (*udpIO, int) { return &b.io, b.n }

func (u *udpSocket) readBatch(b *udpBatch, wait bool) (int, error) {
	if !wait {
		return 0, errors.New("no lanes outside Linux")
	}
	n, err := u.read(&b.io)
	if err != nil {
		return 0, err
	}
	b.n = n
	return 1, nil
}

func (b *udpBatch) queue(u *udpSocket, out []byte, from *udpIO) {
	_ = u.write(out, from.from, from.dst, from.ifindex, from)
}

func (u *udpSocket) flush(*udpBatch) {}

func listenUDPSocket(addr netip.AddrPort, v6only bool, rcvbuf, _ int) (*udpSocket, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if addr.Addr().Is6() {
				serr = setV6Only(fd, v6only)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp", addr.String())
	if err != nil {
		return nil, err
	}
	conn := pc.(*net.UDPConn)
	if rcvbuf > 0 {
		_ = conn.SetReadBuffer(rcvbuf) // the kernel may grant less; nothing here tells how much
	}
	u := &udpSocket{conn: conn, local: conn.LocalAddr().(*net.UDPAddr).AddrPort(), wildcard: addr.Addr().IsUnspecified()}
	if u.wildcard {
		_ = ipv4.NewPacketConn(conn).SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true)
		_ = ipv6.NewPacketConn(conn).SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true)
	}
	return u, nil
}

func (u *udpSocket) LocalAddr() net.Addr { return u.conn.LocalAddr() }
func (u *udpSocket) Close() error        { u.closed.Store(true); return u.conn.Close() }
func (u *udpSocket) release()            {}
func (u *udpSocket) receiveBuffer() int  { return -1 } // unknown
func (u *udpSocket) drops() uint64       { return 0 }  // not read outside Linux

func (u *udpSocket) read(io *udpIO) (int, error) {
	n, oobn, _, from, err := u.conn.ReadMsgUDPAddrPort(io.buf, io.oob[:])
	if err != nil {
		return 0, err
	}
	io.from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	io.dst, io.ifindex = netip.Addr{}, 0
	if u.wildcard {
		var cm6 ipv6.ControlMessage
		var cm4 ipv4.ControlMessage
		if cm6.Parse(io.oob[:oobn]) == nil && cm6.Dst != nil {
			io.dst, _ = netip.AddrFromSlice(cm6.Dst)
			io.ifindex = int32(cm6.IfIndex)
		} else if cm4.Parse(io.oob[:oobn]) == nil && cm4.Dst != nil {
			io.dst, _ = netip.AddrFromSlice(cm4.Dst)
			io.ifindex = int32(cm4.IfIndex)
		}
		io.dst = io.dst.Unmap()
	}
	return n, nil
}

func (u *udpSocket) write(b []byte, to netip.AddrPort, src netip.Addr, ifindex int32, _ *udpIO) error {
	var oob []byte
	if u.wildcard && src.IsValid() {
		if src.Is4() {
			oob = (&ipv4.ControlMessage{Src: src.AsSlice()}).Marshal()
		} else {
			oob = (&ipv6.ControlMessage{Src: src.AsSlice(), IfIndex: int(ifindex)}).Marshal()
		}
	}
	_, _, err := u.conn.WriteMsgUDPAddrPort(b, oob, to)
	return err
}

// Outside Linux read loops have no lanes: their misses use the forwarder's
// own poller.
type loopPoll struct{}

func newLoopPoll(*udpSocket, *upstream.Lane) (*loopPoll, error) {
	return nil, errors.New("no lanes outside Linux")
}
func (lp *loopPoll) wait(int) bool { return false }
func (lp *loopPoll) stopClients()  {}
func (lp *loopPoll) close()        {}
