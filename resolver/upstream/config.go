// Package upstream forwards DNS queries to upstream resolvers over UDP (with
// TCP retry on truncation), TCP, DNS-over-TLS and DNS-over-HTTPS, choosing
// among them by strategy and passive health.
package upstream

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Strategies accepted in Config.Strategy.
const (
	StrategyParallelBest = "parallel_best"
	StrategyFailover     = "failover"
	StrategyRoundRobin   = "round_robin"
)

// DefaultTimeout is the per-attempt timeout used when none is configured.
const DefaultTimeout = 2 * time.Second

// maxTimeout catches unit slips such as "2000s"; no upstream is worth waiting longer.
const maxTimeout = time.Minute

// Config is the `upstream:` section of the YAML configuration.
type Config struct {
	Servers  []string      `yaml:"servers"`
	Strategy string        `yaml:"strategy"`
	Timeout  time.Duration `yaml:"timeout"`
	// MaxInflight bounds client queries waiting on upstreams, over every
	// transport; beyond it a new cache miss gets SERVFAIL at once (a flood
	// of unique names, or upstreams down, must not pile up memory).
	MaxInflight int `yaml:"max_inflight"`
}

// DefaultMaxInflight is MaxInflight unless configured.
const DefaultMaxInflight = 10000

// DefaultConfig returns the defaults; decode YAML on top of it so that absent
// keys keep them while an explicit bad value (timeout: 0s) is still reported.
func DefaultConfig() Config {
	return Config{Strategy: StrategyParallelBest, Timeout: DefaultTimeout, MaxInflight: DefaultMaxInflight}
}

// ConfigError is a bad value at one YAML key path. Every dnsward package
// reports configuration errors in this shape.
type ConfigError struct {
	Path string // YAML key path, e.g. "upstream.servers[2]"
	Msg  string // the value, what is wrong with it and what is allowed
}

// Key returns the YAML key path of the bad value, for mapping to a file line.
func (e *ConfigError) Key() string { return e.Path }

func (e *ConfigError) Error() string { return e.Path + ": " + e.Msg }

func configErr(key, value, format string, args ...any) *ConfigError {
	return &ConfigError{Path: key, Msg: fmt.Sprintf("%q: ", value) + fmt.Sprintf(format, args...)}
}

// Validate reports the first invalid value as a *ConfigError. An empty
// strategy means the default (parallel_best).
func (c *Config) Validate() error {
	if len(c.Servers) == 0 {
		return configErr("upstream.servers", "[]", "at least one upstream server is required, e.g. [\"udp://9.9.9.9:53\"]")
	}
	seen := make(map[string]int, len(c.Servers))
	for i, s := range c.Servers {
		key := fmt.Sprintf("upstream.servers[%d]", i)
		if _, problem := parseEndpoint(s); problem != "" {
			return configErr(key, s, "%s", problem)
		}
		if j, dup := seen[s]; dup {
			return configErr(key, s, "duplicate of upstream.servers[%d]; list each upstream once", j)
		}
		seen[s] = i
	}
	switch c.Strategy {
	case "", StrategyParallelBest, StrategyFailover, StrategyRoundRobin:
	default:
		return configErr("upstream.strategy", c.Strategy, "unknown strategy; allowed: %s, %s, %s",
			StrategyParallelBest, StrategyFailover, StrategyRoundRobin)
	}
	if c.MaxInflight < 0 || c.MaxInflight > 1_000_000 {
		return configErr("upstream.max_inflight", fmt.Sprint(c.MaxInflight), "must be 1 to 1000000 (0 means %d)", DefaultMaxInflight)
	}
	if c.Timeout <= 0 || c.Timeout > maxTimeout {
		return configErr("upstream.timeout", c.Timeout.String(), "must be greater than 0 and at most %s (default %s)",
			maxTimeout, DefaultTimeout)
	}
	return nil
}

// endpoint is a parsed server string.
type endpoint struct {
	scheme     string // udp, tcp, tls or https
	addr       string // ip:port for udp, tcp and tls
	serverName string // certificate name for tls
	url        string // full URL for https
}

const allowedForms = "use udp://IP[:port], tcp://IP[:port], tls://[name@]IP[:port], https://host/path or a bare IP[:port]"

// parseEndpoint returns the endpoint or a problem description.
func parseEndpoint(s string) (endpoint, string) {
	if s == "" {
		return endpoint{}, "empty server; " + allowedForms
	}
	if strings.TrimSpace(s) != s {
		return endpoint{}, "leading or trailing spaces; " + allowedForms
	}
	scheme, rest, hasScheme := strings.Cut(s, "://")
	if !hasScheme {
		addr, problem := ipPort(s, 53)
		return endpoint{scheme: "udp", addr: addr}, problem
	}
	switch scheme {
	case "udp", "tcp":
		addr, problem := ipPort(rest, 53)
		return endpoint{scheme: scheme, addr: addr}, problem
	case "tls":
		name, hostPort, hasName := strings.Cut(rest, "@")
		if !hasName {
			hostPort = rest
		} else if !validHostname(name) {
			return endpoint{}, fmt.Sprintf("bad TLS server name %q; expected tls://dns.example@IP[:port]", name)
		}
		addr, problem := ipPort(hostPort, 853)
		if problem != "" {
			return endpoint{}, problem
		}
		if !hasName {
			host, _, _ := net.SplitHostPort(addr)
			name = host // verify the certificate for the IP itself
		}
		return endpoint{scheme: "tls", addr: addr, serverName: name}, ""
	case "https":
		return parseDoH(s)
	default:
		return endpoint{}, fmt.Sprintf("unsupported scheme %q; %s", scheme, allowedForms)
	}
}

func parseDoH(s string) (endpoint, string) {
	u, err := url.Parse(s)
	if err != nil {
		return endpoint{}, "not a valid URL; expected e.g. https://dns.quad9.net/dns-query"
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" {
		return endpoint{}, "expected https://host[:port]/path with no user info or fragment"
	}
	if p := u.Port(); p != "" {
		if _, problem := parsePort(p); problem != "" {
			return endpoint{}, problem
		}
	}
	if u.Path == "" {
		u.Path = "/dns-query" // the conventional RFC 8484 path
	}
	return endpoint{scheme: "https", url: u.String()}, ""
}

// ipPort accepts "IP", "IP:port" and "[IPv6]:port"; host names are refused
// because resolving them would need the resolver we are configuring.
func ipPort(s string, defaultPort uint16) (string, string) {
	bare := s
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") { // "[2620:fe::fe]" without a port
		bare = s[1 : len(s)-1]
	}
	if ip, err := netip.ParseAddr(bare); err == nil && (bare == s || ip.Is6()) {
		return netip.AddrPortFrom(ip, defaultPort).String(), ""
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", "expected an IP address with an optional port, e.g. 9.9.9.9:53 or [2620:fe::fe]:53"
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "", fmt.Sprintf("%q is not an IP address (host names are not allowed here); %s", host, allowedForms)
	}
	p, problem := parsePort(port)
	if problem != "" {
		return "", problem
	}
	return netip.AddrPortFrom(ip, p).String(), ""
}

func parsePort(s string) (uint16, string) {
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil || p == 0 {
		return 0, fmt.Sprintf("bad port %q; allowed: 1-65535", s)
	}
	return uint16(p), ""
}

// validHostname is a light syntax check: letters, digits, '-', '_' and dots.
func validHostname(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			ok := r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
			if !ok {
				return false
			}
		}
	}
	return true
}
