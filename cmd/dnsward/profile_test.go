package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	profileGovToken  = "0123456789abcdef0123456789abcdef"
	profileGovToken2 = "fedcba9876543210fedcba9876543210"
)

// selfSigned writes a certificate for names and its key into dir.
func selfSigned(t *testing.T, dir string, names ...string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageEmailProtection}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

// profileConfig has DoT, DoH and DoQ listeners, the certificate's first
// name as server name, and a gov group with two tokens.
func profileConfig(t *testing.T, extra string) (path, certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = selfSigned(t, dir, "dns.agency.example", "*.dns.agency.example")
	body := `listen_tls: ["192.0.2.53:853"]
listen_https: ["192.0.2.53:443"]
listen_quic: ["192.0.2.53:853"]
tls:
  cert_file: ` + certFile + `
  key_file: ` + keyFile + `
lists:
  tiktok: { sources: ["builtin:tiktok"] }
groups:
  - name: gov-devices
    clients: ["10.0.0.0/8"]
    block: [tiktok]
    tokens: ["` + profileGovToken + `", "` + profileGovToken2 + `"]
  - name: guest
default_group: guest
` + extra
	return writeConfig(t, dir, "127.0.0.1:53", body), certFile, keyFile
}

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return o.String(), e.String(), code
}

// plist parses a property list with Python's plistlib into JSON.
func plist(t *testing.T, data []byte) map[string]any {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not on PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-c", "import json, plistlib, sys; print(json.dumps(plistlib.loads(sys.stdin.buffer.read())))")
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("plistlib: %v\n%s", err, out)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestProfileMobileconfig(t *testing.T) {
	path, _, _ := profileConfig(t, "")
	out, errOut, code := runCLI(t, "profile", "-config", path, "-group", "gov-devices", "-format", "mobileconfig", "-org", "Ministry <IT> & Co")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	top := plist(t, []byte(out))
	payloads, _ := top["PayloadContent"].([]any)
	if len(payloads) != 1 || top["PayloadType"] != "Configuration" || top["PayloadOrganization"] != "Ministry <IT> & Co" {
		t.Fatalf("profile %v", top)
	}
	dns := payloads[0].(map[string]any)
	settings := dns["DNSSettings"].(map[string]any)
	if dns["PayloadType"] != "com.apple.dnsSettings.managed" || settings["DNSProtocol"] != "HTTPS" ||
		settings["ServerURL"] != "https://dns.agency.example/dns-query/"+profileGovToken || settings["ServerName"] != "dns.agency.example" {
		t.Errorf("DNS payload %v", dns)
	}
	if dns["PayloadIdentifier"] != "example.agency.dns.dnsward.gov-devices.dns" {
		t.Errorf("identifier %v", dns["PayloadIdentifier"])
	}
	// Rotating the token keeps the UUIDs, so the MDM replaces the profile.
	again, _, _ := runCLI(t, "profile", "-config", path, "-group", "gov-devices", "-format", "mobileconfig", "-token", profileGovToken2)
	rotated := plist(t, []byte(again))
	rdns := rotated["PayloadContent"].([]any)[0].(map[string]any)
	if rotated["PayloadUUID"] != top["PayloadUUID"] || rdns["PayloadUUID"] != dns["PayloadUUID"] || top["PayloadUUID"] == dns["PayloadUUID"] {
		t.Errorf("UUIDs %v %v / %v %v", top["PayloadUUID"], dns["PayloadUUID"], rotated["PayloadUUID"], rdns["PayloadUUID"])
	}
	if !strings.HasSuffix(rdns["DNSSettings"].(map[string]any)["ServerURL"].(string), "/"+profileGovToken2) {
		t.Errorf("rotated URL %v", rdns["DNSSettings"])
	}
	if strings.Contains(strings.ReplaceAll(out, "/dns-query/"+profileGovToken, ""), profileGovToken) {
		t.Error("the token appears outside the ServerURL")
	}
}

// TestProfileSignedWithOpenSSL signs the profile the way docs/devices.md
// says and checks that the signed file verifies and holds the same plist.
func TestProfileSignedWithOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not on PATH")
	}
	path, certFile, keyFile := profileConfig(t, "")
	out, errOut, code := runCLI(t, "profile", "-config", path, "-group", "gov-devices", "-format", "mobileconfig")
	if code != 0 {
		t.Fatal(errOut)
	}
	dir := t.TempDir()
	unsigned, signed := filepath.Join(dir, "gov.mobileconfig"), filepath.Join(dir, "gov-signed.mobileconfig")
	os.WriteFile(unsigned, []byte(out), 0o644)
	for _, args := range [][]string{
		{"smime", "-sign", "-signer", certFile, "-inkey", keyFile, "-nodetach", "-outform", "der", "-in", unsigned, "-out", signed},
		{"smime", "-verify", "-inform", "der", "-in", signed, "-noverify", "-out", unsigned + ".check"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if msg, err := exec.CommandContext(ctx, openssl, args...).CombinedOutput(); err != nil {
			cancel()
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args[:2], " "), err, msg)
		}
		cancel()
	}
	check, _ := os.ReadFile(unsigned + ".check")
	if p := plist(t, check); p["PayloadType"] != "Configuration" {
		t.Errorf("signed profile content %v", p)
	}
}

