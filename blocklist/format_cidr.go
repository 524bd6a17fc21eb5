package blocklist

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// cidrDetectLines is how many entry lines detection looks at.
const cidrDetectLines = 50

// looksLikeCIDRs reports a list of networks for response-IP policy: more
// than half of its first entry lines (not blank, not a '#' or ';'
// comment) are one network ("192.0.2.0/24", "2001:db8::/32") or bare
// address each. A bad network such as "192.0.2.0/33" still counts, so it is
// reported as a bad network rather than as a bad domain. Hosts files do
// not count: their lines have names after the address.
func looksLikeCIDRs(head []byte) bool {
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	entries, networks := 0, 0
	for len(head) > 0 && entries < cidrDetectLines {
		var line []byte
		line, head, _ = bytes.Cut(head, []byte("\n"))
		t := cutNetworkComment(bytes.TrimSpace(line))
		if len(t) == 0 {
			continue
		}
		entries++
		if f := bytes.Fields(t); len(f) == 1 && networkShaped(string(f[0])) {
			networks++
		}
	}
	return networks > 0 && networks*2 > entries
}

// cutNetworkComment drops a '#' or ';' comment (Spamhaus's DROP list uses
// "192.0.2.0/24 ; SBL123").
func cutNetworkComment(t []byte) []byte {
	if i := bytes.IndexAny(t, "#;"); i >= 0 {
		t = bytes.TrimSpace(t[:i])
	}
	return t
}

// networkShaped is an address, or an address, '/' and digits.
func networkShaped(s string) bool {
	a, bits, slash := strings.Cut(s, "/")
	if _, err := netip.ParseAddr(a); err != nil {
		return false
	}
	return !slash || bits != "" && allDigits(bits)
}

// parseCIDRs reads a list of networks, one per line.
func parseCIDRs(lr *lineReader, sink ruleSink) (Parsed, error) {
	c := collector{sink: sink}
	err := c.eachLine(lr, func(line int, b []byte) error {
		c.addNetwork(line, bytes.TrimSpace(b))
		return nil
	})
	if err != nil {
		return Parsed{}, err
	}
	c.p.Format = FormatCIDR
	return c.finish(lr.line)
}

// addNetwork adds the network on one line of a CIDR list, or rejects it.
func (c *collector) addNetwork(line int, text []byte) {
	entry := cutNetworkComment(text)
	if len(entry) == 0 {
		return
	}
	c.textLines++
	fields := bytes.Fields(entry)
	if len(fields) != 1 {
		c.reject(line, text, "expected one network (e.g. 192.0.2.0/24) or address per line")
		return
	}
	p, reason := parseNetwork(string(fields[0]))
	if reason != "" {
		c.reject(line, text, reason)
		return
	}
	c.sink.rule(parsedRule{prefix: p, line: line})
}

// parseNetwork reads "192.0.2.0/24", "2001:db8::/32" or a bare address (a
// /32 or /128). IPv4-mapped IPv6 networks become IPv4 ones, as answers are
// matched unmapped. Host bits after the prefix are refused, as BIND
// refuses them in RPZ, since "192.0.2.1/24" may mean the /24 or the host.
func parseNetwork(s string) (netip.Prefix, string) {
	text, bitsText, slash := strings.Cut(s, "/")
	a, err := netip.ParseAddr(text)
	if err != nil {
		return netip.Prefix{}, "not a network or IP address: " + readableText([]byte(s))
	}
	if a.Zone() != "" {
		return netip.Prefix{}, "address with a zone (%" + a.Zone() + ") is not a network"
	}
	bits := a.BitLen()
	if slash {
		n, err := strconv.Atoi(bitsText)
		if err != nil || !allDigits(bitsText) || len(bitsText) > 3 {
			return netip.Prefix{}, fmt.Sprintf("prefix length %q is not a number", readableText([]byte(bitsText)))
		}
		if n > a.BitLen() {
			return netip.Prefix{}, fmt.Sprintf("prefix length /%d is longer than the %d bits of an IPv%d address", n, a.BitLen(), ipVersion(a))
		}
		bits = n
	}
	return checkedPrefix(a, bits, s)
}

// checkedPrefix builds the network a/bits, refusing host bits and turning
// IPv4-mapped networks into IPv4 ones.
func checkedPrefix(a netip.Addr, bits int, text string) (netip.Prefix, string) {
	p := netip.PrefixFrom(a, bits)
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Sprintf("%s has bits set after the /%d prefix: the network is %s (or give the address alone)", text, bits, m)
	}
	if a.Is4In6() && bits >= 96 {
		p = netip.PrefixFrom(a.Unmap(), bits-96)
	}
	return p, ""
}

func ipVersion(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

// cidrInDomainList names a network found in a domain list.
func cidrInDomainList(entry []byte) string {
	// The '/' test first: most lines are names, and a failed address
	// parse allocates its error.
	if bytes.IndexByte(entry, '/') < 0 || !networkShaped(string(entry)) {
		return ""
	}
	return "network in a domain list: networks go in a list of their own, one per line, which is read as a CIDR list"
}
