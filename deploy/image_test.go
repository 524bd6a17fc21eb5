package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// podmanRun are the flags this kernel needs for rootful podman (crun fails
// on its cgroup setup; runc with explicit ulimits works).
var podmanRun = []string{"--runtime", "runc", "--ulimit", "nofile=8192:8192", "--ulimit", "nproc=8192:8192"}

// TestContainerImage builds the image's offline target with podman from a
// root file system docker/rootfs.sh made on this host, runs it with every
// capability but NET_BIND_SERVICE dropped and unprivileged ports starting
// at 1024, and checks what an operator relies on: it answers on port 53
// through the published port, blocks by policy, turns healthy, runs as a
// non-root uid, and exits 0 on SIGTERM as PID 1.
func TestContainerImage(t *testing.T) {
	skipShort(t)
	requireTools(t, "podman", "runc", "setcap")
	requireRoot(t, "rootful podman, and setcap for the file capability")
	root := repoRoot(t)
	work := t.TempDir()
	name := fmt.Sprintf("dnsward-test-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	image := "localhost/" + name + ":test"

	runCmd(t, 10*time.Minute, root, "docker/rootfs.sh", work, "v0.0.0-imagetest")
	t.Cleanup(func() { _, _ = tryCmd(time.Minute, "", nil, "podman", "rmi", "-f", image) })
	runCmd(t, 5*time.Minute, root, "podman", "build", "--format", "docker", "--runtime", "runc", "--layers=false",
		"--target", "offline", "-t", image, "-f", "docker/Dockerfile", work)
	checkImageConfig(t, image)

	// The shipped config passes check as it is (no network needed).
	out := runCmd(t, time.Minute, "", "podman", append(append([]string{"run", "--rm", "--network", "none"}, podmanRun...),
		image, "check", "-config", "/etc/dnsward/dnsward.yaml")...)
	if !strings.Contains(out, "/etc/dnsward/dnsward.yaml: OK") {
		t.Fatalf("check of the shipped config:\n%s", out)
	}
	if out := runCmd(t, time.Minute, "", "podman", append(append([]string{"run", "--rm", "--network", "none"}, podmanRun...),
		image, "version")...); !strings.Contains(out, "v0.0.0-imagetest") {
		t.Fatalf("version not stamped: %s", out)
	}

	port := freeLoopbackPort(t)
	cfg := containerConfig(t, root, work)
	stub := filepath.Join(work, "stubdns")
	buildGo(t, "./deploy/internal/stubdns", stub)
	volume := name + "-state"
	t.Cleanup(func() { _, _ = tryCmd(time.Minute, "", nil, "podman", "volume", "rm", "-f", volume) })
	t.Cleanup(func() { removeContainer(t, name) })
	runArgs := append([]string{"run", "-d", "--name", name}, podmanRun...)
	runArgs = append(runArgs,
		"--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE", "--security-opt", "no-new-privileges",
		"--read-only", "--sysctl", "net.ipv4.ip_unprivileged_port_start=1024",
		"-p", fmt.Sprintf("127.0.0.1:%d:53/udp", port), "-p", fmt.Sprintf("127.0.0.1:%d:53/tcp", port),
		"-v", cfg+":/etc/dnsward/dnsward.yaml:ro", "-v", volume+":/var/lib/dnsward", image)
	runCmd(t, time.Minute, "", "podman", runArgs...)

	// The upstream: a stub in the container's network namespace, so no
	// query leaves the machine.
	t.Cleanup(func() { removeContainer(t, name+"-upstream") })
	stubArgs := append([]string{"run", "-d", "--name", name + "-upstream", "--network", "container:" + name}, podmanRun...)
	runCmd(t, time.Minute, "", "podman", append(stubArgs, "-v", stub+":/stubdns:ro", "--entrypoint", "/stubdns", image, "-listen", "127.0.0.1:5300")...)

	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for _, network := range []string{"udp", "tcp"} {
		expectForwarded(t, waitAnswer(t, network, addr, "example.org", 30*time.Second), "example.org over "+network)
		expectBlocked(t, waitAnswer(t, network, addr, "www.tiktok.com", 5*time.Second), "www.tiktok.com over "+network)
	}
	waitHealthy(t, name)
	checkProcess(t, name)
	checkStateVolume(t, volume)

	runCmd(t, time.Minute, "", "podman", "stop", "-t", "20", name)
	code := strings.TrimSpace(runCmd(t, time.Minute, "", "podman", "inspect", "--format", "{{.State.ExitCode}}", name))
	logs, _ := tryCmd(time.Minute, "", nil, "podman", "logs", name)
	if code != "0" || !strings.Contains(logs, "shutting down") {
		t.Fatalf("after SIGTERM: exit code %s (want 0)\n%s", code, logs)
	}
}

// checkImageConfig reads the settings the image carries.
func checkImageConfig(t *testing.T, image string) {
	t.Helper()
	out := runCmd(t, time.Minute, "", "podman", "image", "inspect", "--format",
		"{{.Config.User}}|{{json .Config.Healthcheck.Test}}|{{json .Config.Entrypoint}}|{{json .Config.Volumes}}", image)
	for _, want := range []string{"65532:65532|", `/usr/local/bin/dnsward","health"`, `["/usr/local/bin/dnsward"]`, `"/var/lib/dnsward"`} {
		if !strings.Contains(out, want) {
			t.Fatalf("image config lacks %s:\n%s", want, out)
		}
	}
}

// containerConfig is the shipped docker/dnsward.yaml with the upstream
// pointed at the stub (its Quad9 upstreams are unreachable here).
func containerConfig(t *testing.T, root, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "docker", "dnsward.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["upstream"].(map[string]any)["servers"] = []string{"udp://127.0.0.1:5300"}
	if data, err = yaml.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "dnsward.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitHealthy runs the image's HEALTHCHECK until it passes (bounded).
func waitHealthy(t *testing.T, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := tryCmd(time.Minute, "", nil, "podman", "healthcheck", "run", name)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthcheck never passed: %v\n%s", err, out)
		}
		time.Sleep(time.Second)
	}
	status := runCmd(t, time.Minute, "", "podman", "inspect", "--format", "{{.State.Health.Status}}", name)
	if strings.TrimSpace(status) != "healthy" {
		t.Fatalf("health status %q after a passing check", status)
	}
}

