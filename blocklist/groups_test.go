package blocklist

import (
	"net/netip"
	"testing"
)

func groupsConfig(defaultGroup string) Config {
	return Config{
		Lists: map[string]ListConfig{"tiktok": {Sources: []string{"builtin:tiktok"}}},
		Groups: []GroupConfig{
			{Name: "press", Clients: []string{"10.20.30.0/24", "fd00:10:20::/48"}},
			{Name: "gov", Clients: []string{"10.0.0.0/8", "fd00:10::/32", "192.0.2.7"}, Block: []string{"tiktok"}},
			{Name: "guest", Clients: []string{"192.168.100.0/22"}},
			{Name: "everyone-else"},
		},
		DefaultGroup: defaultGroup,
	}
}

func TestGroupSelection(t *testing.T) {
	e := newEngine(t, groupsConfig("everyone-else"), Options{})
	for client, want := range map[string]string{
		"10.20.30.40":       "press", // first match wins over gov's 10.0.0.0/8
		"10.20.31.1":        "gov",
		"10.255.0.1":        "gov",
		"::ffff:10.1.1.1":   "gov", // 4-in-6 is unmapped
		"192.0.2.7":         "gov", // bare IP = /32
		"192.0.2.8":         "everyone-else",
		"fd00:10:20::5":     "press",
		"fd00:10:ffff::1":   "gov",
		"fd00:11::1":        "everyone-else",
		"192.168.103.255":   "guest",
		"192.168.104.0":     "everyone-else",
		"2001:db8::1":       "everyone-else",
		"0.0.0.0":           "everyone-else",
		"::ffff:10.20.30.1": "press",
	} {
		v := e.Decide(netip.MustParseAddr(client), "example.org")
		if v.Group != want {
			t.Errorf("client %s: group %q; want %q", client, v.Group, want)
		}
	}
	if v := e.Decide(netip.Addr{}, "tiktok.com"); v.Group != "everyone-else" || v.Action != Allow {
		t.Errorf("invalid client address: %+v", v)
	}
	expect(t, e, "10.9.9.9", "www.tiktok.com", Block, "tiktok")
	expect(t, e, "10.20.30.9", "www.tiktok.com", Allow, "")
}

func TestNoDefaultGroupAllows(t *testing.T) {
	e := newEngine(t, groupsConfig(""), Options{})
	v := expect(t, e, "192.0.2.8", "www.tiktok.com", Allow, "")
	if v.Group != "" {
		t.Errorf("client in no group got group %q", v.Group)
	}
	expect(t, e, "10.9.9.9", "www.tiktok.com", Block, "tiktok")
}

func TestPolicyOff(t *testing.T) {
	cfg := Config{Lists: map[string]ListConfig{"tiktok": {Sources: []string{"builtin:tiktok"}}}}
	e := newEngine(t, cfg, Options{})
	expect(t, e, "10.9.9.9", "www.tiktok.com", Allow, "")
	x := e.Explain(addr("10.9.9.9"), "www.tiktok.com")
	if x.Action != "allow" || x.Group != "" {
		t.Errorf("explain with policy off: %+v", x)
	}
}

func BenchmarkGroupLookup(b *testing.B) {
	cfg := groupsConfig("everyone-else")
	for i := range 40 { // dozens of prefixes ahead of the match
		cfg.Groups[2].Clients = append(cfg.Groups[2].Clients, netip.AddrFrom4([4]byte{172, 16, byte(i), 0}).String()+"/24")
	}
	snap := &snapshot{groups: compileGroups(cfg, map[string]int{"tiktok": 0})}
	client := netip.MustParseAddr("192.0.2.99")
	b.ReportAllocs()
	for b.Loop() {
		snap.groups.lookup(client)
	}
}

// The bit-mask matcher agrees with netip.Prefix.Contains.
func TestPrefixBitsMatchContains(t *testing.T) {
	prefixes := []string{"0.0.0.0/0", "10.0.0.0/8", "10.20.30.0/24", "192.0.2.7/32", "172.16.0.0/12",
		"::/0", "fd00:10::/32", "2001:db8::1/128", "2001:db8:0:1::/64", "2001:db8:0:1:8000::/65", "fe80::/10"}
	addrs := []string{"0.0.0.0", "10.1.2.3", "10.20.30.255", "10.20.31.0", "192.0.2.7", "192.0.2.6", "172.31.255.255",
		"172.32.0.0", "255.255.255.255", "::", "fd00:10:ffff::1", "fd00:11::", "2001:db8::1", "2001:db8::2",
		"2001:db8:0:1:7fff::1", "2001:db8:0:1:8000::1", "fe80::1", "febf::1", "fec0::1", "ffff::1"}
	for _, ps := range prefixes {
		p := netip.MustParsePrefix(ps)
		pb := toBits(p, 0)
		for _, as := range addrs {
			a := netip.MustParseAddr(as)
			t2 := groupTable{prefixes: []clientPrefix{{prefix: p}}, defaultGroup: -1}
			if a.Is4() == p.Addr().Is4() {
				if p.Addr().Is4() {
					t2.v4 = []prefixBits{pb}
				} else {
					t2.v6 = []prefixBits{pb}
				}
			}
			_, cp := t2.lookup(a)
			if got, want := cp != nil, p.Contains(a); got != want {
				t.Errorf("%s contains %s: got %v, want %v", p, a, got, want)
			}
		}
	}
}
