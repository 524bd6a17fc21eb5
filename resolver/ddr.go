package resolver

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Discovery of Designated Resolvers (RFC 9462): a client that got dnsward
// from DHCP asks _dns.resolver.arpa SVCB and upgrades to the encrypted
// endpoints named in the answer. What the pipeline answers:
//   - _dns.resolver.arpa SVCB: DDRAnswer's records (NOERROR, AA), with the
//     targets' A/AAAA in the additional section where known;
//   - _dns.resolver.arpa of any other type, and any other name at or
//     under resolver.arpa: NOERROR with no records (NODATA), RFC 9462 §6.4;
//   - _dns.{server_name} SVCB (discovery by resolver name, §5): the same
//     records under that owner name;
//   - never forwarded upstream, and never subject to blocking: the names
//     describe dnsward itself.
// With no encrypted listener configured, every resolver.arpa query is NODATA.

// DDRName is the special-use name clients ask (RFC 9462 §4).
const DDRName = "_dns.resolver.arpa."

const ddrTTL = 300

// DDREndpoints are the encrypted endpoints to advertise.
type DDREndpoints struct {
	ServerName                   string // the TLS name clients verify: tls.server_name
	TLSPort, HTTPSPort, QUICPort uint16 // 0: not offered
	IPv4Hints, IPv6Hints         []netip.Addr
}

// DDREndpointsFrom takes the first address of each listen_* list for the
// ports, and the listeners' specific addresses as hints (a wildcard
// listener's addresses are not known here; add them with the
// unencrypted listener's address, which RFC 9462 verified discovery
// requires the certificate to cover).
func DDREndpointsFrom(c EncryptedConfig, serverName string) DDREndpoints {
	d := DDREndpoints{ServerName: serverName}
	d.TLSPort = firstPort(c.ListenTLS)
	d.HTTPSPort = firstPort(c.ListenHTTPS)
	d.QUICPort = firstPort(c.ListenQUIC)
	seen := map[netip.Addr]bool{}
	for _, list := range [][]string{c.ListenTLS, c.ListenHTTPS, c.ListenQUIC} {
		for _, a := range list {
			host, _, err := net.SplitHostPort(a)
			ip, perr := netip.ParseAddr(host)
			if err != nil || perr != nil || ip.IsUnspecified() || ip.IsLoopback() || seen[ip] {
				continue
			}
			seen[ip] = true
			d.AddHint(ip)
		}
	}
	return d
}

// AddHint adds an address of the encrypted listeners.
func (d *DDREndpoints) AddHint(ip netip.Addr) {
	ip = ip.Unmap()
	if ip.Is4() {
		d.IPv4Hints = append(d.IPv4Hints, ip)
	} else {
		d.IPv6Hints = append(d.IPv6Hints, ip)
	}
}

func firstPort(addrs []string) uint16 {
	for _, a := range addrs {
		if _, port, err := net.SplitHostPort(a); err == nil {
			if p, err := strconv.ParseUint(port, 10, 16); err == nil && p > 0 {
				return uint16(p)
			}
		}
	}
	return 0
}

// Records are the SVCB records for owner (DDRName, or _dns.{server_name}.):
// DoT (alpn dot), DoH (alpn h2, dohpath) and DoQ (alpn doq), in that
// order of priority, each with its port and the address hints.
func (d DDREndpoints) Records(owner string) []dns.RR {
	if d.ServerName == "" {
		return nil
	}
	var out []dns.RR
	add := func(port uint16, alpn string, extra ...dns.SVCBKeyValue) {
		if port == 0 {
			return
		}
		kv := []dns.SVCBKeyValue{&dns.SVCBAlpn{Alpn: []string{alpn}}, &dns.SVCBPort{Port: port}}
		kv = append(kv, extra...)
		kv = append(kv, d.hints()...)
		out = append(out, &dns.SVCB{
			Hdr:      dns.RR_Header{Name: dns.Fqdn(owner), Rrtype: dns.TypeSVCB, Class: dns.ClassINET, Ttl: ddrTTL},
			Priority: uint16(len(out) + 1), Target: dns.Fqdn(d.ServerName), Value: kv,
		})
	}
	add(d.TLSPort, "dot")
	add(d.HTTPSPort, "h2", &dns.SVCBDoHPath{Template: DoHPath + "{?dns}"})
	add(d.QUICPort, DoQALPN)
	return out
}

func (d DDREndpoints) hints() []dns.SVCBKeyValue {
	var kv []dns.SVCBKeyValue
	if len(d.IPv4Hints) > 0 {
		h := &dns.SVCBIPv4Hint{}
		for _, a := range d.IPv4Hints {
			h.Hint = append(h.Hint, a.AsSlice())
		}
		kv = append(kv, h)
	}
	if len(d.IPv6Hints) > 0 {
		h := &dns.SVCBIPv6Hint{}
		for _, a := range d.IPv6Hints {
			h.Hint = append(h.Hint, a.AsSlice())
		}
		kv = append(kv, h)
	}
	return kv
}

// Glue is the targets' A and AAAA records for the additional section.
func (d DDREndpoints) Glue() []dns.RR {
	var out []dns.RR
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: dns.Fqdn(d.ServerName), Rrtype: t, Class: dns.ClassINET, Ttl: ddrTTL}
	}
	for _, a := range d.IPv4Hints {
		out = append(out, &dns.A{Hdr: hdr(dns.TypeA), A: a.AsSlice()})
	}
	for _, a := range d.IPv6Hints {
		out = append(out, &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: a.AsSlice()})
	}
	return out
}

// DDRAnswer says how to answer qname/qtype if it is a DDR name: handled
// is false for every other name (the pipeline goes on as usual).
// Otherwise answer and extra are the answer and additional sections of a
// NOERROR reply; both empty means NODATA.
func (d DDREndpoints) DDRAnswer(qname string, qtype uint16) (answer, extra []dns.RR, handled bool) {
	name := strings.ToLower(dns.Fqdn(qname))
	byName := d.ServerName != "" && name == "_dns."+strings.ToLower(dns.Fqdn(d.ServerName))
	if !byName && !dns.IsSubDomain("resolver.arpa.", name) {
		return nil, nil, false
	}
	if qtype != dns.TypeSVCB || (name != DDRName && !byName) {
		return nil, nil, true
	}
	answer = d.Records(name)
	if len(answer) > 0 {
		extra = d.Glue()
	}
	return answer, extra, true
}
