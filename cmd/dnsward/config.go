package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dnsward/dnsward/blocklist"
	"github.com/dnsward/dnsward/blocklist/rpzprimary"
	"github.com/dnsward/dnsward/configs"
	"github.com/dnsward/dnsward/metrics"
	"github.com/dnsward/dnsward/resolver"
	"github.com/dnsward/dnsward/resolver/upstream"
)

// fileConfig is dnsward's YAML file: each package's Config, assembled.
// Packages validate their own parts; this file only maps their errors to
// lines of the file.
type fileConfig struct {
	Resolver resolver.Config      `yaml:",inline"` // listen, access, cache, blocking, tcp, the encrypted listeners
	Upstream upstream.Config      `yaml:"upstream"`
	Policy   blocklist.Config     `yaml:",inline"` // lists, groups, default_group, guard
	Admin    metrics.AdminConfig  `yaml:"admin"`
	Log      logConfig            `yaml:"log"`
	Dnstap   metrics.DnstapConfig `yaml:"dnstap"`
	StateDir string               `yaml:"state_dir"`   // last-good copies of URL lists
	Primary  rpzprimary.Config    `yaml:"rpz_primary"` // serve groups' policy as RPZ zones

	path string // where it was read from ("" for the embedded default)
}

type logConfig struct {
	Level  string              `yaml:"level"`
	Format string              `yaml:"format"`
	Audit  metrics.AuditConfig `yaml:"audit"`
}

// defaultFileConfig is what keys the YAML leaves out get: each package's
// DefaultConfig, the one place its defaults are defined.
func defaultFileConfig() fileConfig {
	return fileConfig{
		Resolver: resolver.DefaultConfig(),
		Upstream: upstream.DefaultConfig(),
		Admin:    metrics.DefaultAdminConfig(),
		Log:      logConfig{Level: "info", Format: "text", Audit: metrics.DefaultAuditConfig()},
		Dnstap:   metrics.DefaultDnstapConfig(),
		StateDir: "/var/lib/dnsward",
	}
}

// systemUpstream in upstream.servers stands for the nameservers of resolv.conf.
const systemUpstream = "system"

// resolvConfPaths are where "system" looks for nameservers. Behind
// systemd-resolved, /etc/resolv.conf names only its 127.0.0.53 stub; the
// upstreams it forwards to are in its own file.
var resolvConfPaths = []string{"/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"}

// loadConfigFile reads path, or the embedded default when path is "".
func loadConfigFile(path string, resolvConfs []string) (*fileConfig, error) {
	data := configs.Default()
	name := "embedded default config"
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("reading config: %w", err)
		}
		name = path
	}
	cfg, err := parseConfig(data, name, resolvConfs)
	if err != nil {
		return nil, err
	}
	cfg.path = path
	return cfg, nil
}

// parseConfig decodes strictly and validates; every error names the file,
// the line and the key.
func parseConfig(data []byte, name string, resolvConfs []string) (*fileConfig, error) {
	cfg := defaultFileConfig()
	if bytes.HasPrefix(data, []byte{0xfe, 0xff}) || bytes.HasPrefix(data, []byte{0xff, 0xfe}) {
		// yaml.v3 would read it, but reports its bad characters by no line.
		return nil, fmt.Errorf("%s: line 1: the file is UTF-16 text (it starts with a UTF-16 byte order mark); save it as UTF-8", name)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %s", name, withLine(yamlMessage(err), data))
	}
	if len(root.Content) == 0 {
		return nil, fmt.Errorf("%s: the file is empty", name)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("%s: %s", name, yamlMessage(err))
	}
	if err := expandSystemUpstream(&cfg.Upstream, resolvConfs); err != nil {
		return nil, locate(name, &root, err)
	}
	for _, v := range []interface{ Validate() error }{&cfg.Resolver, &cfg.Upstream, &cfg.Policy, &cfg.Admin, &cfg.Log, &cfg.Dnstap, &cfg.Primary} {
		if err := v.Validate(); err != nil {
			return nil, locate(name, &root, err)
		}
	}
	if err := checkRateLimitGroups(&cfg); err != nil {
		return nil, locate(name, &root, err)
	}
	if err := cfg.Primary.CheckPolicy(&cfg.Policy); err != nil {
		return nil, locate(name, &root, err)
	}
	return &cfg, nil
}

