package blocklist

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// MaxLists is how many lists one configuration may define: each list is one
// bit in the index's 64-bit masks.
const MaxLists = 64

// DefaultRefresh is how often URL sources are refetched when a list sets no refresh.
const DefaultRefresh = 24 * time.Hour

// MinRefresh keeps a typo ("refresh: 1s") from hammering a list server.
const MinRefresh = time.Minute

// Config is the blocking policy. It is meant to be inlined at the top level of
// dnsward's YAML file (`yaml:",inline"`). No groups and no default_group means
// policy is off: every name is allowed for every client.
type Config struct {
	Lists        map[string]ListConfig `yaml:"lists" json:"lists,omitempty"`
	Groups       []GroupConfig         `yaml:"groups" json:"groups,omitempty"`
	DefaultGroup string                `yaml:"default_group" json:"default_group,omitempty"`
	Guard        GuardConfig           `yaml:"guard" json:"guard"`
	// UnknownToken is what a query with a device token that no group lists
	// gets: "address" (the default, also for ""), the policy of its source
	// address; or "refuse", REFUSED before any list is consulted.
	UnknownToken string `yaml:"unknown_token" json:"unknown_token,omitempty"`
	// TSIGKeys are the keys zone transfers and NOTIFY are signed with, by
	// key name (the key's DNS name); see xfr_config.go.
	TSIGKeys map[string]TSIGKeyConfig `yaml:"tsig_keys" json:"tsig_keys,omitempty"`
}

// ListConfig is one named list: the union of its sources' rules.
type ListConfig struct {
	// Sources are "builtin:NAME", a file path (relative to Options.BaseDir), or an http(s) URL.
	Sources []string `yaml:"sources" json:"sources"`
	// Refresh is how often URL sources are refetched; 0 means DefaultRefresh.
	Refresh time.Duration `yaml:"refresh" json:"refresh,omitempty"`
	// TSIG names the key (under tsig_keys) for the list's axfr:// source.
	TSIG string `yaml:"tsig" json:"tsig,omitempty"`
	// OnExpire is what an axfr:// source does once its zone's SOA expire
	// passes without contact with the primary: keep (default) or drop.
	OnExpire string `yaml:"on_expire" json:"on_expire,omitempty"`
}

// GroupConfig maps clients (by CIDR) to the lists that apply to them.
type GroupConfig struct {
	Name    string   `yaml:"name" json:"name"`
	Clients []string `yaml:"clients" json:"clients,omitempty"` // CIDRs or bare IPs
	Block   []string `yaml:"block" json:"block,omitempty"`
	Allow   []string `yaml:"allow" json:"allow,omitempty"`     // exceptions: beat block and monitor
	Monitor []string `yaml:"monitor" json:"monitor,omitempty"` // resolve, but report "would block"
	// Tokens are device secrets: a query carrying one (DoH path, DoT/DoQ
	// server name) is in this group whatever its source address. See ValidateToken.
	Tokens []string `yaml:"tokens" json:"-"` // never echoed by /v1 endpoints
}

// GuardConfig names what no list may block whole.
type GuardConfig struct {
	NeverBlock []string `yaml:"never_block" json:"never_block,omitempty"` // sources, like a list's
}

// ConfigError is a validation failure at one YAML key path.
type ConfigError struct {
	Path string // e.g. "groups[1].clients[0]"
	Msg  string // what is wrong and what is allowed
}

// Key is the YAML key path of the bad value, for mapping to a file line.
func (e *ConfigError) Key() string { return e.Path }

func (e *ConfigError) Error() string { return e.Path + ": " + e.Msg }

