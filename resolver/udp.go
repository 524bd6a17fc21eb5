package resolver

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"syscall"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/dnsward/dnsward/metrics"
)

// UDP is served by our own read loops rather than miekg/dns's server: a
// loop answers cache hits from wire bytes without unpacking the query or
// starting a goroutine, and hands every other packet to the full pipeline.
// One socket per CPU with SO_REUSEPORT lets the kernel spread the load.

// listenUDP opens n sockets bound to addr with SO_REUSEPORT. With port 0
// the later sockets reuse the port the first one got.
func listenUDP(addr string, n int) ([]*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		return errors.Join(err, serr)
	}}
	var conns []*net.UDPConn
	for i := range n {
		pc, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, err
		}
		conns = append(conns, pc.(*net.UDPConn))
		if i == 0 {
			addr = pc.LocalAddr().String()
		}
	}
	return conns, nil
}

// serveUDP reads packets until conn is closed.
func (r *Resolver) serveUDP(conn *net.UDPConn) {
	defer r.readers.Done()
	buf := make([]byte, dns.MaxMsgSize)
	var s fastScratch
	s.local = metrics.AddrPortOf(conn.LocalAddr())
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ICMP-induced errors: the socket is still good
		}
		pkt := buf[:n]
		if out, ok := r.fastUDP(pkt, from, &s); ok {
			_, _ = conn.WriteToUDPAddrPort(out, from)
			continue
		}
		p := append([]byte(nil), pkt...) // buf is reused by the next read
		r.inflight.Add(1)
		go r.serveUDPSlow(conn, p, from)
	}
}

// serveUDPSlow unpacks a packet and runs the full pipeline. It applies
// the same header checks as miekg/dns's server does for TCP.
func (r *Resolver) serveUDPSlow(conn *net.UDPConn, pkt []byte, from netip.AddrPort) {
	defer r.inflight.Done()
	if len(pkt) < headerLen || pkt[2]&0x80 != 0 {
		return // too short to answer, or a response: never reply to those
	}
	w := &udpWriter{conn: conn, to: from}
	req := new(dns.Msg)
	if err := req.Unpack(pkt); err != nil || headerRejected(pkt) {
		_, _ = conn.WriteToUDPAddrPort(formErr(pkt), from)
		return
	}
	r.ServeDNS(w, req)
}

// headerRejected mirrors miekg/dns's default accept rules: one question,
// and no more records than a query can carry.
func headerRejected(pkt []byte) bool {
	qd, an, ns, ar := binary.BigEndian.Uint16(pkt[4:]), binary.BigEndian.Uint16(pkt[6:]),
		binary.BigEndian.Uint16(pkt[8:]), binary.BigEndian.Uint16(pkt[10:])
	opcode := (pkt[2] >> 3) & 0xF
	return opcode == dns.OpcodeQuery && (qd != 1 || an > 1 || ns > 1 || ar > 2)
}

// formErr is a header-only FORMERR reply echoing the query's ID and opcode.
func formErr(pkt []byte) []byte {
	out := make([]byte, headerLen)
	copy(out, pkt[:2])
	out[2] = 0x80 | pkt[2]&0x78 | pkt[2]&0x01 // QR, opcode, RD
	out[3] = dns.RcodeFormatError
	return out
}

// udpWriter is the dns.ResponseWriter for packets from our UDP loops.
type udpWriter struct {
	conn *net.UDPConn
	to   netip.AddrPort
}

func (w *udpWriter) LocalAddr() net.Addr  { return w.conn.LocalAddr() }
func (w *udpWriter) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(w.to) }
func (w *udpWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
func (w *udpWriter) Write(b []byte) (int, error) { return w.conn.WriteToUDPAddrPort(b, w.to) }
func (w *udpWriter) Close() error                { return nil }
func (w *udpWriter) TsigStatus() error           { return nil }
func (w *udpWriter) TsigTimersOnly(bool)         {}
func (w *udpWriter) Hijack()                     {}
