package blocklist

import (
	"bytes"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// wakeQueue bounds zones waiting for a NOTIFY-triggered refresh; a zone
// already waiting gets no second entry.
const wakeQueue = 64

// takeWake is Run's side of the queue: the zone may be queued again.
func (e *Engine) takeWake(spec string) {
	if t := e.xfr.Load(); t != nil && t.bySpec[spec] != nil {
		t.bySpec[spec].queued.Store(false)
	}
}

// HandleNotify answers a DNS NOTIFY (RFC 1996) for an axfr:// zone and,
// when it is accepted, makes Run refresh that zone at once (SOA check,
// then IXFR). msg is the request as it arrived; from is the sender.
// It returns the reply to send, or nil to send nothing (not a NOTIFY
// request, or not a DNS message). Accepted only for a configured zone
// (else NOTAUTH), from its primary's address (else REFUSED), and signed
// with the list's key when it has one (unsigned: REFUSED; bad key or
// signature: NOTAUTH with the TSIG error). A signed request gets a signed
// reply. It does not block and takes no lock the query path uses.
func (e *Engine) HandleNotify(msg []byte, from netip.Addr) []byte {
	req := new(dns.Msg)
	if err := req.Unpack(msg); err != nil || req.Response || req.Opcode != dns.OpcodeNotify {
		return nil
	}
	if len(req.Question) != 1 || req.Question[0].Qtype != dns.TypeSOA {
		return e.notifyReply(req, dns.RcodeFormatError, nil, "")
	}
	zone := dns.CanonicalName(req.Question[0].Name)
	var confs []*xfrConf
	if t := e.xfr.Load(); t != nil {
		confs = t.byZone[zone]
	}
	if len(confs) == 0 {
		e.log.Warn("blocklist: NOTIFY for a zone we do not transfer", "zone", zone, "from", from)
		return e.notifyReply(req, dns.RcodeNotAuth, nil, "")
	}
	from = from.Unmap()
	var conf *xfrConf
	for _, c := range confs {
		if c.src.primary.Addr() == from {
			conf = c
			break
		}
	}
	if conf == nil {
		e.log.Warn("blocklist: NOTIFY from an address that is not the zone's primary", "zone", zone, "from", from)
		return e.notifyReply(req, dns.RcodeRefused, nil, "")
	}
	if rcode, tsigErr, ok := e.checkNotifyTSIG(req, msg, conf); !ok {
		e.log.Warn("blocklist: NOTIFY refused: TSIG", "zone", zone, "from", from,
			"rcode", dns.RcodeToString[rcode], "tsig_error", dns.RcodeToString[int(tsigErr)])
		return e.notifyTSIGError(req, rcode, tsigErr, conf)
	}
	if conf.queued.CompareAndSwap(false, true) {
		select {
		case e.wake <- conf.spec:
		default: // full: dozens of zones are waiting; Run gets to them
			conf.queued.Store(false)
		}
	}
	e.log.Info("blocklist: NOTIFY accepted; refreshing", "zone", zone, "from", from)
	mac := ""
	if t := req.IsTsig(); t != nil {
		mac = t.MAC
	}
	return e.notifyReply(req, dns.RcodeSuccess, conf.key, mac)
}

// checkNotifyTSIG verifies the request's signature against the zone's key.
func (e *Engine) checkNotifyTSIG(req *dns.Msg, raw []byte, conf *xfrConf) (rcode int, tsigErr uint16, ok bool) {
	t := req.IsTsig()
	switch {
	case conf.key == nil && t == nil:
		return 0, 0, true
	case conf.key != nil && t == nil:
		return dns.RcodeRefused, 0, false
	case conf.key == nil || dns.CanonicalName(t.Hdr.Name) != conf.key.Name ||
		dns.CanonicalName(t.Algorithm) != conf.key.Algorithm:
		return dns.RcodeNotAuth, dns.RcodeBadKey, false
	}
	// TsigVerify rewrites the buffer it checks; the caller's stays intact.
	switch err := dns.TsigVerify(bytes.Clone(raw), conf.key.Secret, "", false); err {
	case nil:
		return 0, 0, true
	case dns.ErrTime:
		return dns.RcodeNotAuth, dns.RcodeBadTime, false
	default:
		return dns.RcodeNotAuth, dns.RcodeBadSig, false
	}
}

// notifyTSIGError answers a TSIG failure as RFC 8945 says: NOTAUTH with
// the TSIG error, unsigned for BADKEY and BADSIG, signed for BADTIME;
// a missing signature gets a plain REFUSED.
func (e *Engine) notifyTSIGError(req *dns.Msg, rcode int, tsigErr uint16, conf *xfrConf) []byte {
	t := req.IsTsig()
	if t == nil || tsigErr == 0 {
		return e.notifyReply(req, rcode, nil, "")
	}
	r := notifyAnswer(req, rcode)
	// Fqdn: an empty algorithm name would pack with a wrong length.
	r.SetTsig(dns.Fqdn(t.Hdr.Name), dns.Fqdn(t.Algorithm), t.Fudge, time.Now().Unix())
	r.Extra[len(r.Extra)-1].(*dns.TSIG).Error = tsigErr
	secret := ""
	if tsigErr == dns.RcodeBadTime && conf.key != nil {
		secret = conf.key.Secret
	}
	out, _, err := dns.TsigGenerate(r, secret, t.MAC, false)
	if err != nil {
		return e.notifyReply(req, rcode, nil, "")
	}
	return out
}

func notifyAnswer(req *dns.Msg, rcode int) *dns.Msg {
	r := new(dns.Msg)
	r.SetRcode(req, rcode)
	r.Authoritative = rcode == dns.RcodeSuccess
	return r
}

// notifyReply packs the answer, signed with key when it is not nil.
func (e *Engine) notifyReply(req *dns.Msg, rcode int, key *TSIGKey, requestMAC string) []byte {
	r := notifyAnswer(req, rcode)
	if key != nil && requestMAC != "" {
		r.SetTsig(key.Name, key.Algorithm, 300, time.Now().Unix())
		out, _, err := dns.TsigGenerate(r, key.Secret, requestMAC, false)
		if err == nil {
			return out
		}
		e.log.Error("blocklist: signing the NOTIFY reply failed", "error", err)
		return nil
	}
	out, err := r.Pack()
	if err != nil {
		return nil
	}
	return out
}
