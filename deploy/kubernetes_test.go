package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// Where the offline schemas come from: Go modules, fetched through the
// module proxy like any dependency. kubectl-validate embeds the OpenAPI
// documents of Kubernetes' built-in APIs; prometheus-operator ships the
// CRDs of ServiceMonitor and PrometheusRule.
const (
	kubeconformModule = "github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0"
	builtinsModule    = "sigs.k8s.io/kubectl-validate@v0.0.4"
	builtinsK8s       = "1.30" // newest Kubernetes release that module embeds
	operatorModule    = "github.com/prometheus-operator/prometheus-operator@v0.89.0"
)

// TestKubernetesManifests validates every manifest in deploy/kubernetes
// with kubeconform -strict against JSON schemas made here from those
// modules, with every proxy pointed at a closed port so a schema fetch
// from the network would fail. It also checks what the issue asks of the
// manifests, that the ConfigMap's config passes dnsward check, and that
// the PrometheusRule carries docker/prometheus/alerts.yml's rules.
func TestKubernetesManifests(t *testing.T) {
	skipShort(t)
	dir := filepath.Join(repoRoot(t), "deploy", "kubernetes")
	docs := loadKustomization(t, dir)
	checkManifestShape(t, docs)
	checkConfigMapConfig(t, docs)
	checkPrometheusRule(t, docs)

	work := t.TempDir()
	schemas := filepath.Join(work, "schemas")
	writeSchemas(t, schemas, docs)
	bin := filepath.Join(work, "bin", "kubeconform")
	if out, err := tryCmd(10*time.Minute, work, []string{"GOBIN=" + filepath.Dir(bin), "GOFLAGS=-mod=mod"}, "go", "install", kubeconformModule); err != nil {
		t.Fatalf("go install %s: %v\n%s", kubeconformModule, err, out)
	}
	offline := []string{"HTTP_PROXY=http://127.0.0.1:9", "HTTPS_PROXY=http://127.0.0.1:9", "NO_PROXY="}
	flags := []string{"-strict", "-summary", "-verbose", "-output", "json",
		"-schema-location", filepath.Join(schemas, "{{ .ResourceKind }}{{ .KindSuffix }}.json")}
	var files []string
	for _, d := range docs {
		if !slices.Contains(files, d.file) {
			files = append(files, d.file)
		}
	}
	report, err := kubeconform(t, dir, offline, bin, slices.Concat(flags, files))
	for _, r := range report.Resources {
		if r.Status != "statusValid" {
			t.Errorf("%s %s/%s: %s %s", r.Filename, r.Kind, r.Name, r.Status, r.Msg)
		}
	}
	if err != nil || report.Summary.Valid != len(docs) {
		t.Errorf("kubeconform: %v; %d valid resources, the kustomization has %d", err, report.Summary.Valid, len(docs))
	}

	// The schemas must be strict, or the pass above means little: a
	// misspelt field in a built-in kind and in a CRD must be rejected.
	broken := filepath.Join(work, "broken.yaml")
	writeMisspelt(t, broken, docs)
	report, _ = kubeconform(t, dir, offline, bin, slices.Concat(flags, []string{broken}))
	if report.Summary.Invalid != 2 {
		t.Errorf("misspelt fields: kubeconform found %d invalid resources, want 2: %+v", report.Summary.Invalid, report.Resources)
	}
}

type kubeconformReport struct {
	Resources []struct{ Filename, Kind, Name, Status, Msg string }
	Summary   struct{ Valid, Invalid, Errors, Skipped int }
}

// kubeconform runs it and decodes its JSON report; err is its exit status.
func kubeconform(t *testing.T, dir string, env []string, bin string, args []string) (kubeconformReport, error) {
	t.Helper()
	out, err := tryCmd(5*time.Minute, dir, env, bin, args...)
	var report kubeconformReport
	if jerr := json.Unmarshal([]byte(out), &report); jerr != nil {
		t.Fatalf("kubeconform: %v %v\n%s", err, jerr, out)
	}
	return report, err
}

// writeMisspelt writes the Deployment and the ServiceMonitor with one
// field name misspelt in each.
func writeMisspelt(t *testing.T, path string, docs []manifest) {
	t.Helper()
	var out bytes.Buffer
	for _, d := range docs {
		if d.kind() != "Deployment" && d.kind() != "ServiceMonitor" {
			continue
		}
		data, _ := yaml.Marshal(d.obj)
		var obj map[string]any
		if err := yaml.Unmarshal(data, &obj); err != nil {
			t.Fatal(err)
		}
		dig(obj, "spec")["replicaCount"] = 2 // no such field in either kind
		data, _ = yaml.Marshal(obj)
		out.WriteString("---\n")
		out.Write(data)
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// manifest is one YAML document of a manifest file.
type manifest struct {
	file string
	obj  map[string]any
}

func (m manifest) kind() string { return str(m.obj, "kind") }

// loadKustomization reads kustomization.yaml, checks it lists every
// manifest in the directory, and returns each document of each one.
func loadKustomization(t *testing.T, dir string) []manifest {
	t.Helper()
	var kust struct {
		Resources []string `yaml:"resources"`
	}
	readYAMLFile(t, filepath.Join(dir, "kustomization.yaml"), &kust)
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	var onDisk []string
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" {
			onDisk = append(onDisk, base)
		}
	}
	if !slices.Equal(slices.Sorted(slices.Values(kust.Resources)), onDisk) {
		t.Fatalf("kustomization resources %v, directory has %v", kust.Resources, onDisk)
	}
	var docs []manifest
	for _, name := range kust.Resources {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var obj map[string]any
			if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			docs = append(docs, manifest{file: name, obj: obj})
		}
	}
	return docs
}

