package blocklist

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// xfrScheme starts a zone-transfer source: axfr://PRIMARY[:PORT]/ZONE.
const xfrScheme = "axfr://"

// On-expire choices for lists.NAME.on_expire.
const (
	OnExpireKeep = "keep" // default: a ban stays enforced from the last copy
	OnExpireDrop = "drop"
)

// TSIGKeyConfig is one TSIG key (RFC 8945). Its map key under tsig_keys is
// the key's DNS name, which both ends must agree on.
type TSIGKeyConfig struct {
	Algorithm string `yaml:"algorithm" json:"algorithm"` // hmac-sha256 (default), hmac-sha1/224/384/512
	// Secret is the base64 secret as tsig-keygen prints it; SecretFile a
	// file holding just that (relative to the config file). Set one.
	Secret     string `yaml:"secret" json:"-"`
	SecretFile string `yaml:"secret_file" json:"secret_file,omitempty"`
}

// TSIGKey is a key ready for use: canonical name, algorithm and secret.
type TSIGKey struct {
	Name      string // canonical FQDN, e.g. "transfer-key."
	Algorithm string // miekg form, e.g. dns.HmacSHA256 ("hmac-sha256.")
	Secret    string // base64
}

var tsigAlgorithms = map[string]string{
	"hmac-sha1":   dns.HmacSHA1,
	"hmac-sha224": dns.HmacSHA224,
	"hmac-sha256": dns.HmacSHA256,
	"hmac-sha384": dns.HmacSHA384,
	"hmac-sha512": dns.HmacSHA512,
}

// xfrSource is a parsed axfr:// source.
type xfrSource struct {
	primary netip.AddrPort
	zone    string // canonical FQDN
}

// parseXFRSource reads axfr://IP[:PORT]/ZONE. The primary must be an IP
// address: NOTIFY is accepted only from it, and a resolver should not
// depend on resolving names to fetch its own policy.
func parseXFRSource(src string) (xfrSource, error) {
	u, err := url.Parse(src)
	if err != nil {
		return xfrSource{}, fmt.Errorf("%q is not a valid axfr:// source: %v", src, err)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return xfrSource{}, fmt.Errorf("%q: an axfr:// source is axfr://PRIMARY-IP[:PORT]/ZONE, without user, query or fragment", src)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "53"
	}
	ap, err := netip.ParseAddrPort(net.JoinHostPort(host, port))
	if err != nil || ap.Port() == 0 {
		return xfrSource{}, fmt.Errorf("%q: the primary must be an IP address with an optional port, e.g. axfr://192.0.2.1:53/rpz.example", src)
	}
	zone := strings.Trim(u.Path, "/")
	if zone == "" || strings.Contains(zone, "/") {
		return xfrSource{}, fmt.Errorf("%q names no zone; e.g. axfr://192.0.2.1:53/rpz.example", src)
	}
	if _, ok := dns.IsDomainName(zone); !ok {
		return xfrSource{}, fmt.Errorf("%q: zone %q is not a domain name", src, zone)
	}
	return xfrSource{primary: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), zone: dns.CanonicalName(zone)}, nil
}

// validateXFR checks tsig_keys and the lists' tsig and on_expire keys.
func (c *Config) validateXFR() error {
	for _, name := range sortedKeys(c.TSIGKeys) {
		if err := validateTSIGKey(name, c.TSIGKeys[name]); err != nil {
			return err
		}
	}
	keyOf := map[string]string{} // axfr source -> key name, to catch disagreeing lists
	for _, name := range sortedListNames(c.Lists) {
		l, path := c.Lists[name], "lists."+name
		var xfr []string
		for _, src := range l.Sources {
			if sourceKindOf(src) == sourceXFR {
				xfr = append(xfr, src)
			}
		}
		if len(xfr) > 1 {
			return configErr(path+".sources", "list %q has %d axfr:// sources; give each zone its own list, so status, metrics and on_expire name it", name, len(xfr))
		}
		if l.TSIG != "" {
			if _, ok := c.TSIGKeys[l.TSIG]; !ok {
				return configErr(path+".tsig", "key %q is not defined under tsig_keys (defined: %s)", l.TSIG, quoteList(sortedKeys(c.TSIGKeys)))
			}
			if len(xfr) == 0 {
				return configErr(path+".tsig", "list %q has no axfr:// source for the key to sign", name)
			}
		}
		switch l.OnExpire {
		case "", OnExpireKeep, OnExpireDrop:
		default:
			return configErr(path+".on_expire", "%q is not keep or drop", l.OnExpire)
		}
		if l.OnExpire != "" && len(xfr) == 0 {
			return configErr(path+".on_expire", "list %q has no axfr:// source; on_expire applies to zone transfers only", name)
		}
		for _, src := range xfr {
			if prev, seen := keyOf[src]; seen && prev != l.TSIG {
				return configErr(path+".tsig", "source %s is also used by another list with tsig %q; use one key per zone", src, prev)
			}
			keyOf[src] = l.TSIG
		}
	}
	return nil
}

func validateTSIGKey(name string, k TSIGKeyConfig) error {
	path := "tsig_keys." + name
	if _, ok := dns.IsDomainName(name); !ok || name == "" || name == "." {
		return configErr(path, "key name %q is not a DNS name (it must match the key name on the other server, e.g. transfer-key)", name)
	}
	if _, ok := tsigAlgorithms[strings.ToLower(cmp.Or(k.Algorithm, "hmac-sha256"))]; !ok {
		return configErr(path+".algorithm", "%q is not one of hmac-sha256, hmac-sha512, hmac-sha384, hmac-sha224, hmac-sha1", k.Algorithm)
	}
	switch {
	case k.Secret != "" && k.SecretFile != "":
		return configErr(path, "set secret or secret_file, not both")
	case k.Secret == "" && k.SecretFile == "":
		return configErr(path, "key %q has no secret; set secret_file (a file holding the base64 secret tsig-keygen prints) or secret", name)
	case k.Secret != "":
		if err := checkSecret(k.Secret); err != nil {
			return configErr(path+".secret", "%s", err)
		}
	}
	return nil
}

func checkSecret(s string) error {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("the secret is not base64 (%v); copy the secret value tsig-keygen prints", err)
	}
	if len(raw) < 16 {
		return fmt.Errorf("the secret is %d bytes; use at least 16 (tsig-keygen makes 32)", len(raw))
	}
	return nil
}

// LoadTSIGKeys resolves every key of cfg, reading secret files relative to
// baseDir. Errors are *ConfigError values naming the key.
func LoadTSIGKeys(cfg Config, baseDir string) (map[string]TSIGKey, error) {
	keys := make(map[string]TSIGKey, len(cfg.TSIGKeys))
	for _, name := range sortedKeys(cfg.TSIGKeys) {
		k := cfg.TSIGKeys[name]
		secret := k.Secret
		if k.SecretFile != "" {
			b, err := os.ReadFile(resolvePath(baseDir, k.SecretFile))
			if err != nil {
				return nil, configErr("tsig_keys."+name+".secret_file", "cannot read the secret: %v", err)
			}
			secret = strings.TrimSpace(string(b))
			if err := checkSecret(secret); err != nil {
				return nil, configErr("tsig_keys."+name+".secret_file", "%s: %s", k.SecretFile, err)
			}
		}
		keys[name] = TSIGKey{
			Name:      dns.CanonicalName(name),
			Algorithm: tsigAlgorithms[strings.ToLower(cmp.Or(k.Algorithm, "hmac-sha256"))],
			Secret:    secret,
		}
	}
	return keys, nil
}

func sortedKeys[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
