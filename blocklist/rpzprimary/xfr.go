package rpzprimary

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// xfrWriter sends a transfer's records in messages of up to
// maxMessageBytes, each signed (RFC 8945: the first with the request's
// MAC, the rest chained, timers only).
type xfrWriter struct {
	w    dns.ResponseWriter
	r    *dns.Msg
	rrs  []dns.RR
	size int
	msgs int
	sent int
	err  error
}

func (x *xfrWriter) add(rrs ...dns.RR) {
	for _, rr := range rrs {
		n := dns.Len(rr)
		if x.size+n > maxMessageBytes {
			x.flush()
		}
		x.rrs = append(x.rrs, rr)
		x.size += n
	}
}

func (x *xfrWriter) flush() {
	if len(x.rrs) == 0 || x.err != nil {
		x.rrs, x.size = x.rrs[:0], 0
		return
	}
	m := new(dns.Msg)
	m.SetReply(x.r)
	m.Authoritative, m.Compress = true, true
	m.Answer = x.rrs
	if t := x.r.IsTsig(); t != nil {
		m.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
	}
	x.err = x.w.WriteMsg(m)
	x.w.TsigTimersOnly(true)
	x.msgs++
	x.sent += len(x.rrs)
	x.rrs, x.size = make([]dns.RR, 0, len(x.rrs)), 0
}

// sendAXFR sends the whole zone: SOA, NS, the policy, SOA.
func (s *Server) sendAXFR(w dns.ResponseWriter, r *dns.Msg, z *servedZone, v *version, from netip.Addr) {
	start := time.Now()
	x := &xfrWriter{w: w, r: r}
	s.writeFull(x, z, v)
	s.logTransfer("AXFR", z, v, from, x, start, &z.axfr)
}

func (s *Server) writeFull(x *xfrWriter, z *servedZone, v *version) {
	x.add(z.soa(v.serial), z.ns())
	var rrs []dns.RR
	for _, pn := range v.names {
		rrs = z.appendRecords(rrs[:0], pn)
		x.add(rrs...)
		if x.err != nil {
			return
		}
	}
	x.add(z.soa(v.serial))
	x.flush()
}

// sendIXFR sends the changes since the client's serial (RFC 1995), only
// the SOA when it is current, or the whole zone when the journal does not
// reach back to its serial.
func (s *Server) sendIXFR(w dns.ResponseWriter, r *dns.Msg, z *servedZone, v *version, from netip.Addr) {
	start := time.Now()
	x := &xfrWriter{w: w, r: r}
	have, ok := clientSerial(r)
	switch deltas := v.since(have); {
	case !ok:
		m := new(dns.Msg)
		s.reply(w, r, m.SetReply(r), dns.RcodeFormatError, true) // IXFR needs the client's SOA
		return
	case have == v.serial || int32(have-v.serial) > 0:
		x.add(z.soa(v.serial)) // up to date
		x.flush()
		return
	case deltas == nil:
		s.writeFull(x, z, v)
		s.logTransfer("IXFR (full zone: serial not in the journal)", z, v, from, x, start, &z.ixfrFull)
		return
	default:
		x.add(z.soa(v.serial))
		for _, d := range deltas {
			x.add(z.soa(d.from))
			x.add(d.del...)
			x.add(z.soa(d.to))
			x.add(d.add...)
		}
		x.add(z.soa(v.serial))
		x.flush()
	}
	s.logTransfer("IXFR", z, v, from, x, start, &z.ixfr)
}

func clientSerial(r *dns.Msg) (uint32, bool) {
	for _, rr := range r.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial, true
		}
	}
	return 0, false
}

func (s *Server) logTransfer(kind string, z *servedZone, v *version, from netip.Addr, x *xfrWriter, start time.Time, n *atomic.Uint64) {
	if x.err != nil {
		s.log.Warn("rpz primary: transfer out failed", "type", kind, "zone", z.name, "client", from, "serial", v.serial, "error", x.err)
		return
	}
	n.Add(1)
	s.log.Info("rpz primary: transfer out", "type", kind, "zone", z.name, "client", from, "serial", v.serial,
		"records", x.sent, "messages", x.msgs, "took", time.Since(start).Round(time.Millisecond))
}
