// Package rpzprimary serves the compiled policy of dnsward's client groups
// as RPZ zones (draft-vixie-dnsop-dns-rpz) to secondaries over AXFR and
// IXFR, so BIND, Unbound, Knot Resolver and other dnsward replicas enforce
// exactly the policy one dnsward holds.
package rpzprimary

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/blocklist"
)

// Config is the top-level rpz_primary key. No listen addresses: off.
type Config struct {
	Listen []string     `yaml:"listen" json:"listen,omitempty"` // IP:PORT; each serves UDP and TCP
	Zones  []ZoneConfig `yaml:"zones" json:"zones,omitempty"`
	TSIG   string       `yaml:"tsig" json:"tsig,omitempty"`     // a key under tsig_keys; required
	Allow  []string     `yaml:"allow" json:"allow,omitempty"`   // secondaries' networks (CIDR or IP)
	Notify []string     `yaml:"notify" json:"notify,omitempty"` // IP[:PORT] of secondaries to NOTIFY on change
}

// ZoneConfig publishes one group's policy as one zone.
type ZoneConfig struct {
	Name  string `yaml:"name" json:"name"`   // e.g. rpz.dnsward.example
	Group string `yaml:"group" json:"group"` // a group under groups
}

// ConfigError is a validation failure at one YAML key path.
type ConfigError struct {
	Path string
	Msg  string
}

// Key is the YAML key path of the bad value.
func (e *ConfigError) Key() string { return e.Path }

func (e *ConfigError) Error() string { return e.Path + ": " + e.Msg }

func configErr(path, format string, args ...any) *ConfigError {
	return &ConfigError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Enabled reports whether the primary is configured to run.
func (c *Config) Enabled() bool { return len(c.Listen) > 0 }

// Validate checks the section's own values; CheckPolicy checks the names
// it takes from the policy (groups, keys).
func (c *Config) Validate() error {
	if !c.Enabled() {
		if len(c.Zones)+len(c.Allow)+len(c.Notify) > 0 || c.TSIG != "" {
			return configErr("rpz_primary.listen", "rpz_primary has settings but no listen address; give one such as 127.0.0.1:5300")
		}
		return nil
	}
	for i, a := range c.Listen {
		if _, err := netip.ParseAddrPort(a); err != nil {
			return configErr(fmt.Sprintf("rpz_primary.listen[%d]", i), "%q is not IP:PORT (e.g. 192.0.2.10:53 or [2001:db8::10]:53)", a)
		}
	}
	if len(c.Zones) == 0 {
		return configErr("rpz_primary.zones", "no zones; add one such as {name: rpz.example.org, group: managed}")
	}
	seen := map[string]int{}
	for i, z := range c.Zones {
		path := fmt.Sprintf("rpz_primary.zones[%d]", i)
		if _, ok := dns.IsDomainName(z.Name); !ok || strings.Trim(z.Name, ".") == "" {
			return configErr(path+".name", "%q is not a zone name (e.g. rpz.example.org)", z.Name)
		}
		name := dns.CanonicalName(z.Name)
		if j, dup := seen[name]; dup {
			return configErr(path+".name", "zone %q is already served at rpz_primary.zones[%d]", z.Name, j)
		}
		seen[name] = i
		if z.Group == "" {
			return configErr(path+".group", "zone %q names no group; give the group whose policy it publishes", z.Name)
		}
	}
	if c.TSIG == "" {
		return configErr("rpz_primary.tsig", "a TSIG key is required: secondaries must sign their transfers (define it under tsig_keys)")
	}
	if len(c.Allow) == 0 {
		return configErr("rpz_primary.allow", "no secondaries allowed; list their networks (e.g. 10.0.0.0/8)")
	}
	for i, a := range c.Allow {
		if _, err := parsePrefix(a); err != nil {
			return configErr(fmt.Sprintf("rpz_primary.allow[%d]", i), "%q is not a CIDR or IP address", a)
		}
	}
	for i, a := range c.Notify {
		if _, err := parseNotify(a); err != nil {
			return configErr(fmt.Sprintf("rpz_primary.notify[%d]", i), "%q is not IP or IP:PORT", a)
		}
	}
	return nil
}

// CheckPolicy checks that the zones' groups and the key exist in policy.
func (c *Config) CheckPolicy(policy *blocklist.Config) error {
	if !c.Enabled() {
		return nil
	}
	var groups []string
	for _, g := range policy.Groups {
		groups = append(groups, g.Name)
	}
	for i, z := range c.Zones {
		if !slices.Contains(groups, z.Group) {
			return configErr(fmt.Sprintf("rpz_primary.zones[%d].group", i), "group %q is not defined under groups (defined: %s)", z.Group, strings.Join(groups, ", "))
		}
	}
	if _, ok := policy.TSIGKeys[c.TSIG]; !ok {
		return configErr("rpz_primary.tsig", "key %q is not defined under tsig_keys", c.TSIG)
	}
	return nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func parseNotify(s string) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, 53), nil
	}
	return netip.ParseAddrPort(s)
}
