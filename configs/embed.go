// Package configs holds dnsward's shipped YAML configs. The default one is
// embedded in the binary and used when serve runs without -config.
package configs

import _ "embed"

//go:embed default.yaml
var defaultYAML []byte

// Default returns the embedded default config.
func Default() []byte { return append([]byte(nil), defaultYAML...) }
