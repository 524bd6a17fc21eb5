package resolver

import (
	"encoding/binary"
	"net/netip"
	"strings"
)

// forwardedFor lists the client addresses of the Forwarded header (RFC
// 7239 for= parameters) or, when there is none, of X-Forwarded-For, in
// order (client first, the nearest proxy last). A hop that is not an IP
// ("unknown", "_hidden") is an invalid AddrPort; ports default to 0.
func forwardedFor(forwarded, xff []string) []netip.AddrPort {
	var hops []netip.AddrPort
	if len(forwarded) > 0 {
		for _, elem := range splitList(forwarded) {
			for _, pair := range strings.Split(elem, ";") {
				k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(k, "for") {
					hops = append(hops, parseHop(strings.Trim(v, `"`)))
				}
			}
		}
		return hops
	}
	for _, v := range splitList(xff) {
		hops = append(hops, parseHop(v))
	}
	return hops
}

func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				out = append(out, e)
			}
		}
	}
	return out
}

// parseHop reads "192.0.2.1", "192.0.2.1:80", "[2001:db8::1]:80" or "2001:db8::1".
func parseHop(s string) netip.AddrPort {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil && a.Zone() == "" {
		return netip.AddrPortFrom(a.Unmap(), 0)
	}
	return netip.AddrPort{}
}

// dohMaxAge is the HTTP freshness of a DNS reply (RFC 8484 §5.1): the
// smallest TTL of its records, for a negative answer the SOA's TTL capped
// by its MINIMUM (RFC 2308), and 0 for errors, for replies without
// records and for anything that does not parse.
func dohMaxAge(msg []byte) uint32 {
	if len(msg) < minDNSMessage {
		return 0
	}
	if rcode := msg[3] & 0x0f; rcode != 0 && rcode != 3 { // NOERROR, NXDOMAIN
		return 0
	}
	qd := int(binary.BigEndian.Uint16(msg[4:]))
	rrs := int(binary.BigEndian.Uint16(msg[6:])) + int(binary.BigEndian.Uint16(msg[8:])) + int(binary.BigEndian.Uint16(msg[10:]))
	off := minDNSMessage
	for range qd {
		var ok bool
		if off, ok = skipName(msg, off); !ok || off+4 > len(msg) {
			return 0
		}
		off += 4
	}
	ttl, seen := uint32(0), false
	for range rrs {
		var ok bool
		if off, ok = skipName(msg, off); !ok || off+10 > len(msg) {
			return 0
		}
		typ := binary.BigEndian.Uint16(msg[off:])
		t := binary.BigEndian.Uint32(msg[off+4:])
		rdlen := int(binary.BigEndian.Uint16(msg[off+8:]))
		off += 10
		if off+rdlen > len(msg) {
			return 0
		}
		if typ == 6 && rdlen >= 20 { // SOA: MINIMUM is the last field
			t = min(t, binary.BigEndian.Uint32(msg[off+rdlen-4:]))
		}
		if typ != 41 && (!seen || t < ttl) { // OPT's "TTL" is flags
			ttl, seen = t, true
		}
		off += rdlen
	}
	return ttl
}
