package resolver

import (
	"net"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/metrics"
)

// ServeDNS answers one query. It never panics: a failure anywhere becomes
// SERVFAIL and is logged.
func (r *Resolver) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	r.inflight.Add(1)
	defer r.inflight.Done()
	ev := metrics.QueryEvent{Time: r.now()}
	ev.Client, ev.Proto = clientOf(w.RemoteAddr())
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("query handler panicked", "panic", p, "client", ev.Client, "qname", ev.QName)
			resp := new(dns.Msg).SetRcode(req, dns.RcodeServerFailure)
			_ = w.WriteMsg(resp)
		}
	}()

	resp, opts := r.answer(req, &ev)
	fit(resp, req, ev.Proto == "udp", opts)
	if err := w.WriteMsg(resp); err != nil {
		r.log.Debug("writing response failed", "client", ev.Client, "err", err)
	}
	ev.Rcode = resp.Rcode
	ev.Duration = r.now().Sub(ev.Time)
	if r.rec != nil && r.rec.WantsWire() {
		ev.QueryWire, _ = req.Pack()
		ev.ResponseWire, _ = resp.Pack()
		ev.ClientAddrPort, ev.ServerAddrPort = metrics.AddrPortOf(w.RemoteAddr()), metrics.AddrPortOf(w.LocalAddr())
	}
	if r.rec != nil {
		r.rec.Query(&ev)
	}
}

func clientOf(a net.Addr) (netip.Addr, string) {
	switch a := a.(type) {
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), "udp"
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), "tcp"
	}
	return netip.Addr{}, "udp"
}
