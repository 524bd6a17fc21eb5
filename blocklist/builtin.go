package blocklist

import (
	"embed"
	"slices"
	"strings"
)

// builtinPrefix marks a source compiled into the binary, e.g. "builtin:tiktok".
const builtinPrefix = "builtin:"

// builtinFS holds the lists shipped with dnsward; see builtin/README.md.
//
//go:embed builtin/*.domains
var builtinFS embed.FS

// BuiltinNames lists the names usable as "builtin:NAME" sources, sorted.
func BuiltinNames() []string {
	entries, _ := builtinFS.ReadDir("builtin") // cannot fail: embedded at build time
	var names []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".domains"); ok {
			names = append(names, name)
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
	b, err := builtinFS.ReadFile("builtin/" + name + ".domains")
	return b, err == nil
}
