package blocklist

import (
	"bytes"
)

func isDnsmasqLine(t []byte) bool {
	return bytes.HasPrefix(t, []byte("server=")) || bytes.HasPrefix(t, []byte("local=")) || bytes.HasPrefix(t, []byte("address="))
}

// parseDnsmasq reads "server=/a/b/", "local=/a/" and
// "address=/a/b/[addr]". server= and local= block only without an
// upstream: "server=/name/1.2.3.4" forwards, it does not block.
func parseDnsmasq(c *collector, line int, text, t []byte) {
	isAddress := bytes.HasPrefix(t, []byte("address="))
	_, value, _ := bytes.Cut(t, []byte("="))
	if len(value) == 0 || value[0] != '/' {
		c.reject(line, text, "dnsmasq rule without /name/")
		return
	}
	parts := bytes.Split(value[1:], []byte("/"))
	if len(parts) < 2 {
		c.reject(line, text, "dnsmasq rule without a closing '/'")
		return
	}
	target := parts[len(parts)-1]
	if !isAddress && len(target) > 0 {
		c.reject(line, text, "dnsmasq rule forwards to "+readableText(target)+", it does not block")
		return
	}
	for _, n := range parts[:len(parts)-1] {
		switch {
		case len(n) == 0:
			c.reject(line, text, "dnsmasq rule with an empty name")
		case string(n) == "#":
			c.reject(line, text, "dnsmasq '#' would match every name")
		default:
			c.addName(bytes.TrimPrefix(n, []byte(".")), KindBlock, line, text)
		}
	}
}