func TestProfileAndroidAndWindows(t *testing.T) {
	path, _, _ := profileConfig(t, "")
	out, _, code := runCLI(t, "profile", "-config", path, "-group", "gov-devices", "-format", "android")
	if code != 0 || out != profileGovToken+".dns.agency.example\n" {
		t.Errorf("android: exit %d, %q", code, out)
	}
	out, errOut, code := runCLI(t, "profile", "-config", path, "-group", "gov-devices", "-format", "windows")
	if code != 0 {
		t.Fatalf("windows: exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"$server = '192.0.2.53'",
		"Add-DnsClientDohServerAddress -ServerAddress $server -DohTemplate 'https://dns.agency.example/dns-query/" + profileGovToken + "' -AllowFallbackToUdp $False -AutoUpgrade $True",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("windows script lacks %q:\n%s", want, out)
		}
	}
	out, _, _ = runCLI(t, "profile", "-config", path, "-group", "guest", "-format", "windows", "-address", "198.51.100.53")
	if !strings.Contains(out, "'https://dns.agency.example/dns-query'") || !strings.Contains(out, "$server = '198.51.100.53'") {
		t.Errorf("tokenless windows script:\n%s", out)
	}
}

func TestProfileErrors(t *testing.T) {
	path, _, _ := profileConfig(t, "")
	noDoH, _, _ := profileConfig(t, "")
	text, _ := os.ReadFile(noDoH)
	os.WriteFile(noDoH, bytes.Replace(text, []byte("listen_https:"), []byte("# listen_https:"), 1), 0o644)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-group", "nope", "-format", "android"}, `no group "nope"`},
		{[]string{"-group", "gov-devices", "-format", "android", "-token", "ffffffffffffffffffffffff"}, "is not one of groups[0].tokens"},
		{[]string{"-group", "gov-devices", "-format", "pdf"}, `-format "pdf"`},
		{[]string{"-group", "gov-devices", "-format", "windows", "-address", "dns"}, "pass the address"},
	} {
		_, errOut, code := runCLI(t, append([]string{"profile", "-config", path}, tt.args...)...)
		if code != 1 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, %q; want %q", tt.args, code, errOut, tt.want)
		}
		if strings.Contains(errOut, "ffffffffffffffffffffffff") {
			t.Errorf("%v: the token is echoed: %s", tt.args, errOut)
		}
	}
	if _, errOut, code := runCLI(t, "profile", "-config", noDoH, "-group", "gov-devices", "-format", "mobileconfig"); code != 1 || !strings.Contains(errOut, "listen_https is not configured") {
		t.Errorf("no DoH listener: %d %s", code, errOut)
	}
	if _, _, code := runCLI(t, "profile", "-group", "x"); code != 2 {
		t.Errorf("no -config: exit %d", code)
	}
}

func TestExplainWithToken(t *testing.T) {
	path, _, _ := profileConfig(t, "")
	out, errOut, code := runCLI(t, "explain", "-config", path, "-client", "198.51.100.7", "-token", profileGovToken, "www.tiktok.com")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"www.tiktok.com for token ", " from client 198.51.100.7", "is listed at groups[0].tokens[0], so group gov-devices applies", "decision: BLOCK"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, profileGovToken) {
		t.Errorf("explain prints the token:\n%s", out)
	}
	out, _, _ = runCLI(t, "explain", "-config", path, "-client", "198.51.100.7", "www.tiktok.com")
	if !strings.Contains(out, "for client 198.51.100.7") || !strings.Contains(out, "decision: ALLOW") {
		t.Errorf("without the token:\n%s", out)
	}
}
