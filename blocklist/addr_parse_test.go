package blocklist

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseCIDRList(t *testing.T) {
	runParseCases(t, []parseCase{
		{name: "networks and addresses", format: FormatCIDR,
			in: "# header\n192.0.2.0/24\n198.51.100.7\n2001:db8::/32   # v6\n2001:db8:1::1\n; semicolon comment\n203.0.113.0/25 ; SBL123\n",
			rules: []string{"block 192.0.2.0/24", "block 198.51.100.7/32", "block 2001:db8::/32",
				"block 2001:db8:1::1/128", "block 203.0.113.0/25"}},
		{name: "IPv4-mapped networks become IPv4", format: FormatCIDR,
			in: "::ffff:192.0.2.0/120\n::ffff:198.51.100.7\n", rules: []string{"block 192.0.2.0/24", "block 198.51.100.7/32"}},
		{name: "CRLF and BOM", format: FormatCIDR, in: "\xef\xbb\xbf192.0.2.0/24\r\n10.0.0.0/8\r\n",
			rules: []string{"block 192.0.2.0/24", "block 10.0.0.0/8"}},
		{name: "hostile lines, each reported with its line", format: FormatCIDR,
			in: "192.0.2.0/24\n192.0.2.0/33\n2001:db8::/129\n192.0.2.1/24\n10.0.0.0/-1\nexample.com\n" +
				"192.0.2.0/24 10.0.0.0/8\nfe80::1%eth0\n10.0.0.0/08x\n300.1.1.1\n198.51.100.0/24\n",
			rules: []string{"block 192.0.2.0/24", "block 198.51.100.0/24"},
			rejected: []string{"2: prefix length /33 is longer than the 32 bits of an IPv4 address",
				"3: prefix length /129 is longer than the 128 bits",
				"4: 192.0.2.1/24 has bits set after the /24 prefix: the network is 192.0.2.0/24",
				"5: prefix length \"-1\" is not a number", "6: not a network or IP address: example.com",
				"7: expected one network", "8: address with a zone", "9: prefix length \"08x\" is not a number",
				"10: not a network or IP address: 300.1.1.1"}},
		{name: "a hosts file is not a CIDR list", format: FormatHosts,
			in: "0.0.0.0 a.com\n0.0.0.0 b.com\n127.0.0.1 c.com\n", rules: []string{"block a.com", "block b.com", "block c.com"}},
		{name: "networks in a domain list are refused", format: FormatPlain,
			in:       "a.com\nb.com\n192.0.2.0/24\nc.com\n",
			rules:    []string{"block a.com", "block b.com", "block c.com"},
			rejected: []string{"3: network in a domain list"}},
		{name: "mostly domains stays a domain list", format: FormatPlain,
			in:       "a.com\nb.com\n192.0.2.1\n",
			rules:    []string{"block a.com", "block b.com"},
			rejected: []string{"3: IP address, not a domain name"}},
	})
}

// The real list the built-in is made of parses as a CIDR list, whole.
func TestParseBytedanceNetworks(t *testing.T) {
	contents := map[string][]byte{}
	b, _ := Builtin("bytedance-networks")
	contents["builtin:bytedance-networks"] = b
	shared := filepath.Join("..", "..", "shared", "data", "policy", "bytedance-networks.cidrs")
	if raw, err := os.ReadFile(shared); err == nil {
		contents[shared] = raw
		if !bytes.Equal(raw, b) {
			t.Errorf("builtin:bytedance-networks differs from %s: copy it again", shared)
		}
	}
	for src, raw := range contents {
		p, err := Parse(bytes.NewReader(raw))
		if err != nil || p.Format != FormatCIDR || p.RejectedCount != 0 {
			t.Fatalf("%s: format %q, %d rejected %+v, err %v", src, p.Format, p.RejectedCount, p.Rejected, err)
		}
		entries := 0
		for _, line := range strings.Split(string(raw), "\n") {
			if line = strings.TrimSpace(line); line != "" && line[0] != '#' {
				entries++
			}
		}
		if len(p.Rules) != entries || entries < 70 {
			t.Errorf("%s: %d rules from %d entry lines", src, len(p.Rules), entries)
		}
		v4, v6 := 0, 0
		for _, r := range p.Rules {
			if r.Prefix.Addr().Is4() {
				v4++
			} else {
				v6++
			}
		}
		if v4 == 0 || v6 == 0 {
			t.Errorf("%s: %d IPv4 and %d IPv6 networks", src, v4, v6)
		}
	}
}

func TestParseRPZIPTriggers(t *testing.T) {
	runParseCases(t, []parseCase{
		{name: "IPv4 and IPv6 forms", format: FormatRPZ,
			in: rpzZone(
				"32.1.2.0.192.rpz-ip CNAME .",
				"24.0.2.0.192.rpz-ip CNAME *.",
				"128.1.zz.db8.2001.rpz-ip CNAME rpz-drop.",
				"48.zz.2643.8d04.2404.rpz-ip CNAME .",
				"128.1.zz.rpz-ip CNAME .",
				"128.8.7.6.5.4.3.2.1.rpz-ip CNAME .",
				"120.200.c000.ffff.zz.rpz-ip CNAME .", // ::ffff:192.0.2.0/120
				"32.2.0.0.10.rpz-ip A 192.0.2.80",
			),
			rules: []string{"block 192.0.2.1/32 nxdomain", "block 192.0.2.0/24 nodata", "block 2001:db8::1/128 drop",
				"block 2404:8d04:2643::/48 nxdomain", "block ::1/128 nxdomain", "block 1:2:3:4:5:6:7:8/128 nxdomain",
				"block 192.0.2.0/24 nxdomain", "block 10.0.0.2/32 local-data A 192.0.2.80"}},
		{name: "hostile triggers", format: FormatRPZ,
			in: rpzZone(
				"0.1.2.0.192.rpz-ip CNAME .",
				"33.1.2.0.192.rpz-ip CNAME .",
				"24.1.2.0.192.rpz-ip CNAME .",
				"32.256.2.0.192.rpz-ip CNAME .",
				"32.1.2.0.192.1.rpz-ip CNAME .",
				"128.zz.1.zz.2001.rpz-ip CNAME .",
				"128.1.2.3.4.5.6.7.8.9.rpz-ip CNAME .",
				"128.1.g.zz.2001.rpz-ip CNAME .",
				"rpz-ip CNAME .",
				"x.1.2.0.192.rpz-ip CNAME .",
				"129.zz.rpz-ip CNAME .",
			),
			rejected: []string{"5: prefix length \"0\" is not 1 to 128", "6: prefix length /33 is longer than the 32 bits",
				"7: has bits set after the /24 prefix: the network is 192.0.2.0/24", "8: IPv4 octet \"256\"",
				"9: 5 words and no zz", "10: more than one zz", "11: 9 address parts", "12: IPv6 word \"g\"",
				"13: needs a prefix length", "14: prefix length \"x\"", "15: prefix length \"129\""}},
	})
}
