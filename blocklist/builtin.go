package blocklist

import (
	"embed"
	"slices"
	"strings"
)

// builtinPrefix marks a source compiled into the binary, e.g. "builtin:tiktok".
const builtinPrefix = "builtin:"

// builtinFS holds the lists shipped with dnsward; see builtin/README.md.
// Domain lists end in .domains, network lists (response-IP policy) in .cidrs.
//
//go:embed builtin/*.domains builtin/*.cidrs
var builtinFS embed.FS

var builtinSuffixes = []string{".domains", ".cidrs"}

// BuiltinNames lists the names usable as "builtin:NAME" sources, sorted.
func BuiltinNames() []string {
	entries, _ := builtinFS.ReadDir("builtin") // cannot fail: embedded at build time
	var names []string
	for _, e := range entries {
		for _, suffix := range builtinSuffixes {
			if name, ok := strings.CutSuffix(e.Name(), suffix); ok {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	return names
}

// Builtin returns the content of the built-in list NAME (without the
// "builtin:" prefix) and whether it exists.
func Builtin(name string) ([]byte, bool) {
	if name == "" || strings.ContainsAny(name, "/\\.") {
		return nil, false
	}
	for _, suffix := range builtinSuffixes {
		if b, err := builtinFS.ReadFile("builtin/" + name + suffix); err == nil {
			return b, true
		}
	}
	return nil, false
}
