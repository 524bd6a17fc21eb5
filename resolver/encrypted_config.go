package resolver

import (
	"fmt"
	"net/netip"
	"strings"
)

// EncryptedConfig is the YAML of the encrypted listeners and what they
// share, at the top level of the file next to `listen`:
//
//	listen_tls:   ["0.0.0.0:853"]        # DNS over TLS (RFC 7858)
//	listen_https: ["0.0.0.0:443"]        # DNS over HTTPS (RFC 8484), /dns-query
//	listen_quic:  ["0.0.0.0:853"]        # DNS over QUIC (RFC 9250), UDP
//	tls: {cert_file: ..., key_file: ..., server_name: dns.agency.example}
//	proxy_protocol: {trusted: ["10.0.5.0/24"]}
type EncryptedConfig struct {
	ListenTLS     []string    `yaml:"listen_tls"`
	ListenHTTPS   []string    `yaml:"listen_https"`
	ListenQUIC    []string    `yaml:"listen_quic"`
	TLS           TLSConfig   `yaml:"tls"`
	ProxyProtocol ProxyConfig `yaml:"proxy_protocol"`
}

// TLSConfig names the certificate the encrypted listeners serve.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"` // PEM chain, leaf first; reloaded when it changes
	KeyFile  string `yaml:"key_file"`  // PEM private key
	// ServerName is the public host name that DDR answers and device
	// profiles use; default: the first non-wildcard DNS name in the certificate.
	ServerName string `yaml:"server_name"`
}

// Enabled reports whether any encrypted listener is configured.
func (c *EncryptedConfig) Enabled() bool {
	return len(c.ListenTLS)+len(c.ListenHTTPS)+len(c.ListenQUIC) > 0
}

// Validate checks addresses and names without touching files (loading the
// certificate is NewCertStore's job, with errors at the same keys).
func (c *EncryptedConfig) Validate() error {
	for _, l := range []struct {
		key   string
		addrs []string
	}{{"listen_tls", c.ListenTLS}, {"listen_https", c.ListenHTTPS}, {"listen_quic", c.ListenQUIC}} {
		for i, a := range l.addrs {
			if err := checkHostPort(a); err != nil {
				return errAt(fmt.Sprintf("%s[%d]", l.key, i), "%q is not a host:port address: %v", a, err)
			}
		}
	}
	if err := c.TLS.validate(c.Enabled()); err != nil {
		return err
	}
	return c.ProxyProtocol.Validate()
}

func (t *TLSConfig) validate(needed bool) error {
	switch {
	case needed && t.CertFile == "":
		return errAt("tls.cert_file", "listen_tls, listen_https and listen_quic need a certificate: set tls.cert_file (PEM, e.g. an ACME client's fullchain.pem)")
	case needed && t.KeyFile == "":
		return errAt("tls.key_file", "tls.cert_file needs its private key: set tls.key_file (PEM, e.g. privkey.pem)")
	case t.ServerName != "" && !validHostName(t.ServerName):
		return errAt("tls.server_name", "%q is not a host name such as dns.agency.example (no scheme, port or trailing dot)", t.ServerName)
	}
	return nil
}

// validHostName accepts letters-digits-hyphen labels, at least two of them.
func validHostName(s string) bool {
	labels := strings.Split(s, ".")
	if len(s) > 253 || len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i] | 0x20
			if !(c >= 'a' && c <= 'z' || l[i] >= '0' && l[i] <= '9' || l[i] == '-') {
				return false
			}
		}
	}
	return true
}

// ProxyConfig lists the load balancers whose PROXY protocol headers (and,
// for DoH, X-Forwarded-For/Forwarded headers) are believed.
type ProxyConfig struct {
	Trusted []string `yaml:"trusted"` // CIDRs or addresses
}

// Validate checks that every trusted entry is a CIDR or an address.
func (c *ProxyConfig) Validate() error {
	_, err := c.prefixes()
	return err
}

func (c *ProxyConfig) prefixes() ([]netip.Prefix, error) {
	ps, err := parsePrefixes(c.Trusted, "proxy_protocol.trusted")
	if err != nil {
		return nil, err
	}
	for i, p := range ps { // ::ffff:10.0.0.0/104 means 10.0.0.0/8: peers are unmapped
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			ps[i] = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
	}
	return ps, nil
}
