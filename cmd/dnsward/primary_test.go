package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnstest"
)

// TestRPZPrimaryToSecondary runs two dnsward configs in-process: one
// publishes its managed group as an RPZ zone, the other takes that zone by
// axfr:// with TSIG (secret_file) and blocks by it; dnsward check shows
// the zone's serial.
// transferKeyYAML is the TSIG key an RPZ primary and its secondaries
// share; writeTransferKey puts its secret_file beside the config.
const transferKeyYAML = "tsig_keys:\n  transfer-key: {algorithm: hmac-sha256, secret_file: transfer.key}\n"

func writeTransferKey(t *testing.T, dir string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "transfer.key"), []byte(dnstest.TSIGSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// rpzPrimaryYAML serves the group blocking source as zone on addr to TSIG
// secondaries from loopback.
func rpzPrimaryYAML(source, zone, addr string) string {
	return transferKeyYAML + fmt.Sprintf(`lists:
  own: {sources: [%q]}
groups:
  - {name: managed, clients: ["10.0.0.0/8"], block: [own]}
rpz_primary:
  listen: [%q]
  zones: [{name: %s, group: managed}]
  tsig: transfer-key
  allow: [127.0.0.0/8]
`, source, addr, zone)
}

func TestRPZPrimaryToSecondary(t *testing.T) {
	up := startZoneServer(t, nil)
	dirA, dirB := t.TempDir(), t.TempDir()
	writeTransferKey(t, dirA)
	writeTransferKey(t, dirB)
	if err := os.WriteFile(filepath.Join(dirA, "own.txt"), []byte("tiktok.com\nexample-ban.org\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	primaryAddr := dnstest.FreeAddr(t)
	a := startApp(t, writeConfig(t, dirA, up.addr, rpzPrimaryYAML("own.txt", "rpz.dnsward.test", primaryAddr)))

	pathB := writeConfig(t, dirB, up.addr, transferKeyYAML+fmt.Sprintf(`lists:
  fleet: {sources: ["axfr://%s/rpz.dnsward.test"], tsig: transfer-key}
groups:
  - {name: everyone, clients: ["0.0.0.0/0"], block: [fleet]}
`, primaryAddr))
	b := startApp(t, pathB)
	if r := query(t, "127.0.0.1", b.dnsAddr(), "www.tiktok.com.", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("secondary answered www.tiktok.com with %s; want NXDOMAIN from the primary's policy", dns.RcodeToString[r.Rcode])
	}
	if r := query(t, "127.0.0.1", b.dnsAddr(), "example.com.", dns.TypeA); r.Rcode != dns.RcodeSuccess {
		t.Errorf("secondary answered example.com with %s; want NOERROR", dns.RcodeToString[r.Rcode])
	}

	// Status and metrics on both sides.
	if body := httpGet(t, "http://"+a.admin.Addr().String()+"/v1/rpz-primary"); !strings.Contains(body, `"zone": "rpz.dnsward.test."`) || !strings.Contains(body, `"axfr": 1`) {
		t.Errorf("/v1/rpz-primary = %s; want the zone and one AXFR served", body)
	}
	if m := httpGet(t, "http://"+a.admin.Addr().String()+"/metrics"); !strings.Contains(m, `dnsward_rpz_primary_transfers_total{group="managed",type="axfr"} 1`) {
		t.Errorf("primary metrics lack the AXFR served")
	}
	if body := httpGet(t, "http://"+b.admin.Addr().String()+"/v1/lists"); !strings.Contains(body, `"last_transfer": "axfr"`) {
		t.Errorf("/v1/lists = %s; want the zone's last transfer", body)
	}
	if m := httpGet(t, "http://"+b.admin.Addr().String()+"/metrics"); !strings.Contains(m, `dnsward_zone_transfers_total{list="fleet",outcome="success",type="axfr"} 1`) ||
		!strings.Contains(m, `dnsward_zone_serial{list="fleet"}`) {
		t.Errorf("secondary metrics lack the zone transfer and serial")
	}

	var out, errOut bytes.Buffer
	if code := checkCmd([]string{"-config", pathB}, &out, &errOut); code != 0 {
		t.Fatalf("check exited %d: %s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "zone rpz.dnsward.test. from "+primaryAddr+": serial ") || !strings.Contains(out.String(), "saved copy is current") {
		t.Errorf("check output lacks the zone's serial and transfer:\n%s", out.String())
	}
}

func TestRPZPrimaryConfigErrors(t *testing.T) {
	base := "upstream:\n  servers: [\"127.0.0.1:53\"]\ntsig_keys:\n  k: {secret: " + dnstest.TSIGSecret + "}\ngroups:\n  - {name: gov, clients: [10.0.0.0/8]}\n"
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown group", base + "rpz_primary:\n  listen: [\"127.0.0.1:5300\"]\n  zones: [{name: rpz.test, group: nosuch}]\n  tsig: k\n  allow: [127.0.0.1]\n",
			`cfg.yaml:9: rpz_primary.zones[0].group`},
		{"unknown key", base + "rpz_primary:\n  listen: [\"127.0.0.1:5300\"]\n  zones: [{name: rpz.test, group: gov}]\n  tsig: other\n  allow: [127.0.0.1]\n",
			`cfg.yaml:10: rpz_primary.tsig`},
		{"no key", base + "rpz_primary:\n  listen: [\"127.0.0.1:5300\"]\n  zones: [{name: rpz.test, group: gov}]\n  allow: [127.0.0.1]\n",
			`rpz_primary.tsig: a TSIG key is required`},
		{"bad list tsig", base + "lists:\n  z: {sources: [\"axfr://192.0.2.1/rpz.test\"], tsig: nope}\n",
			`cfg.yaml:8: lists.z.tsig`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig([]byte(tc.yaml), "cfg.yaml", []string{testResolvConf(t)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want it to contain %q", err, tc.want)
			}
		})
	}
}
