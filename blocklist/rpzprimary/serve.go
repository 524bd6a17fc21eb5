package rpzprimary

import (
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// maxMessageBytes keeps transfer messages under the 64 KiB TCP limit with
// room for the TSIG record.
const maxMessageBytes = 60000

// serveDNS answers SOA and NS at the apex (UDP and TCP), AXFR and IXFR
// (TCP; IXFR over UDP gets the SOA, meaning "ask again over TCP", as RFC
// 1995 says). Every request must come from an allowed network and be
// signed with the key.
func (s *Server) serveDNS(w dns.ResponseWriter, r *dns.Msg) {
	from := remoteAddr(w)
	m := new(dns.Msg)
	m.SetReply(r)
	switch {
	case !s.allowed(from):
		s.log.Warn("rpz primary: refused a client outside rpz_primary.allow", "client", from)
		s.reply(w, r, m, dns.RcodeRefused, false)
		return
	case r.Opcode != dns.OpcodeQuery || len(r.Question) != 1:
		s.reply(w, r, m, dns.RcodeNotImplemented, false)
		return
	}
	q := r.Question[0]
	z := s.zones[dns.CanonicalName(q.Name)]
	if z == nil {
		s.reply(w, r, m, dns.RcodeRefused, false) // not a zone we serve
		return
	}
	if !s.checkTSIG(w, r, m, from, z) {
		return
	}
	v := z.cur.Load()
	if v == nil { // cannot happen: Start builds every zone first
		s.reply(w, r, m, dns.RcodeServerFailure, true)
		return
	}
	m.Authoritative = true
	_, udp := w.RemoteAddr().(*net.UDPAddr)
	switch {
	case q.Qtype == dns.TypeSOA || q.Qtype == dns.TypeIXFR && udp:
		m.Answer = []dns.RR{z.soa(v.serial)}
	case q.Qtype == dns.TypeNS:
		m.Answer = []dns.RR{z.ns()}
	case q.Qtype == dns.TypeAXFR && !udp:
		s.sendAXFR(w, r, z, v, from)
		return
	case q.Qtype == dns.TypeIXFR:
		s.sendIXFR(w, r, z, v, from)
		return
	case q.Qtype == dns.TypeAXFR:
		s.reply(w, r, m, dns.RcodeFormatError, true) // AXFR is TCP only (RFC 5936)
		return
	default:
		m.Ns = []dns.RR{z.soa(v.serial)} // NODATA: the apex has only SOA and NS
	}
	s.reply(w, r, m, dns.RcodeSuccess, true)
}

// checkTSIG answers unsigned requests REFUSED and bad signatures NOTAUTH
// with the TSIG error (RFC 8945), and reports whether to go on.
func (s *Server) checkTSIG(w dns.ResponseWriter, r, m *dns.Msg, from netip.Addr, z *servedZone) bool {
	t := r.IsTsig()
	if t == nil {
		s.log.Warn("rpz primary: refused an unsigned request; secondaries must use the rpz_primary.tsig key", "client", from, "zone", z.name)
		s.reply(w, r, m, dns.RcodeRefused, false)
		return false
	}
	if w.TsigStatus() == nil && dns.CanonicalName(t.Hdr.Name) == s.opts.Key.Name {
		return true
	}
	tsigErr := uint16(dns.RcodeBadSig)
	switch {
	case dns.CanonicalName(t.Hdr.Name) != s.opts.Key.Name:
		tsigErr = dns.RcodeBadKey
	case w.TsigStatus() == dns.ErrTime:
		tsigErr = dns.RcodeBadTime
	}
	s.log.Warn("rpz primary: TSIG check failed", "client", from, "zone", z.name, "key", t.Hdr.Name, "tsig_error", dns.RcodeToString[int(tsigErr)])
	m.SetRcode(r, dns.RcodeNotAuth)
	m.SetTsig(dns.Fqdn(t.Hdr.Name), dns.Fqdn(t.Algorithm), t.Fudge, time.Now().Unix()) // an empty name packs wrong
	m.Extra[len(m.Extra)-1].(*dns.TSIG).Error = tsigErr
	w.WriteMsg(m)
	return false
}

// reply sends m with rcode, signed when the request was and sign is set.
func (s *Server) reply(w dns.ResponseWriter, r, m *dns.Msg, rcode int, sign bool) {
	m.Rcode = rcode
	if t := r.IsTsig(); sign && t != nil {
		m.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
	}
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("rpz primary: writing a reply failed", "error", err)
	}
}

func (s *Server) allowed(a netip.Addr) bool {
	for _, p := range s.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func remoteAddr(w dns.ResponseWriter) netip.Addr {
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
