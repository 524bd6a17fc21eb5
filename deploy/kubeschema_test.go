package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeSchemas writes, for each apiVersion/kind among docs, the strict
// JSON schema kubeconform looks for at
// DIR/{{ .ResourceKind }}{{ .KindSuffix }}.json. It does what the
// openapi2jsonschema script behind kubeconform's published schemas does:
// one schema per kind, additionalProperties false on every object that
// lists its properties (so an unknown or misspelt field is an error).
func writeSchemas(t *testing.T, dir string, docs []manifest) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	builtins := filepath.Join(moduleDir(t, builtinsModule), "pkg", "openapiclient", "builtins", builtinsK8s)
	crds := filepath.Join(moduleDir(t, operatorModule), "example", "prometheus-operator-crd")
	done := map[string]bool{}
	for _, d := range docs {
		apiVersion, kind := str(d.obj, "apiVersion"), d.kind()
		name := schemaFileName(apiVersion, kind)
		if done[name] {
			continue
		}
		done[name] = true
		group, version, ok := strings.Cut(apiVersion, "/")
		if !ok {
			group, version = "", apiVersion
		}
		var schema map[string]any
		if group == "monitoring.coreos.com" {
			schema = crdSchema(t, filepath.Join(crds, "monitoring.coreos.com_"+strings.ToLower(kind)+"s.yaml"), version)
		} else {
			schema = builtinSchema(t, builtins, group, version, kind)
		}
		strict(schema)
		data, err := json.Marshal(schema)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// schemaFileName is kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}.json:
// deployment-apps-v1.json, service-v1.json, servicemonitor-monitoring-v1.json.
func schemaFileName(apiVersion, kind string) string {
	group, version, ok := strings.Cut(apiVersion, "/")
	suffix := "-" + strings.ToLower(strings.Split(group, ".")[0])
	if ok {
		suffix += "-" + strings.ToLower(version)
	}
	return strings.ToLower(kind) + suffix + ".json"
}

// moduleDir downloads a module through the Go module proxy (or finds it in
// the module cache) and returns its directory.
func moduleDir(t *testing.T, module string) string {
	t.Helper()
	out, err := tryCmd(5*time.Minute, t.TempDir(), []string{"GOFLAGS=-mod=mod"}, "go", "mod", "download", "-json", module)
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal([]byte(out), &info); err != nil || jerr != nil || info.Dir == "" {
		t.Fatalf("go mod download %s: %v %v %s\n%s", module, err, jerr, info.Error, out)
	}
	return info.Dir
}

// builtinSchema is the component of the group/version's OpenAPI v3
// document tagged with that kind, the document's other components kept
// beside it for the $refs to resolve.
func builtinSchema(t *testing.T, builtins, group, version, kind string) map[string]any {
	t.Helper()
	path := filepath.Join(builtins, "api", version+".json")
	if group != "" {
		path = filepath.Join(builtins, "apis", group, version+".json")
	}
	var doc struct {
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no OpenAPI document for %s/%s in Kubernetes %s: %v", group, version, builtinsK8s, err)
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for name, s := range doc.Components.Schemas {
		gvks, _ := s.(map[string]any)["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			g, _ := g.(map[string]any)
			if g["group"] == group && g["version"] == version && g["kind"] == kind {
				return map[string]any{
					"$ref":       "#/components/schemas/" + name,
					"components": map[string]any{"schemas": doc.Components.Schemas},
				}
			}
		}
	}
	t.Fatalf("%s has no schema for kind %s", path, kind)
	return nil
}

// crdSchema is the openAPIV3Schema of the CRD's served version.
func crdSchema(t *testing.T, path, version string) map[string]any {
	t.Helper()
	var crd struct {
		Spec struct {
			Versions []struct {
				Name   string `yaml:"name"`
				Schema struct {
					OpenAPIV3Schema map[string]any `yaml:"openAPIV3Schema"`
				} `yaml:"schema"`
			} `yaml:"versions"`
		} `yaml:"spec"`
	}
	readYAMLFile(t, path, &crd)
	for _, v := range crd.Spec.Versions {
		if v.Name == version && v.Schema.OpenAPIV3Schema != nil {
			return v.Schema.OpenAPIV3Schema
		}
	}
	t.Fatalf("%s: no schema for version %s", path, version)
	return nil
}

// strict sets additionalProperties: false on each object schema that lists
// its properties and does not keep unknown fields on purpose.
func strict(v any) {
	switch v := v.(type) {
	case map[string]any:
		_, hasProps := v["properties"]
		_, hasAdditional := v["additionalProperties"]
		if hasProps && !hasAdditional && v["x-kubernetes-preserve-unknown-fields"] != true {
			v["additionalProperties"] = false
		}
		for _, child := range v {
			strict(child)
		}
	case []any:
		for _, child := range v {
			strict(child)
		}
	}
}