func configErr(path, format string, args ...any) *ConfigError {
	return &ConfigError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Enabled reports whether the configuration applies any policy at all.
func (c *Config) Enabled() bool { return len(c.Groups) > 0 || c.DefaultGroup != "" }

// Validate checks the whole policy and returns the first problem as a
// *ConfigError naming its key path. Lists are checked in name order so the
// answer is the same on every run.
func (c *Config) Validate() error {
	if len(c.Lists) > MaxLists {
		return configErr("lists", "%d lists defined; at most %d are supported", len(c.Lists), MaxLists)
	}
	for _, name := range sortedListNames(c.Lists) {
		if err := validateList(name, c.Lists[name]); err != nil {
			return err
		}
	}
	groupNames := make(map[string]int, len(c.Groups))
	for i, g := range c.Groups {
		if prev, dup := groupNames[g.Name]; dup && g.Name != "" {
			return configErr(fmt.Sprintf("groups[%d].name", i), "group %q is already defined at groups[%d]", g.Name, prev)
		}
		groupNames[g.Name] = i
		if err := c.validateGroup(i, g); err != nil {
			return err
		}
	}
	if c.DefaultGroup != "" {
		if _, ok := groupNames[c.DefaultGroup]; !ok {
			return configErr("default_group", "group %q is not defined under groups (defined: %s)",
				c.DefaultGroup, quoteList(groupOrder(c.Groups)))
		}
	}
	if err := c.validateTokens(); err != nil {
		return err
	}
	if err := c.validateXFR(); err != nil {
		return err
	}
	for i, src := range c.Guard.NeverBlock {
		if err := validateSource(src); err != nil {
			return configErr(fmt.Sprintf("guard.never_block[%d]", i), "%s", err)
		}
	}
	return nil
}

func validateList(name string, l ListConfig) error {
	path := "lists." + name
	if !validName(name) {
		return configErr(path, "list name %q must be letters, digits, '_' or '-', starting with a letter or digit", name)
	}
	if len(l.Sources) == 0 {
		return configErr(path+".sources", "list %q has no sources; give at least one of builtin:NAME, a file path or an http(s) URL", name)
	}
	for i, src := range l.Sources {
		key := fmt.Sprintf("%s.sources[%d]", path, i)
		if err := validateSource(src); err != nil {
			return configErr(key, "%s", err)
		}
		if j := slices.Index(l.Sources, src); j < i {
			return configErr(key, "%q is already listed at sources[%d]", src, j)
		}
	}
	if l.Refresh < 0 {
		return configErr(path+".refresh", "%s is negative; use a duration such as 1h (0 or unset means %s)", l.Refresh, DefaultRefresh)
	}
	if l.Refresh > 0 && l.Refresh < MinRefresh {
		return configErr(path+".refresh", "%s is too short; the minimum is %s", l.Refresh, MinRefresh)
	}
	return nil
}

func (c *Config) validateGroup(i int, g GroupConfig) error {
	path := fmt.Sprintf("groups[%d]", i)
	if !validName(g.Name) {
		return configErr(path+".name", "group name %q must be letters, digits, '_' or '-', starting with a letter or digit", g.Name)
	}
	for j, cidr := range g.Clients {
		if _, err := parseClientPrefix(cidr); err != nil {
			return configErr(fmt.Sprintf("%s.clients[%d]", path, j), "%q is not a CIDR or IP address (e.g. 10.0.0.0/8, fd00::/32, 192.0.2.7)", cidr)
		}
	}
	seen := make(map[string]string) // list name -> role that already uses it
	for _, role := range []struct {
		key   string
		names []string
	}{{"block", g.Block}, {"allow", g.Allow}, {"monitor", g.Monitor}} {
		for j, name := range role.names {
			key := fmt.Sprintf("%s.%s[%d]", path, role.key, j)
			if _, ok := c.Lists[name]; !ok {
				return configErr(key, "list %q is not defined under lists (defined: %s)", name, quoteList(sortedListNames(c.Lists)))
			}
			if prev, dup := seen[name]; dup {
				return configErr(key, "list %q is already used in %s of this group; a list may appear once per group", name, prev)
			}
			seen[name] = role.key
		}
	}
	return nil
}

// validateSource checks a source's form; it does not touch files or the network.
func validateSource(src string) error {
	switch kind := sourceKindOf(src); kind {
	case sourceBuiltin:
		name := strings.TrimPrefix(src, builtinPrefix)
		if _, ok := Builtin(name); !ok {
			return fmt.Errorf("unknown built-in list %q; available: %s", src, quoteList(prefixed(BuiltinNames())))
		}
	case sourceURL:
		if err := checkURL(src); err != nil {
			return err
		}
	case sourceXFR:
		if _, err := parseXFRSource(src); err != nil {
			return err
		}
	case sourceFile:
		if strings.TrimSpace(src) == "" {
			return fmt.Errorf("empty source; give builtin:NAME, a file path or an http(s) URL")
		}
	default:
		return fmt.Errorf("%q has an unsupported scheme; use http://, https://, axfr://, builtin:NAME or a file path", src)
	}
	return nil
}

// parseClientPrefix accepts "10.0.0.0/8", "fd00::/32" or a bare IP (a /32 or /128).
// IPv4-mapped IPv6 prefixes are turned into IPv4 ones, since clients are unmapped too.
func parseClientPrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, err
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("zoned address %q", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, r := range s {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || !strings.ContainsRune("_-", r)) {
			return false
		}
	}
	return true
}

func sortedListNames(lists map[string]ListConfig) []string {
	names := make([]string, 0, len(lists))
	for name := range lists {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func groupOrder(groups []GroupConfig) []string {
	names := make([]string, len(groups))
	for i, g := range groups {
		names[i] = g.Name
	}
	return names
}

func prefixed(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = builtinPrefix + n
	}
	return out
}

func quoteList(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// DefaultConfig is the policy dnsward ships with: TikTok, ByteDance and
// resolver-bypass names blocked for every client, guarded by never-block.
func DefaultConfig() Config {
	return Config{
		Lists: map[string]ListConfig{
			"tiktok":    {Sources: []string{"builtin:tiktok"}},
			"bytedance": {Sources: []string{"builtin:bytedance"}},
			"bypass":    {Sources: []string{"builtin:bypass"}},
		},
		Groups: []GroupConfig{{
			Name:    "everyone",
			Clients: []string{"0.0.0.0/0", "::/0"},
			Block:   []string{"tiktok", "bytedance", "bypass"},
		}},
		DefaultGroup: "everyone",
		Guard:        GuardConfig{NeverBlock: []string{"builtin:never-block"}},
	}
}
