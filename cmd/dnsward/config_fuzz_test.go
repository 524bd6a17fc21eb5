package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var yamlLine = regexp.MustCompile(`^cfg\.yaml: line \d+: `)

// FuzzParseConfig: no input makes the config loader panic or hang, every
// error names the file, a YAML syntax error names a line, and an error
// about a key that is in the file names the line of that key (what lets a
// user at 3 a.m. find it).
func FuzzParseConfig(f *testing.F) {
	for _, path := range []string{"../../configs/dnsward.yaml", "../../configs/default.yaml", "../../docker/dnsward.yaml"} {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"upstream:\n  servers: [\"127.0.0.1:53\"]\nadmin:\n  listen: \"0.0.0.0:9153\"\n",
		"upstream:\n  servers: [\"127.0.0.1:53\"]\ngroups:\n  - name: gov\n    clients: [\"10.0.0.0/33\"]\n",
		"listen: [\n",
		"upstream: &a\n  servers: *a\n",
		"lists:\n  x: {sources: [\"\"]}\n",
	} {
		f.Add([]byte(s))
	}
	resolv := filepath.Join(f.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 192.0.2.53\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return // yaml.v3 is quadratic on some huge inputs; configs are small
		}
		_, err := parseConfig(data, "cfg.yaml", []string{resolv})
		if err == nil {
			return
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "cfg.yaml") {
			t.Fatalf("error does not name the file: %q", msg)
		}
		var root yaml.Node
		if yaml.Unmarshal(data, &root) != nil {
			if !yamlLine.MatchString(msg) {
				t.Fatalf("YAML syntax error names no line: %q", msg)
			}
			return
		}
		var k interface{ Key() string }
		if !errors.As(err, &k) {
			return
		}
		if line := lineOf(&root, k.Key()); line > 0 && !strings.HasPrefix(msg, fmt.Sprintf("cfg.yaml:%d: ", line)) {
			t.Fatalf("error about %s (line %d in the file) does not name that line: %q", k.Key(), line, msg)
		}
	})
}
