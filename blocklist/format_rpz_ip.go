package blocklist

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// rpzIPNetwork reads the network of an RPZ response-IP trigger, the labels
// before "rpz-ip": the prefix length, then the address with its parts in
// reverse order. "32.1.2.0.192" is 192.0.2.1/32, "24.0.2.0.192" is
// 192.0.2.0/24; IPv6 uses hexadecimal 16-bit words and "zz" for the "::"
// run, so "48.zz.2643.8d04.2404" is 2404:8d04:2643::/48. As in BIND, the
// prefix length must be 1 to 32 (IPv4) or 128 (IPv6) and no bit may be set
// after it.
func rpzIPNetwork(trigger string) (netip.Prefix, string) {
	labels := strings.Split(trigger, ".")
	if len(labels) < 2 {
		return netip.Prefix{}, strings.TrimSpace("rpz-ip trigger "+trigger) + " needs a prefix length and an address"
	}
	bits, err := strconv.Atoi(labels[0])
	if err != nil || !allDigits(labels[0]) || bits < 1 || bits > 128 {
		return netip.Prefix{}, fmt.Sprintf("rpz-ip trigger %s: prefix length %q is not 1 to 128", trigger, labels[0])
	}
	parts := labels[1:]
	var a netip.Addr
	var reason string
	if len(parts) == 4 && !strings.Contains(trigger, "zz") {
		a, reason = rpzIPv4(parts)
		if reason == "" && bits > 32 {
			reason = fmt.Sprintf("prefix length /%d is longer than the 32 bits of an IPv4 address", bits)
		}
	} else {
		a, reason = rpzIPv6(parts)
	}
	if reason != "" {
		return netip.Prefix{}, "rpz-ip trigger " + trigger + ": " + reason
	}
	return checkedPrefix(a, bits, fmt.Sprintf("rpz-ip trigger %s (%s/%d)", trigger, a, bits))
}

// rpzIPv4 reads four decimal octets, last first.
func rpzIPv4(parts []string) (netip.Addr, string) {
	var b [4]byte
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || !allDigits(p) || n > 255 || len(p) > 3 {
			return netip.Addr{}, fmt.Sprintf("IPv4 octet %q is not 0 to 255", p)
		}
		b[3-i] = byte(n)
	}
	return netip.AddrFrom4(b), ""
}

// rpzIPv6 reads up to eight hexadecimal words, last first, with at most
// one "zz" standing for the run of zero words that fills the address.
func rpzIPv6(parts []string) (netip.Addr, string) {
	if len(parts) > 8 {
		return netip.Addr{}, fmt.Sprintf("%d address parts; an IPv6 address has at most 8", len(parts))
	}
	var words []uint16
	zz := -1
	for i := len(parts) - 1; i >= 0; i-- { // most significant first
		p := parts[i]
		if p == "zz" {
			if zz >= 0 {
				return netip.Addr{}, "more than one zz"
			}
			zz = len(words)
			continue
		}
		n, err := strconv.ParseUint(p, 16, 16)
		if err != nil || len(p) > 4 {
			return netip.Addr{}, fmt.Sprintf("IPv6 word %q is not 0 to ffff", p)
		}
		words = append(words, uint16(n))
	}
	switch {
	case zz < 0 && len(words) != 8:
		return netip.Addr{}, fmt.Sprintf("%d words and no zz; an IPv6 address needs 8 (IPv4 needs 4 octets)", len(words))
	case zz >= 0 && len(words) == 8:
		return netip.Addr{}, "zz stands for no words: the address already has 8"
	}
	var b [16]byte
	pos := 0
	for i, w := range words {
		if i == zz {
			pos += 8 - len(words)
		}
		b[2*pos], b[2*pos+1] = byte(w>>8), byte(w)
		pos++
	}
	return netip.AddrFrom16(b), ""
}
