package resolver

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/metrics"
)

// UDP is served by our own read loops rather than miekg/dns's server: a
// loop answers cache hits and blocked names from wire bytes without
// unpacking the query or starting a goroutine, and hands every other
// packet to the full pipeline. One socket per CPU with SO_REUSEPORT lets
// the kernel spread the load.

// udpSocket is one UDP socket a read loop serves.
type udpSocket interface {
	readFrom(buf []byte, from *netip.AddrPort) (int, error)
	writeTo(b []byte, to netip.AddrPort) error
	LocalAddr() net.Addr
	Close() error // stops the reader
	release()     // frees the socket once nothing uses it
}

// listenUDP opens n sockets bound to addr with SO_REUSEPORT. With port 0
// the later sockets reuse the port the first one got.
func listenUDP(addr string, n int) ([]udpSocket, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		host, port, serr := net.SplitHostPort(addr)
		if serr != nil || host != "" {
			return nil, err
		}
		// ":53" means every address, as with Go's net.
		if ap, err = netip.ParseAddrPort("[::]:" + port); err != nil {
			return nil, err
		}
	}
	var socks []udpSocket
	for range n {
		u, err := listenRawUDP(ap)
		if err != nil {
			for _, s := range socks {
				s.release()
			}
			return nil, err
		}
		socks = append(socks, u)
		ap = netip.AddrPortFrom(ap.Addr(), u.local.Port())
	}
	return socks, nil
}

// serveUDP reads packets until the socket is closed, blocking its thread
// in the kernel (see rawUDP). While the loop has upstream queries of its
// own in flight (see directLoop) it waits in epoll for clients and replies
// alike; otherwise it blocks in recvfrom.
func (r *Resolver) serveUDP(u udpSocket) {
	defer r.readers.Done()
	buf := make([]byte, dns.MaxMsgSize)
	s := &fastScratch{local: metrics.AddrPortOf(u.LocalAddr())}
	d := r.newDirectLoop(u)
	if d != nil {
		defer d.close()
	}
	var from netip.AddrPort
	var yield yielder
	for {
		yield.maybe()
		if d != nil && d.busy() {
			if d.poll(s) {
				for range directReadBatch {
					n, err := d.sock.readNow(buf, &from)
					if err != nil {
						break // nothing more queued, or closed
					}
					r.handlePacket(u, buf[:n], from, s, d)
				}
			}
			continue
		}
		n, err := u.readFrom(buf, &from)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ICMP-induced errors: the socket is still good
		}
		r.handlePacket(u, buf[:n], from, s, d)
	}
}

// yielder lets a read loop pass through the scheduler every few
// milliseconds. A goroutine that never does is seen by the runtime's
// sysmon as running too long: every 10 ms it takes the loop's P away,
// and after each such take it polls every 20 µs again, about 4,000 wake-ups
// a second at 20k QPS. The loop is not locked to its thread, so a yield is
// a cheap requeue rather than a thread hand-off.
type yielder struct {
	n    uint
	last int64 // nanotime of the last yield
}

const yieldEvery = 4 * time.Millisecond

func (y *yielder) maybe() {
	y.n++
	if y.n%8 != 0 { // reading the clock costs about as much as a packet of bookkeeping
		return
	}
	if now := time.Now().UnixNano(); now-y.last >= int64(yieldEvery) {
		y.last = now
		runtime.Gosched()
	}
}

// handlePacket answers from the fast path, sends a miss upstream from the
// loop, or hands the packet to the full pipeline.
func (r *Resolver) handlePacket(u udpSocket, pkt []byte, from netip.AddrPort, s *fastScratch, d *directLoop) {
	if out, ok := r.fastUDP(pkt, from, s); ok {
		_ = u.writeTo(out, from)
		return
	}
	if s.miss && d != nil && d.send(pkt, from, s) {
		return
	}
	r.toSlow(u, pkt, from)
}

// toSlow runs pkt through the full pipeline on a worker.
func (r *Resolver) toSlow(u udpSocket, pkt []byte, from netip.AddrPort) {
	select {
	case r.slowSlots <- struct{}{}:
	default:
		// Every slot waits on upstreams (a flood of unique names, or
		// upstreams down): refuse more work rather than pile up
		// goroutines and memory. SERVFAIL tells the stub to retry.
		r.overloaded(u, pkt, from)
		return
	}
	r.inflight.Add(1)
	// pkt may be the read loop's buffer: the worker gets a copy.
	r.workers.dispatch(slowPacket{conn: u, pkt: append([]byte(nil), pkt...), from: from})
}

// serveUDPSlow unpacks a packet and runs the full pipeline. It applies
// the same header checks as miekg/dns's server does for TCP.
func (r *Resolver) serveUDPSlow(conn udpSocket, pkt []byte, from netip.AddrPort) {
	defer r.inflight.Done()
	defer func() { <-r.slowSlots }()
	if len(pkt) < headerLen || pkt[2]&0x80 != 0 {
		return // too short to answer, or a response: never reply to those
	}
	w := &udpWriter{conn: conn, to: from}
	req := new(dns.Msg)
	if err := req.Unpack(pkt); err != nil || headerRejected(pkt) {
		_ = conn.writeTo(formErr(pkt), from)
		return
	}
	r.ServeDNS(w, req)
}

// overloaded answers a query the slow path has no room for with a
// header-only SERVFAIL, and counts it.
func (r *Resolver) overloaded(u udpSocket, pkt []byte, from netip.AddrPort) {
	if len(pkt) < headerLen || pkt[2]&0x80 != 0 {
		return
	}
	out := formErr(pkt)
	out[3] = dns.RcodeServerFailure
	_ = u.writeTo(out, from)
	if r.rec != nil {
		r.rec.Query(&metrics.QueryEvent{Time: r.now(), Client: from.Addr().Unmap(), Proto: "udp",
			Outcome: metrics.OutcomeError, Rcode: dns.RcodeServerFailure})
	}
}

// headerRejected mirrors miekg/dns's default accept rules: one question,
// and no more records than a query can carry.
func headerRejected(pkt []byte) bool {
	qd, an, ns, ar := binary.BigEndian.Uint16(pkt[4:]), binary.BigEndian.Uint16(pkt[6:]),
		binary.BigEndian.Uint16(pkt[8:]), binary.BigEndian.Uint16(pkt[10:])
	opcode := (pkt[2] >> 3) & 0xF
	return opcode == dns.OpcodeQuery && (qd != 1 || an > 1 || ns > 1 || ar > 2)
}

// formErr is a header-only FORMERR reply echoing the query's ID, opcode
// and RD bit.
func formErr(pkt []byte) []byte {
	out := make([]byte, headerLen)
	copy(out, pkt[:2])
	out[2] = 0x80 | pkt[2]&0x78 | pkt[2]&0x01 // QR, opcode, RD
	out[3] = dns.RcodeFormatError
	return out
}

// udpWriter is the dns.ResponseWriter for packets from our UDP loops.
type udpWriter struct {
	conn udpSocket
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
func (w *udpWriter) Write(b []byte) (int, error) {
	if err := w.conn.writeTo(b, w.to); err != nil {
		return 0, err
	}
	return len(b), nil
}
func (w *udpWriter) Close() error        { return nil }
func (w *udpWriter) TsigStatus() error   { return nil }
func (w *udpWriter) TsigTimersOnly(bool) {}
func (w *udpWriter) Hijack()             {}
