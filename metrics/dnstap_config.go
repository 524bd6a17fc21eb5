package metrics

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

const (
	defaultDnstapBufferSize = 10000
	maxDnstapBufferSize     = 1_000_000
	// maxUnixSocketPath is what fits in sockaddr_un.sun_path with its NUL.
	maxUnixSocketPath = 107
)

// DnstapConfig is the dnstap section: where CLIENT_QUERY and
// CLIENT_RESPONSE messages go. Socket and TCP both empty turns dnstap off.
type DnstapConfig struct {
	// Socket is the path of a unix socket a dnstap reader listens on.
	Socket string `yaml:"socket"`
	// TCP is the host:port of a dnstap reader (instead of Socket).
	TCP string `yaml:"tcp"`
	// Identity and Version are copied into every message ("" leaves them out).
	Identity string `yaml:"identity"`
	Version  string `yaml:"version"`
	// BufferSize is how many queries wait for the writer before new ones
	// are dropped and counted (0: 10000).
	BufferSize int `yaml:"buffer_size"`
}

// DefaultDnstapConfig returns the defaults: off, a 10000-query buffer.
func DefaultDnstapConfig() DnstapConfig { return DnstapConfig{BufferSize: defaultDnstapBufferSize} }

// Enabled reports whether a reader address is configured.
func (c DnstapConfig) Enabled() bool { return c.Socket != "" || c.TCP != "" }

// Validate checks the values without connecting: a reader that is not
// there yet is not a config error (the writer keeps trying).
func (c DnstapConfig) Validate() error {
	if c.Socket != "" && c.TCP != "" {
		return configErr("dnstap.tcp", c.TCP, "dnstap.socket is set too; give either socket (a unix socket path) or tcp (host:port)")
	}
	if c.Socket != "" {
		if err := validateSocketPath(c.Socket); err != nil {
			return err
		}
	}
	if c.TCP != "" {
		if err := validateReaderAddr(c.TCP); err != nil {
			return err
		}
	}
	if c.BufferSize < 0 || c.BufferSize > maxDnstapBufferSize {
		return configErr("dnstap.buffer_size", strconv.Itoa(c.BufferSize),
			fmt.Sprintf("must be 1 to %d (0 means %d)", maxDnstapBufferSize, defaultDnstapBufferSize))
	}
	return nil
}

func validateSocketPath(path string) error {
	if len(path) > maxUnixSocketPath {
		return configErr("dnstap.socket", path,
			fmt.Sprintf("is %d bytes; unix socket paths can have at most %d", len(path), maxUnixSocketPath))
	}
	if strings.ContainsRune(path, 0) {
		return configErr("dnstap.socket", path, "contains a NUL byte")
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return configErr("dnstap.socket", path, "is a directory; give the path of the reader's socket")
	}
	return nil
}

func validateReaderAddr(addr string) error {
	bad := func(why string) error {
		return configErr("dnstap.tcp", addr, why+"; want host:port such as 127.0.0.1:6000")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return bad("not host:port")
	}
	if host == "" {
		return bad("the host is missing")
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return bad("port must be a number from 1 to 65535")
	}
	return nil
}
