package resolver

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Config is the resolver's part of dnsward's YAML: listeners, access
// control, cache and the shape of blocked answers. Upstreams are configured
// in package upstream and handed to New already built.
type Config struct {
	Listen   []string       `yaml:"listen"`
	Access   AccessConfig   `yaml:"access"`
	Cache    CacheConfig    `yaml:"cache"`
	Blocking BlockingConfig `yaml:"blocking"`
	TCP      TCPConfig      `yaml:"tcp"`
	UDP      UDPConfig      `yaml:"udp"`
	// RateLimit bounds each client's queries per second (off by default).
	RateLimit RateLimitConfig `yaml:"rate_limit"`
	// The encrypted listeners (listen_tls, listen_https, listen_quic),
	// their certificate and the PROXY protocol's trusted networks.
	Encrypted EncryptedConfig `yaml:",inline"`
}

// TCPConfig bounds stream connections (TCP, and DoT on top of it): an
// idle client is closed, and no client may hold more than its share.
type TCPConfig struct {
	IdleTimeout    time.Duration `yaml:"idle_timeout"`    // RFC 7766 §6.2.3: seconds, not minutes
	MaxConnections int           `yaml:"max_connections"` // per listen address
	MaxPerClient   int           `yaml:"max_per_client"`  // per client address
}

// UDPConfig sizes each UDP listener socket's receive buffer. A burst
// larger than the buffer (a floor of phones back on Wi-Fi at once) is
// dropped by the kernel before dnsward reads it, and each client waits
// out its retry timeout; dnsward_udp_receive_drops_total counts them. The
// default is the kernel's once per read loop, as Unbound's so-reuseport
// threads each have theirs: more needs either a higher net.core.rmem_max
// or CAP_NET_ADMIN.
type UDPConfig struct {
	ReceiveBufferMB int `yaml:"receive_buffer_mb"` // 0: the kernel's default (net.core.rmem_default) per read loop
}

// AccessConfig lists the client networks that may query. Access control is
// on by default so that a resolver on a public address is never open.
type AccessConfig struct {
	Allow []string `yaml:"allow"`
}

// DefaultAccessAllow is loopback, private (RFC 1918), CGNAT, link-local and
// unique-local networks: the clients of an on-prem resolver.
var DefaultAccessAllow = []string{
	"127.0.0.0/8", "::1/128",
	"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16",
	"fc00::/7", "fe80::/10",
}

// CacheConfig bounds the answer cache and its TTLs.
type CacheConfig struct {
	MaxEntries     int           `yaml:"max_entries"`
	MinTTL         time.Duration `yaml:"min_ttl"`
	MaxTTL         time.Duration `yaml:"max_ttl"`
	NegativeMaxTTL time.Duration `yaml:"negative_max_ttl"`
	ServeStale     time.Duration `yaml:"serve_stale"` // RFC 8767: expired answers when upstreams fail
	// Prefetch refreshes an entry asked for in the last tenth of its TTL
	// in the background, so popular names never wait for an upstream.
	Prefetch bool `yaml:"prefetch"`
}

// BlockingConfig says how blocked names are answered.
type BlockingConfig struct {
	Answer   string         `yaml:"answer"` // nxdomain | nodata | null_ip | sinkhole | refused
	Sinkhole SinkholeConfig `yaml:"sinkhole"`
	TTL      time.Duration  `yaml:"ttl"`
}

// SinkholeConfig holds the addresses handed out in "sinkhole" mode.
type SinkholeConfig struct {
	IPv4 string `yaml:"ipv4"`
	IPv6 string `yaml:"ipv6"`
}

// Blocked answer modes.
const (
	AnswerNXDomain = "nxdomain"
	AnswerNoData   = "nodata"
	AnswerNullIP   = "null_ip"
	AnswerSinkhole = "sinkhole"
	AnswerRefused  = "refused"
)

// Answers only RPZ rules ask for (never blocking.answer): no reply at all,
// TC=1 over UDP (resolve normally over TCP), or the rule's own records.
const (
	AnswerDrop    = "drop"
	AnswerTCPOnly = "tcp-only"
	AnswerLocal   = "local-data"
)

// DefaultConfig returns the settings used for keys the YAML leaves out.
func DefaultConfig() Config {
	return Config{
		Listen: []string{"127.0.0.1:5353"},
		Access: AccessConfig{Allow: append([]string(nil), DefaultAccessAllow...)},
		Cache: CacheConfig{
			MaxEntries:     100000,
			MaxTTL:         24 * time.Hour,
			NegativeMaxTTL: time.Hour,
			ServeStale:     time.Hour,
		},
		Blocking:  BlockingConfig{Answer: AnswerNXDomain, TTL: 60 * time.Second},
		TCP:       TCPConfig{IdleTimeout: 10 * time.Second, MaxConnections: 1000, MaxPerClient: 100},
		RateLimit: DefaultRateLimitConfig(),
	}
}

// ConfigError names the YAML key that holds a bad value.
type ConfigError struct {
	Path string
	Msg  string
}

func (e *ConfigError) Error() string { return e.Path + ": " + e.Msg }

