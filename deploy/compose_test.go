package deploy

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// composeFile is the part of docker/compose.yaml the checks read.
type composeFile struct {
	Services map[string]struct {
		Image string `yaml:"image"`
		Build struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
		Volumes     []string          `yaml:"volumes"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

// TestComposeStack checks docker/compose.yaml without a container engine
// or pulled images: the files parse, every mounted file exists, the
// services point at each other by the names compose gives them, and
// promtool accepts the Prometheus config laid out as the container sees it.
func TestComposeStack(t *testing.T) {
	dockerDir := filepath.Join(repoRoot(t), "docker")
	var compose composeFile
	readYAMLFile(t, filepath.Join(dockerDir, "compose.yaml"), &compose)
	for _, svc := range []string{"dnsward", "prometheus", "grafana"} {
		if _, ok := compose.Services[svc]; !ok {
			t.Fatalf("compose.yaml has no %s service", svc)
		}
	}
	build := compose.Services["dnsward"].Build
	if _, err := os.Stat(filepath.Join(dockerDir, build.Context, build.Dockerfile)); err != nil {
		t.Errorf("dnsward build: %v", err)
	}
	if img := compose.Services["prometheus"].Image; !strings.HasPrefix(img, "prom/prometheus:v3.") {
		t.Errorf("prometheus image %q: want a pinned 3.x tag", img)
	}
	mounts := map[string]string{} // container path → host path
	for name, svc := range compose.Services {
		for _, v := range svc.Volumes {
			src, dst, _ := strings.Cut(v, ":")
			dst, _, _ = strings.Cut(dst, ":")
			if !strings.HasPrefix(src, ".") {
				if _, ok := compose.Volumes[src]; !ok {
					t.Errorf("%s: named volume %q is not declared under volumes:", name, src)
				}
				continue
			}
			host := filepath.Join(dockerDir, src)
			if _, err := os.Stat(host); err != nil {
				t.Errorf("%s mounts %s: %v", name, src, err)
			}
			mounts[dst] = host
		}
	}
	checkPrometheusAsMounted(t, mounts)
	checkGrafanaProvisioning(t, mounts, compose.Services["grafana"].Environment)
}

// checkPrometheusAsMounted copies /etc/prometheus as the container sees it
// and runs promtool there, so rule_files resolve the way they will at run
// time; the scrape target must be dnsward's service name and admin port.
func checkPrometheusAsMounted(t *testing.T, mounts map[string]string) {
	t.Helper()
	src, ok := mounts["/etc/prometheus"]
	if !ok {
		t.Fatal("prometheus: nothing mounted at /etc/prometheus")
	}
	var prom struct {
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAMLFile(t, filepath.Join(src, "prometheus.yml"), &prom)
	var dnsward struct {
		Admin struct {
			Listen string `yaml:"listen"`
		} `yaml:"admin"`
	}
	readYAMLFile(t, filepath.Join(mounts["/etc/dnsward/dnsward.yaml"]), &dnsward)
	_, adminPort, _ := net.SplitHostPort(dnsward.Admin.Listen)
	if len(prom.ScrapeConfigs) == 0 || len(prom.ScrapeConfigs[0].StaticConfigs) == 0 ||
		prom.ScrapeConfigs[0].StaticConfigs[0].Targets[0] != "dnsward:"+adminPort {
		t.Errorf("prometheus scrapes %+v, want dnsward:%s (the service name and admin.listen's port)", prom.ScrapeConfigs, adminPort)
	}

	requireTools(t, "promtool")
	etc := filepath.Join(t.TempDir(), "etc", "prometheus")
	if err := os.CopyFS(etc, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	runCmd(t, time.Minute, etc, "promtool", "check", "config", "prometheus.yml")
}

// checkGrafanaProvisioning parses the provisioning files and follows
// their paths into what compose mounts.
func checkGrafanaProvisioning(t *testing.T, mounts map[string]string, env map[string]string) {
	t.Helper()
	prov, ok := mounts["/etc/grafana/provisioning"]
	if !ok {
		t.Fatal("grafana: nothing mounted at /etc/grafana/provisioning")
	}
	var sources struct {
		Datasources []struct {
			URL string `yaml:"url"`
		} `yaml:"datasources"`
	}
	readYAMLFile(t, filepath.Join(prov, "datasources", "prometheus.yml"), &sources)
	if len(sources.Datasources) != 1 || sources.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("grafana datasource %+v, want http://prometheus:9090", sources.Datasources)
	}
	var dashboards struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAMLFile(t, filepath.Join(prov, "dashboards", "dnsward.yml"), &dashboards)
	if len(dashboards.Providers) != 1 {
		t.Fatalf("dashboard providers: %+v", dashboards.Providers)
	}
	dir, ok := mounts[dashboards.Providers[0].Options.Path]
	if !ok {
		t.Fatalf("dashboard provider path %q is not mounted", dashboards.Providers[0].Options.Path)
	}
	home := env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
	rel, err := filepath.Rel(dashboards.Providers[0].Options.Path, home)
	if err != nil || strings.HasPrefix(rel, "..") {
		t.Fatalf("home dashboard %q is outside the provisioned directory", home)
	}
	data, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(data, &dash); err != nil || dash["panels"] == nil {
		t.Fatalf("home dashboard %s: %v (panels: %v)", home, err, dash["panels"] != nil)
	}
}

func readYAMLFile(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
