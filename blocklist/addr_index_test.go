package blocklist

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

func netRules(nets ...string) []Rule {
	rules := make([]Rule, len(nets))
	for i, n := range nets {
		p, reason := parseNetwork(n)
		if reason != "" {
			panic(reason)
		}
		rules[i] = Rule{Prefix: p, Line: i + 1}
	}
	return rules
}

func mustAddrIndex(t testing.TB, lists ...[]Rule) *AddrIndex {
	t.Helper()
	ix, err := BuildAddrIndex(lists)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func TestAddrIndexLongestPrefix(t *testing.T) {
	ix := mustAddrIndex(t, netRules("71.18.0.0/16", "71.18.8.0/22", "71.18.9.0/24", "71.18.9.7",
		"2605:340::/32", "2605:340:f020::/47", "10.0.0.0/8", "::/16"))
	m := Masks{Block: 1}
	for a, want := range map[string]string{
		"71.18.9.7":                 "0:71.18.9.7/32",
		"71.18.9.8":                 "0:71.18.9.0/24",
		"71.18.10.1":                "0:71.18.8.0/22",
		"71.18.12.1":                "0:71.18.0.0/16",
		"71.19.0.1":                 "-",
		"::ffff:71.18.9.7":          "0:71.18.9.7/32", // mapped AAAA matches IPv4 rules
		"2605:340:f021:1::1":        "0:2605:340:f020::/47",
		"2605:340:f022::1":          "0:2605:340::/32",
		"2605:341::1":               "-",
		"10.255.255.255":            "0:10.0.0.0/8",
		"11.0.0.0":                  "-",
		"0.0.0.0":                   "-",
		"::1":                       "0:::/16",
		"ffff:ffff:ffff:ffff::ffff": "-",
	} {
		block, _, _ := ix.Lookup(netip.MustParseAddr(a), m)
		if got := hitText(block); got != want {
			t.Errorf("Lookup(%s) = %s; want %s", a, got, want)
		}
	}
	if b, _, _ := ix.Lookup(netip.Addr{}, m); b.Found {
		t.Error("the zero Addr matched")
	}
	if b, _, _ := ix.Lookup(netip.MustParseAddr("10.0.0.1"), Masks{Block: 2}); b.Found {
		t.Error("a list outside the mask matched")
	}
	var empty *AddrIndex
	if b, _, _ := empty.Lookup(netip.MustParseAddr("10.0.0.1"), m); b.Found || empty.Len() != 0 {
		t.Error("a nil index matched")
	}
}

func TestAddrIndexRoles(t *testing.T) {
	pass := netRules("71.18.9.0/24")[0]
	pass.Kind = KindPassthru
	lists := [][]Rule{
		append(netRules("71.18.0.0/16"), pass), // 0: block with a passthru for one /24
		netRules("71.18.9.7"),                  // 1: allow list
		netRules("71.18.0.0/20"),               // 2: monitor
		netRules("71.18.9.0/25"),               // 3: block, more specific than list 0's passthru
	}
	ix := mustAddrIndex(t, lists...)
	for _, tc := range []struct {
		m                     Masks
		a                     string
		block, allow, monitor string
	}{
		{Masks{Block: 1}, "71.18.1.1", "0:71.18.0.0/16", "-", "-"},
		{Masks{Block: 1}, "71.18.9.200", "0:71.18.0.0/16", "0:71.18.9.0/24", "-"}, // passthru stands in list 0
		{Masks{Block: 1 | 8}, "71.18.9.1", "3:71.18.9.0/25", "0:71.18.9.0/24", "-"},
		{Masks{Block: 1, Allow: 2}, "71.18.9.7", "0:71.18.0.0/16", "1:71.18.9.7/32", "-"},
		{Masks{Block: 8, Monitor: 4}, "71.18.9.1", "3:71.18.9.0/25", "-", "2:71.18.0.0/20"},
		{Masks{Monitor: 4}, "71.18.20.1", "-", "-", "-"},
		{Masks{Block: 1 | 4}, "71.18.1.1", "2:71.18.0.0/20", "-", "-"}, // the longer prefix wins across lists
	} {
		b, al, mon := ix.Lookup(netip.MustParseAddr(tc.a), tc.m)
		if hitText(b) != tc.block || hitText(al) != tc.allow || hitText(mon) != tc.monitor {
			t.Errorf("Lookup(%s, %+v) = %s %s %s; want %s %s %s", tc.a, tc.m,
				hitText(b), hitText(al), hitText(mon), tc.block, tc.allow, tc.monitor)
		}
	}
}

// A passthru is overridden by a more specific block of its own list only.
func TestAddrIndexPassthruBySpecificity(t *testing.T) {
	r := netRules("71.18.0.0/16", "71.18.9.0/24", "71.18.9.7")
	r[0].Kind = KindPassthru
	r[2].Kind = KindPassthru
	ix := mustAddrIndex(t, r)
	m := Masks{Block: 1}
	for a, want := range map[string]string{"71.18.1.1": "allow", "71.18.9.1": "block", "71.18.9.7": "allow"} {
		_, al, _ := ix.Lookup(netip.MustParseAddr(a), m)
		if got := map[bool]string{true: "allow", false: "block"}[al.Found]; got != want {
			t.Errorf("%s: %s; want %s", a, got, want)
		}
	}
}

// Random networks and addresses, checked against a linear scan: the most
// specific listed network that contains the address wins.
func TestAddrIndexMatchesLinearScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var rules []Rule
	seen := map[netip.Prefix]bool{}
	for len(rules) < 2000 {
		var p netip.Prefix
		if rng.IntN(2) == 0 {
			a := netip.AddrFrom4([4]byte{byte(10 + rng.IntN(3)), byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256))})
			p = netip.PrefixFrom(a, 8+rng.IntN(25)).Masked()
		} else {
			a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(rng.IntN(4)), byte(rng.IntN(256)), 15: byte(rng.IntN(256))})
			p = netip.PrefixFrom(a, 16+rng.IntN(113)).Masked()
		}
		if !seen[p] {
			seen[p] = true
			rules = append(rules, Rule{Prefix: p})
		}
	}
	ix := mustAddrIndex(t, rules)
	for i := range 5000 {
		var a netip.Addr
		if i%2 == 0 {
			a = netip.AddrFrom4([4]byte{byte(10 + rng.IntN(3)), byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256))})
		} else {
			a = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(rng.IntN(4)), byte(rng.IntN(256)), 15: byte(rng.IntN(256))})
		}
		want := "-"
		best := -1
		for _, r := range rules {
			if r.Prefix.Contains(a) && r.Prefix.Bits() > best {
				best, want = r.Prefix.Bits(), "0:"+r.Prefix.String()
			}
		}
		if b, _, _ := ix.Lookup(a, Masks{Block: 1}); hitText(b) != want {
			t.Fatalf("Lookup(%s) = %s; want %s", a, hitText(b), want)
		}
	}
}

func TestAddrIndexLookupZeroAlloc(t *testing.T) {
	ix := mustAddrIndex(t, netRules("71.18.0.0/16", "71.18.9.0/24", "2605:340::/32"))
	m := Masks{Block: 1}
	for _, s := range []string{"71.18.9.1", "192.0.2.1", "2605:340::1", "::ffff:71.18.9.1"} {
		a := netip.MustParseAddr(s)
		if n := testing.AllocsPerRun(100, func() { ix.Lookup(a, m) }); n != 0 {
			t.Errorf("Lookup(%s) allocates %.1f times", s, n)
		}
	}
}

func TestBuildAddrIndexTooManyLists(t *testing.T) {
	if _, err := BuildAddrIndex(make([][]Rule, 65)); err == nil {
		t.Error("65 lists accepted")
	}
	ix, err := BuildAddrIndex([][]Rule{{{Name: "a.example"}}})
	if err != nil || ix != nil {
		t.Errorf("names only: %v, %v; want no index", ix, err)
	}
}