// checkProcess reads PID 1's credentials from the host's /proc: a non-root
// uid holding CAP_NET_BIND_SERVICE and nothing else.
func checkProcess(t *testing.T, name string) {
	t.Helper()
	pid := strings.TrimSpace(runCmd(t, time.Minute, "", "podman", "inspect", "--format", "{{.State.Pid}}", name))
	status, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(string(status), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	if uid := strings.Fields(fields["Uid"]); len(uid) == 0 || uid[0] != "65532" || uid[1] != "65532" {
		t.Fatalf("process runs as uid %q, want 65532", fields["Uid"])
	}
	if fields["CapEff"] != "0000000000000400" {
		t.Fatalf("effective capabilities %s, want only CAP_NET_BIND_SERVICE (0x400)", fields["CapEff"])
	}
}

// checkStateVolume expects the named volume's directory owned by the
// image's user, so last-good list copies can be written.
func checkStateVolume(t *testing.T, volume string) {
	t.Helper()
	dir := strings.TrimSpace(runCmd(t, time.Minute, "", "podman", "volume", "inspect", "--format", "{{.Mountpoint}}", volume))
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || strconv.Itoa(int(st.Uid)) != "65532" {
		t.Fatalf("state volume %s owned by %v, want uid 65532", dir, fi.Sys())
	}
}

func removeContainer(t *testing.T, name string) {
	if out, err := tryCmd(time.Minute, "", nil, "podman", "rm", "-f", "-v", "-t", "0", name); err != nil && !strings.Contains(out, "no such container") {
		t.Logf("podman rm %s: %v\n%s", name, err, out)
	}
}
