package metrics

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
)

// ConfigError is a bad value at one YAML key path. Every dnsward package
// reports configuration errors in this shape.
type ConfigError struct {
	Path string // YAML key path, e.g. "log.audit.max_files"
	Msg  string // what is wrong and what is allowed
}

// Key returns the YAML key path of the bad value, for mapping to a file line.
func (e *ConfigError) Key() string { return e.Path }

func (e *ConfigError) Error() string { return e.Path + ": " + e.Msg }

// configErr names the bad value unless it is empty: a secret, or a value
// that is missing rather than wrong.
func configErr(key, value, allowed string) *ConfigError {
	if value == "" {
		return &ConfigError{Path: key, Msg: allowed}
	}
	return &ConfigError{Path: key, Msg: fmt.Sprintf("invalid value %q: %s", value, allowed)}
}

const (
	defaultAuditMaxSizeMB = 100
	defaultAuditMaxFiles  = 10
	maxAuditMaxSizeMB     = 1 << 20 // 1 TiB
	maxAuditMaxFiles      = 1000
)

// AuditConfig is the log.audit section.
type AuditConfig struct {
	// Path of the audit log: "" = off, "-" or "stdout" = standard output.
	Path string `yaml:"path"`
	// All logs every query, not only blocked and monitored ones.
	All bool `yaml:"all_queries"`
	// Anonymize truncates client addresses to /24 (IPv4) and /48 (IPv6).
	Anonymize bool `yaml:"anonymize"`
	// MaxSizeMB rotates the file when it would grow past this size (0: 100).
	MaxSizeMB int `yaml:"max_size_mb"`
	// MaxFiles is how many rotated files (path.1 … path.N) are kept (0: 10).
	MaxFiles int `yaml:"max_files"`
}

// DefaultAuditConfig returns the defaults: off, 100 MB files, 10 kept.
func DefaultAuditConfig() AuditConfig {
	return AuditConfig{MaxSizeMB: defaultAuditMaxSizeMB, MaxFiles: defaultAuditMaxFiles}
}

func (c AuditConfig) toStdout() bool { return c.Path == "-" || c.Path == "stdout" }

// Validate checks the values without opening the file; NewAuditLog reports
// a path it cannot open.
func (c AuditConfig) Validate() error {
	if c.Path != "" && !c.toStdout() {
		if fi, err := os.Stat(c.Path); err == nil && fi.IsDir() {
			return configErr("log.audit.path", c.Path, "is a directory; give a file path, \"stdout\" or \"\" (off)")
		}
	}
	if c.MaxSizeMB < 0 || c.MaxSizeMB > maxAuditMaxSizeMB {
		return configErr("log.audit.max_size_mb", strconv.Itoa(c.MaxSizeMB),
			fmt.Sprintf("must be 1 to %d (0 means %d)", maxAuditMaxSizeMB, defaultAuditMaxSizeMB))
	}
	if c.MaxFiles < 0 || c.MaxFiles > maxAuditMaxFiles {
		return configErr("log.audit.max_files", strconv.Itoa(c.MaxFiles),
			fmt.Sprintf("must be 1 to %d (0 means %d)", maxAuditMaxFiles, defaultAuditMaxFiles))
	}
	return nil
}

// DefaultAdminListen is where the admin HTTP listener binds unless configured.
const DefaultAdminListen = "127.0.0.1:9153"

// AdminConfig is the admin section: the HTTP listener for /metrics,
// /healthz, /readyz and the /v1 endpoints.
type AdminConfig struct {
	// Listen is host:port; "" turns the admin listener off.
	Listen string `yaml:"listen"`
	// Pprof serves Go's profiler under /debug/pprof/ (off by default: it
	// exposes internals, so keep the listener on loopback when it is on).
	Pprof bool `yaml:"pprof"`
	// Token, when set, is the bearer token every request needs except
	// /healthz, /readyz and /metrics (see admin_auth.go). Required when
	// Listen is not a loopback address.
	Token string `yaml:"token"`
	// TokenFile names a file holding the token instead (surrounding
	// whitespace ignored), so it can live outside the YAML, e.g. in a
	// container secret. Set Token or TokenFile, not both.
	TokenFile string `yaml:"token_file"`
	// ProtectMetrics makes /metrics need the token too.
	ProtectMetrics bool `yaml:"protect_metrics"`
}

// DefaultAdminConfig returns the default admin config (127.0.0.1:9153).
func DefaultAdminConfig() AdminConfig { return AdminConfig{Listen: DefaultAdminListen} }

// Validate checks that Listen is "" or host:port with an IP address (or
// localhost, or empty for all interfaces) and a port 0-65535.
func (c AdminConfig) Validate() error {
	if c.Listen == "" {
		return nil
	}
	bad := func(why string) error {
		return configErr("admin.listen", c.Listen, why+"; want host:port such as "+DefaultAdminListen+", or \"\" to turn the admin listener off")
	}
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return bad("not host:port")
	}
	if host != "" && host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			return bad("host is not an IP address")
		}
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || port == "" || p > 65535 {
		return bad("port must be a number from 0 to 65535")
	}
	return c.validateAuth(host)
}
