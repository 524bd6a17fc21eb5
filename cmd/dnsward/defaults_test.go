package main

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/dnsward/dnsward/blocklist"
	"github.com/dnsward/dnsward/configs"
)

// The packages' DefaultConfig functions are the one truth about defaults;
// the embedded default config and the README's table must say the same.

// fieldAt finds the config field for a YAML key path such as
// "cache.max_ttl", following inlined structs.
func fieldAt(v reflect.Value, path string) (reflect.Value, bool) {
	for _, key := range strings.Split(path, ".") {
		var ok bool
		if v, ok = childField(v, key); !ok {
			return reflect.Value{}, false
		}
	}
	return v, true
}

func childField(v reflect.Value, key string) (reflect.Value, bool) {
	if v.Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	for i := range v.NumField() {
		tag := v.Type().Field(i).Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		switch {
		case name == key:
			return v.Field(i), true
		case opts == "inline":
			if f, ok := childField(v.Field(i), key); ok {
				return f, true
			}
		}
	}
	return reflect.Value{}, false
}

// decodeAs reads YAML text (or a node) as a value of t.
func decodeAs(t *testing.T, typ reflect.Type, node *yaml.Node) reflect.Value {
	t.Helper()
	p := reflect.New(typ)
	if err := node.Decode(p.Interface()); err != nil {
		t.Fatalf("line %d: %v", node.Line, err)
	}
	return p.Elem()
}

var backticked = regexp.MustCompile("`([^`]*)`")

// listDefaults are what a list's keys mean when left out (lists is a map,
// so no DefaultConfig can hold them).
var listDefaults = map[string]any{
	"lists.NAME.refresh":   blocklist.DefaultRefresh,
	"lists.NAME.on_expire": blocklist.OnExpireKeep,
	"unknown_token":        blocklist.UnknownTokenAddress,
}

func TestREADMEDefaultsAreTheCodeDefaults(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defaults := reflect.ValueOf(defaultFileConfig())
	checked := 0
	for _, line := range strings.Split(string(readme), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		keys, values := backticked.FindAllStringSubmatch(cells[1], -1), backticked.FindAllStringSubmatch(cells[2], -1)
		if len(values) == 0 || strings.HasPrefix(keys[0][1], "dnsward") {
			continue // no default to check ("—", a description), or the commands table
		}
		if len(keys) != len(values) {
			t.Errorf("README row %q: %d keys but %d defaults", line, len(keys), len(values))
			continue
		}
		for i, k := range keys {
			key := k[1]
			if strings.HasPrefix(key, ".") { // ".ipv6" after "blocking.sinkhole.ipv4"
				prev := keys[i-1][1]
				key = prev[:strings.LastIndex(prev, ".")] + key
			}
			var node yaml.Node
			if err := yaml.Unmarshal([]byte(values[i][1]), &node); err != nil {
				t.Fatalf("README default %q of %s: %v", values[i][1], key, err)
			}
			want, ok := fieldAt(defaults, key)
			if d, listKey := listDefaults[key]; listKey { // per-list keys: "" or 0 in the YAML means these
				want, ok = reflect.ValueOf(d), true
			}
			if !ok {
				t.Errorf("README documents %s, which the config does not have", key)
				continue
			}
			if got := decodeAs(t, want.Type(), node.Content[0]); !reflect.DeepEqual(got.Interface(), want.Interface()) {
				t.Errorf("README says %s defaults to %s; the code says %v", key, values[i][1], want.Interface())
			}
			checked++
		}
	}
	if checked < 15 {
		t.Fatalf("checked only %d README defaults; did the table's format change?", checked)
	}
}

// The embedded default config sets some keys to their defaults, to show
// them; those must be the code's defaults. Keys whose default is empty
// (upstreams, lists, groups) are the config's own choices.
func TestEmbeddedDefaultConfigRepeatsTheCodeDefaults(t *testing.T) {
	var root yaml.Node
	if err := yaml.Unmarshal(configs.Default(), &root); err != nil {
		t.Fatal(err)
	}
	defaults := reflect.ValueOf(defaultFileConfig())
	checked := 0
	var walk func(prefix string, n *yaml.Node)
	walk = func(prefix string, n *yaml.Node) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := prefix+n.Content[i].Value, n.Content[i+1]
			want, ok := fieldAt(defaults, key)
			switch {
			case !ok:
				t.Errorf("line %d: %s is not a config key", n.Content[i].Line, key)
			case val.Kind == yaml.MappingNode && want.Kind() == reflect.Struct:
				walk(key+".", val)
			case !want.IsZero():
				if got := decodeAs(t, want.Type(), val); !reflect.DeepEqual(got.Interface(), want.Interface()) {
					t.Errorf("line %d: %s is %v in configs/default.yaml but defaults to %v", val.Line, key, got.Interface(), want.Interface())
				}
				checked++
			}
		}
	}
	walk("", root.Content[0])
	if checked < 5 {
		t.Fatalf("checked only %d keys", checked)
	}
}