// Key returns the YAML key path, for mapping the error to a file line.
func (e *ConfigError) Key() string { return e.Path }

func errAt(path, format string, args ...any) error {
	return &ConfigError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Validate checks every value and reports the first bad one by its key.
func (c *Config) Validate() error {
	if len(c.Listen) == 0 {
		return errAt("listen", "at least one address is needed, e.g. \"127.0.0.1:53\"")
	}
	for i, a := range c.Listen {
		if err := checkHostPort(a); err != nil {
			return errAt(fmt.Sprintf("listen[%d]", i), "%q is not a host:port address: %v", a, err)
		}
	}
	if len(c.Access.Allow) == 0 {
		return errAt("access.allow", "no client could query; to allow every client write [\"0.0.0.0/0\", \"::/0\"]")
	}
	if _, err := parsePrefixes(c.Access.Allow, "access.allow"); err != nil {
		return err
	}
	if err := c.Cache.validate(); err != nil {
		return err
	}
	if err := c.TCP.validate(); err != nil {
		return err
	}
	if b := c.UDP.ReceiveBufferMB; b < 0 || b > maxReceiveBufferMB {
		return errAt("udp.receive_buffer_mb", "%d is outside 0..%d (0: the kernel's default)", b, maxReceiveBufferMB)
	}
	if err := c.Encrypted.Validate(); err != nil {
		return err
	}
	if err := c.RateLimit.Validate(); err != nil {
		return err
	}
	return c.Blocking.validate()
}

func (c *CacheConfig) validate() error {
	switch {
	case c.MaxEntries < 0:
		return errAt("cache.max_entries", "%d is negative; use 0 to turn the cache off", c.MaxEntries)
	case c.MinTTL < 0:
		return errAt("cache.min_ttl", "%s is negative", c.MinTTL)
	case c.MaxTTL <= 0:
		return errAt("cache.max_ttl", "%s must be positive", c.MaxTTL)
	case c.MinTTL > c.MaxTTL:
		return errAt("cache.min_ttl", "%s is above cache.max_ttl (%s)", c.MinTTL, c.MaxTTL)
	case c.NegativeMaxTTL < 0:
		return errAt("cache.negative_max_ttl", "%s is negative", c.NegativeMaxTTL)
	case c.ServeStale < 0:
		return errAt("cache.serve_stale", "%s is negative; use 0s to turn serve-stale off", c.ServeStale)
	}
	return nil
}

// maxReceiveBufferMB bounds the kernel memory one socket may hold.
const maxReceiveBufferMB = 256

func (t *TCPConfig) validate() error {
	switch {
	case t.IdleTimeout < time.Second || t.IdleTimeout > 10*time.Minute:
		return errAt("tcp.idle_timeout", "%s is outside 1s..10m", t.IdleTimeout)
	case t.MaxConnections < 1:
		return errAt("tcp.max_connections", "%d: at least 1 connection is needed", t.MaxConnections)
	case t.MaxPerClient < 1 || t.MaxPerClient > t.MaxConnections:
		return errAt("tcp.max_per_client", "%d is outside 1..tcp.max_connections (%d)", t.MaxPerClient, t.MaxConnections)
	}
	return nil
}

func (b *BlockingConfig) validate() error {
	switch b.Answer {
	case AnswerNXDomain, AnswerNoData, AnswerNullIP, AnswerRefused:
	case AnswerSinkhole:
		if b.Sinkhole.IPv4 == "" && b.Sinkhole.IPv6 == "" {
			return errAt("blocking.sinkhole", "answer sinkhole needs ipv4, ipv6 or both")
		}
	default:
		return errAt("blocking.answer", "%q is not one of nxdomain, nodata, null_ip, sinkhole, refused", b.Answer)
	}
	if b.Sinkhole.IPv4 != "" {
		if a, err := netip.ParseAddr(b.Sinkhole.IPv4); err != nil || !a.Is4() {
			return errAt("blocking.sinkhole.ipv4", "%q is not an IPv4 address", b.Sinkhole.IPv4)
		}
	}
	if b.Sinkhole.IPv6 != "" {
		if a, err := netip.ParseAddr(b.Sinkhole.IPv6); err != nil || !a.Is6() || a.Is4In6() {
			return errAt("blocking.sinkhole.ipv6", "%q is not an IPv6 address", b.Sinkhole.IPv6)
		}
	}
	if b.TTL < time.Second || b.TTL > 24*time.Hour {
		return errAt("blocking.ttl", "%s is outside 1s..24h", b.TTL)
	}
	return nil
}

func checkHostPort(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return err
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("host must be an IP address")
		}
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("port must be 0..65535")
	}
	return nil
}

// parsePrefixes accepts CIDRs and bare addresses (a single host).
func parsePrefixes(list []string, key string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for i, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, errAt(fmt.Sprintf("%s[%d]", key, i), "%q is not a CIDR or an IP address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, unmapPrefix(p).Masked())
	}
	return out, nil
}

// unmapPrefix turns an IPv4-mapped prefix (::ffff:10.0.0.0/104) into the
// IPv4 one (10.0.0.0/8): clients are compared unmapped.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}
