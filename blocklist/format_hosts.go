package blocklist

import (
	"bytes"
	"net/netip"
)

// isHostsLine reports a hosts-file line: an IP address, then names.
// Any address counts (0.0.0.0, 127.0.0.1, ::, ::1 or a real one): in a
// blocklist every listed name is blocked.
func isHostsLine(fields [][]byte) bool {
	f := fields[0]
	if len(f) < 2 || len(f) > 45 { // "::" .. longest IPv6 text form
		return false
	}
	c := f[0]
	if !('0' <= c && c <= '9') && !('a' <= c && c <= 'f') && !('A' <= c && c <= 'F') && c != ':' {
		return false
	}
	if !maybeAddr(f) {
		return false // most lines: a name, which need not cost a failed parse
	}
	_, err := netip.ParseAddr(string(f))
	return err == nil
}

// maybeAddr is false for text no address can be: IPv4 is digits and dots,
// and every IPv6 form has a colon.
func maybeAddr(f []byte) bool {
	if bytes.IndexByte(f, ':') >= 0 {
		return true
	}
	for _, c := range f {
		if c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// parseHosts adds every name after the address, skipping the names a
// stock hosts file maps to loopback.
func parseHosts(c *collector, line int, text []byte, names [][]byte) {
	for _, n := range names {
		if isLocalHostName(n) {
			continue
		}
		c.addName(n, KindBlock, line, text)
	}
}

func isLocalHostName(n []byte) bool {
	if len(n) > len("localhost.localdomain.") {
		return false
	}
	var buf [32]byte
	s := buf[:0]
	for _, c := range n {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		s = append(s, c)
	}
	if l := len(s); l > 0 && s[l-1] == '.' {
		s = s[:l-1]
	}
	// The loopback and multicast names of stock hosts files.
	switch string(s) {
	case "localhost", "localhost.localdomain", "local", "broadcasthost",
		"ip6-localhost", "ip6-loopback", "ip6-localnet", "ip6-mcastprefix",
		"ip6-allnodes", "ip6-allrouters", "ip6-allhosts", "0.0.0.0":
		return true
	}
	return false
}
