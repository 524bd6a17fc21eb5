package blocklist

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const sampleYAML = `
lists:
  tiktok:    { sources: ["builtin:tiktok", "https://lists.example.gov/tiktok.txt"], refresh: 1h }
  bytedance: { sources: ["builtin:bytedance"] }
  bypass:    { sources: ["builtin:bypass"] }
  press-office-exceptions: { sources: ["/etc/dnsward/allow-press.txt"] }
  new-list:  { sources: ["lists/new.txt"] }
groups:
  - name: government-devices
    clients: ["10.0.0.0/8", "fd00:10::/32"]
    block: [tiktok, bytedance, bypass]
    allow: [press-office-exceptions]
    monitor: [new-list]
  - name: guest-wifi
    clients: ["192.168.100.0/22", "192.0.2.7"]
    block: []
default_group: government-devices
guard:
  never_block: ["builtin:never-block"]
`

// topLevel is how the lead's config inlines ours.
type topLevel struct {
	Listen string `yaml:"listen"`
	Config `yaml:",inline"`
}

func TestConfigYAMLSchema(t *testing.T) {
	var top topLevel
	if err := yaml.Unmarshal([]byte("listen: :53\n"+sampleYAML), &top); err != nil {
		t.Fatal(err)
	}
	c := top.Config
	if err := c.Validate(); err != nil {
		t.Fatalf("sample config: %v", err)
	}
	if got := c.Lists["tiktok"].Refresh; got != time.Hour {
		t.Errorf("tiktok refresh = %v", got)
	}
	if g := c.Groups[0]; g.Name != "government-devices" || len(g.Clients) != 2 || g.Monitor[0] != "new-list" {
		t.Errorf("group 0 = %+v", g)
	}
	if c.DefaultGroup != "government-devices" || c.Guard.NeverBlock[0] != "builtin:never-block" {
		t.Errorf("config = %+v", c)
	}
}

func TestConfigValidateErrors(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(c *Config)
		key     string
		message string
	}{
		{"bad CIDR", func(c *Config) { c.Groups[1].Clients[0] = "10.0.0.0/33" }, "groups[1].clients[0]", `"10.0.0.0/33" is not a CIDR`},
		{"garbage client", func(c *Config) { c.Groups[0].Clients = append(c.Groups[0].Clients, "ten") }, "groups[0].clients[2]", `"ten"`},
		{"unknown list in block", func(c *Config) { c.Groups[0].Block[1] = "bytedanse" }, "groups[0].block[1]", `list "bytedanse" is not defined`},
		{"unknown list in allow", func(c *Config) { c.Groups[0].Allow = []string{"nope"} }, "groups[0].allow[0]", `"nope"`},
		{"unknown list in monitor", func(c *Config) { c.Groups[1].Monitor = []string{"nope"} }, "groups[1].monitor[0]", `"nope"`},
		{"list in two roles", func(c *Config) { c.Groups[0].Monitor = []string{"tiktok"} }, "groups[0].monitor[0]", "already used in block"},
		{"duplicate group", func(c *Config) { c.Groups[1].Name = "government-devices" }, "groups[1].name", "already defined at groups[0]"},
		{"empty group name", func(c *Config) { c.Groups[1].Name = "" }, "groups[1].name", "group name"},
		{"missing default group", func(c *Config) { c.DefaultGroup = "everyone" }, "default_group", `"everyone" is not defined`},
		{"empty sources", func(c *Config) { c.Lists["bypass"] = ListConfig{} }, "lists.bypass.sources", "no sources"},
		{"empty source", func(c *Config) { c.Lists["bypass"] = ListConfig{Sources: []string{" "}} }, "lists.bypass.sources[0]", "empty source"},
		{"unknown builtin", func(c *Config) { c.Lists["bypass"] = ListConfig{Sources: []string{"builtin:tiktock"}} }, "lists.bypass.sources[0]", `unknown built-in list "builtin:tiktock"`},
		{"duplicate source", func(c *Config) { c.Lists["bypass"] = ListConfig{Sources: []string{"builtin:bypass", "builtin:bypass"}} }, "lists.bypass.sources[1]", "already listed at sources[0]"},
		{"bad scheme", func(c *Config) { c.Lists["tiktok"] = ListConfig{Sources: []string{"ftp://x.example/l.txt"}} }, "lists.tiktok.sources[0]", "unsupported scheme"},
		{"URL without host", func(c *Config) { c.Lists["tiktok"] = ListConfig{Sources: []string{"https:///l.txt"}} }, "lists.tiktok.sources[0]", "no host"},
		{"negative refresh", func(c *Config) {
			c.Lists["tiktok"] = ListConfig{Sources: []string{"builtin:tiktok"}, Refresh: -time.Hour}
		}, "lists.tiktok.refresh", "negative"},
		{"tiny refresh", func(c *Config) {
			c.Lists["tiktok"] = ListConfig{Sources: []string{"builtin:tiktok"}, Refresh: time.Second}
		}, "lists.tiktok.refresh", "too short"},
		{"bad list name", func(c *Config) { c.Lists["my list"] = ListConfig{Sources: []string{"builtin:tiktok"}} }, "lists.my list", "list name"},
		{"bad guard source", func(c *Config) { c.Guard.NeverBlock = []string{"builtin:nope"} }, "guard.never_block[0]", "unknown built-in"},
		{"too many lists", func(c *Config) {
			for i := range MaxLists {
				c.Lists[fmt.Sprintf("extra%d", i)] = ListConfig{Sources: []string{"builtin:bypass"}}
			}
		}, "lists", "at most 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			if err := yaml.Unmarshal([]byte(sampleYAML), &c); err != nil {
				t.Fatal(err)
			}
			tt.edit(&c)
			err := c.Validate()
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Validate() = %v; want a *ConfigError", err)
			}
			if ce.Key() != tt.key {
				t.Errorf("Key() = %q; want %q (error: %v)", ce.Key(), tt.key, err)
			}
			if !strings.HasPrefix(err.Error(), tt.key+": ") || !strings.Contains(err.Error(), tt.message) {
				t.Errorf("Error() = %q; want it to start with the key and mention %q", err, tt.message)
			}
		})
	}
}

func TestConfigValidAccepts(t *testing.T) {
	def := DefaultConfig()
	if err := def.Validate(); err != nil {
		t.Errorf("DefaultConfig: %v", err)
	}
	var off Config
	if err := off.Validate(); err != nil || off.Enabled() {
		t.Errorf("empty config: err %v, enabled %v; want valid and off", err, off.Enabled())
	}
	c := Config{
		Lists: map[string]ListConfig{"a": {Sources: []string{"builtin:tiktok", "HTTPS://lists.example.gov/a.txt", "rel/a.txt"}}},
		// Bare IPs, a 4-in-6 prefix and host bits set are all accepted.
		Groups: []GroupConfig{{Name: "g", Clients: []string{"192.0.2.7", "2001:db8::1", "::ffff:10.0.0.0/104", "10.1.2.3/8"}, Block: []string{"a"}}},
	}
	if err := c.Validate(); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
}

func TestParseClientPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":           "192.0.2.7/32",
		"2001:db8::1":         "2001:db8::1/128",
		"10.1.2.3/8":          "10.0.0.0/8",
		"::ffff:10.0.0.0/104": "10.0.0.0/8",
		" fd00:10::/32 ":      "fd00:10::/32",
	} {
		p, err := parseClientPrefix(in)
		if err != nil || p.String() != want {
			t.Errorf("parseClientPrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
}