// checkManifestShape checks the properties the deployment depends on:
// redundancy, probes, the security context, client addresses kept.
func checkManifestShape(t *testing.T, docs []manifest) {
	t.Helper()
	kinds := map[string]int{}
	for _, d := range docs {
		kinds[d.kind()]++
		switch d.kind() {
		case "Deployment":
			spec := dig(d.obj, "spec")
			if n, _ := spec["replicas"].(int); n < 2 {
				t.Errorf("Deployment replicas %v, want at least 2", spec["replicas"])
			}
			pod := dig(spec, "template", "spec")
			if dig(pod, "affinity", "podAntiAffinity") == nil {
				t.Error("Deployment has no pod anti-affinity")
			}
			c := pod["containers"].([]any)[0].(map[string]any)
			if p := str(dig(c, "readinessProbe", "httpGet"), "path"); p != "/readyz" {
				t.Errorf("readiness probe path %q", p)
			}
			if p := str(dig(c, "livenessProbe", "httpGet"), "path"); p != "/healthz" {
				t.Errorf("liveness probe path %q", p)
			}
			sc := dig(c, "securityContext")
			caps := dig(sc, "capabilities")
			if sc["readOnlyRootFilesystem"] != true || sc["runAsNonRoot"] != true || sc["allowPrivilegeEscalation"] != false ||
				fmt.Sprint(caps["drop"]) != "[ALL]" || fmt.Sprint(caps["add"]) != "[NET_BIND_SERVICE]" {
				t.Errorf("container securityContext %v", sc)
			}
			if dig(c, "resources", "requests") == nil {
				t.Error("container has no resource requests")
			}
		case "Service":
			spec := dig(d.obj, "spec")
			if spec["type"] == "LoadBalancer" && spec["externalTrafficPolicy"] != "Local" {
				t.Error("the DNS Service must keep client addresses: externalTrafficPolicy: Local")
			}
		}
	}
	for _, k := range []string{"Deployment", "ConfigMap", "Service", "PodDisruptionBudget", "ServiceMonitor", "PrometheusRule"} {
		if kinds[k] == 0 {
			t.Errorf("no %s among the manifests", k)
		}
	}
}

// checkConfigMapConfig runs dnsward check on the config the pods get.
func checkConfigMapConfig(t *testing.T, docs []manifest) {
	t.Helper()
	for _, d := range docs {
		if d.kind() != "ConfigMap" {
			continue
		}
		dir := t.TempDir()
		path := filepath.Join(dir, "dnsward.yaml")
		token := filepath.Join(dir, "token") // the Secret the Deployment mounts
		if err := os.WriteFile(token, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		config := strings.ReplaceAll(str(dig(d.obj, "data"), "dnsward.yaml"), "/etc/dnsward-admin/token", token)
		if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(dir, "dnsward")
		buildGo(t, "./cmd/dnsward", bin)
		if out := runCmd(t, time.Minute, dir, bin, "check", "-config", path); !strings.Contains(out, ": OK") {
			t.Fatalf("dnsward check on the ConfigMap's config:\n%s", out)
		}
		return
	}
	t.Fatal("no ConfigMap")
}

// checkPrometheusRule expects the operator's rules to be alerts.yml's, and
// runs promtool on them.
func checkPrometheusRule(t *testing.T, docs []manifest) {
	t.Helper()
	var alerts map[string]any
	readYAMLFile(t, filepath.Join(repoRoot(t), "docker", "prometheus", "alerts.yml"), &alerts)
	for _, d := range docs {
		if d.kind() != "PrometheusRule" {
			continue
		}
		groups := dig(d.obj, "spec")["groups"]
		if !reflect.DeepEqual(groups, alerts["groups"]) {
			t.Fatal("prometheusrule.yaml's groups differ from docker/prometheus/alerts.yml: copy them over (indented under spec:)")
		}
		requireTools(t, "promtool")
		data, err := yaml.Marshal(map[string]any{"groups": groups})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "rules.yml")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		runCmd(t, time.Minute, "", "promtool", "check", "rules", path)
		return
	}
	t.Fatal("no PrometheusRule")
}

func dig(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		next, ok := m[k].(map[string]any)
		if !ok {
			return nil
		}
		m = next
	}
	return m
}

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}
