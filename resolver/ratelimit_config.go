package resolver

import (
	"math"
	"sort"
)

// Rate limit actions: what a client over its rate gets.
const (
	RateLimitRefuse = "refuse" // REFUSED, header and question only
	RateLimitDrop   = "drop"   // nothing
)

// RateLimitConfig is the rate_limit section: a token bucket per client
// (an IPv4 address, an IPv6 prefix), refilled at QPS up to Burst.
type RateLimitConfig struct {
	// QPS is the sustained queries per second a client may send; 0 turns
	// rate limiting off.
	QPS float64 `yaml:"qps"`
	// Burst is how many queries a client may send at once after being
	// quiet (0: one second's worth, QPS rounded up).
	Burst int `yaml:"burst"`
	// IPv6Prefix is the prefix length that counts as one IPv6 client: a
	// device picks addresses freely inside its network's /64 or /56.
	IPv6Prefix int `yaml:"ipv6_prefix"`
	// Action is refuse or drop.
	Action string `yaml:"action"`
	// Slip makes every Nth limited UDP answer a truncated (TC=1) reply
	// instead, so a real client whose address a flood spoofs can retry over
	// TCP, which has its own buckets. 0 turns it off; 1 truncates all.
	Slip int `yaml:"slip"`
	// Groups overrides QPS and Burst for client groups by name, e.g. an
	// office behind NAT. A group with qps 0 is not limited.
	Groups map[string]GroupRateConfig `yaml:"groups"`
}

// GroupRateConfig is one rate_limit.groups entry.
type GroupRateConfig struct {
	QPS   float64 `yaml:"qps"`
	Burst int     `yaml:"burst"`
}

// Rate limit defaults. Slip 2 is BIND's RRL default: half the limited UDP
// answers go out truncated, half get the action.
const (
	DefaultRateLimitIPv6Prefix = 56
	DefaultRateLimitSlip       = 2
	maxRateLimitQPS            = 1e6
	maxRateLimitBurst          = 1 << 24
)

// DefaultRateLimitConfig returns the defaults: off (qps 0); when turned on,
// IPv6 clients are counted per /56, limited queries are refused, and every
// second limited UDP answer is a TC=1 reply.
func DefaultRateLimitConfig() RateLimitConfig {
	return RateLimitConfig{IPv6Prefix: DefaultRateLimitIPv6Prefix, Action: RateLimitRefuse, Slip: DefaultRateLimitSlip}
}

// Enabled reports whether any client is limited.
func (c *RateLimitConfig) Enabled() bool { return c.QPS > 0 }

// Validate checks every value and reports the first bad one by its key.
// That a name under groups is a configured client group is for the caller
// to check (the groups belong to the policy).
func (c *RateLimitConfig) Validate() error {
	if err := validateRate("rate_limit", c.QPS, c.Burst); err != nil {
		return err
	}
	if c.IPv6Prefix < 1 || c.IPv6Prefix > 128 {
		return errAt("rate_limit.ipv6_prefix", "%d is not a prefix length from 1 to 128 (the default is %d)", c.IPv6Prefix, DefaultRateLimitIPv6Prefix)
	}
	switch c.Action {
	case RateLimitRefuse, RateLimitDrop:
	default:
		return errAt("rate_limit.action", "%q is not refuse or drop", c.Action)
	}
	if c.Slip < 0 || c.Slip > 100 {
		return errAt("rate_limit.slip", "%d is outside 0..100 (0: off, 1: every limited UDP answer truncated, 2: every second)", c.Slip)
	}
	names := make([]string, 0, len(c.Groups))
	for name := range c.Groups {
		names = append(names, name)
	}
	sort.Strings(names) // report the same first error every time
	for _, name := range names {
		g := c.Groups[name]
		if err := validateRate("rate_limit.groups."+name, g.QPS, g.Burst); err != nil {
			return err
		}
	}
	return nil
}

func validateRate(key string, qps float64, burst int) error {
	if math.IsNaN(qps) || qps < 0 || qps > maxRateLimitQPS {
		return errAt(key+".qps", "%v is outside 0..%g (0: not limited)", qps, float64(maxRateLimitQPS))
	}
	if burst < 0 || burst > maxRateLimitBurst {
		return errAt(key+".burst", "%d is outside 0..%d (0: one second's worth of qps)", burst, maxRateLimitBurst)
	}
	if qps > 0 && qps < 0.001 {
		return errAt(key+".qps", "%v is below 0.001 (one query in 1000 s); use 0 for no limit", qps)
	}
	return nil
}

// burstOf is the configured burst, or one second's worth of qps.
func burstOf(qps float64, burst int) int {
	if burst > 0 {
		return burst
	}
	return max(int(math.Ceil(qps)), 1)
}