// checkRateLimitGroups makes sure each rate_limit.groups entry names a
// policy group: the resolver owns the limits, the policy the groups.
func checkRateLimitGroups(cfg *fileConfig) error {
	for name := range cfg.Resolver.RateLimit.Groups {
		if !slices.ContainsFunc(cfg.Policy.Groups, func(g blocklist.GroupConfig) bool { return g.Name == name }) {
			return &ConfigError{Path: "rate_limit.groups." + name, Msg: fmt.Sprintf("%q is not a group defined under groups", name)}
		}
	}
	return nil
}

func (l *logConfig) Validate() error {
	switch strings.ToLower(l.Level) {
	case "debug", "info", "warn", "error":
	default:
		return &ConfigError{"log.level", fmt.Sprintf("%q is not one of debug, info, warn, error", l.Level)}
	}
	if l.Format != "text" && l.Format != "json" {
		return &ConfigError{"log.format", fmt.Sprintf("%q is not text or json", l.Format)}
	}
	return l.Audit.Validate()
}

// expandSystemUpstream replaces "system" with the nameservers of the first
// resolv.conf that names a usable one.
func expandSystemUpstream(c *upstream.Config, resolvConfs []string) error {
	var out []string
	for i, s := range c.Servers {
		if s != systemUpstream {
			out = append(out, s)
			continue
		}
		var servers []string
		var err error
		for _, path := range resolvConfs {
			if servers, err = upstream.FromResolvConf(path); err == nil {
				break
			}
		}
		if err != nil {
			return &ConfigError{fmt.Sprintf("upstream.servers[%d]", i), err.Error()}
		}
		out = append(out, servers...)
	}
	c.Servers = out
	return nil
}

// ConfigError is a bad value at one YAML key path, in the shape every
// package's ConfigError has; locate maps any of them to a line.
type ConfigError struct {
	Path string
	Msg  string
}

func (e *ConfigError) Error() string { return e.Path + ": " + e.Msg }
func (e *ConfigError) Key() string   { return e.Path }

// locate prefixes a package's validation error with file and line, found
// by walking the YAML tree along the error's key path.
func locate(name string, root *yaml.Node, err error) error {
	var k interface{ Key() string }
	if errors.As(err, &k) {
		if line := lineOf(root, k.Key()); line > 0 {
			return fmt.Errorf("%s:%d: %w", name, line, err)
		}
	}
	return fmt.Errorf("%s: %w", name, err)
}

var keySegment = regexp.MustCompile(`([^.\[\]]+)|\[(\d+)\]`)

// lineOf returns the line of the deepest node along path ("a.b[2].c").
func lineOf(root *yaml.Node, path string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, seg := range keySegment.FindAllStringSubmatch(path, -1) {
		next := child(n, seg[1], seg[2])
		if next == nil {
			break
		}
		n, line = next, next.Line
	}
	return line
}

func child(n *yaml.Node, key, index string) *yaml.Node {
	switch {
	case n.Kind == yaml.MappingNode && key != "":
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i+1]
			}
		}
	case n.Kind == yaml.SequenceNode && index != "":
		if i, err := strconv.Atoi(index); err == nil && i < len(n.Content) {
			return n.Content[i]
		}
	}
	return nil
}

var (
	unknownField = regexp.MustCompile(`field (\S+) not found in type \S+`)
	cannotDecode = regexp.MustCompile("cannot unmarshal !!\\w+ `([^`]*)` into (\\S+)")
)

// yamlMessage turns yaml.v3's errors into one line per problem, naming
// lines and keys the way a person reads the file.
func yamlMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n  ")
	msg = strings.ReplaceAll(msg, "\n  ", "; ")
	msg = unknownField.ReplaceAllString(msg, `unknown key "$1"`)
	return cannotDecode.ReplaceAllStringFunc(msg, func(m string) string {
		sub := cannotDecode.FindStringSubmatch(m)
		what := sub[2]
		if what == "time.Duration" {
			what = "a duration such as 500ms, 2s or 1h"
		}
		return fmt.Sprintf("%q is not %s", sub[1], what)
	})
}
