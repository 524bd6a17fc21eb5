package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/dnsward/dnsward/blocklist"
	"github.com/dnsward/dnsward/resolver"
)

// profileCmd prints what an MDM needs to put a device on the group's
// encrypted DNS, with the group's token so policy follows the device.
func profileCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("profile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML config file (required: it names the group, its tokens and the listeners)")
	group := fs.String("group", "", "group whose policy the devices get")
	format := fs.String("format", "", "mobileconfig (iOS, iPadOS, macOS), android (Private DNS host name) or windows (PowerShell)")
	token := fs.String("token", "", "which of the group's tokens to use (default: its first)")
	address := fs.String("address", "", "windows: the IP address devices reach dnsward at (default: the listen_https address, if specific)")
	org := fs.String("org", "", "mobileconfig: the organisation shown on the device")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || *group == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: dnsward profile -config FILE -group NAME -format mobileconfig|android|windows [-token T]")
		return 2
	}
	cfg, err := loadConfigFile(*path, resolvConfPaths)
	if err != nil {
		fmt.Fprintln(stderr, "dnsward:", err)
		return 1
	}
	p, err := newProfile(cfg, *group, *token, stderr)
	if err == nil {
		p.org = *org
		err = p.write(stdout, stderr, *format, *address)
	}
	if err != nil {
		fmt.Fprintln(stderr, "dnsward profile:", err)
		return 1
	}
	return 0
}

// profile is what every format needs: where the resolver is and who the device is.
type profile struct {
	cfg        *fileConfig
	group      string
	token      string // "" when the group has none
	serverName string
	org        string
}

func newProfile(cfg *fileConfig, group, token string, stderr io.Writer) (*profile, error) {
	gi := slices.IndexFunc(cfg.Policy.Groups, func(g blocklist.GroupConfig) bool { return g.Name == group })
	if gi < 0 {
		var names []string
		for _, g := range cfg.Policy.Groups {
			names = append(names, g.Name)
		}
		return nil, fmt.Errorf("no group %q in %s (groups: %s)", group, cfg.path, strings.Join(names, ", "))
	}
	tokens := cfg.Policy.Groups[gi].Tokens
	switch {
	case token != "" && !slices.Contains(tokens, token):
		return nil, fmt.Errorf("-token %s is not one of groups[%d].tokens (group %s)", blocklist.TokenID(token), gi, group)
	case token == "" && len(tokens) > 0:
		token = tokens[0]
	case token == "":
		fmt.Fprintf(stderr, "note: group %s has no tokens (groups[%d].tokens): devices get the policy of their source address, so off the office network the group does not follow them\n", group, gi)
	}
	name := cfg.Resolver.Encrypted.TLS.ServerName
	if name == "" {
		if cfg.Resolver.Encrypted.TLS.CertFile == "" {
			return nil, errors.New("set tls.server_name (or tls.cert_file, whose first DNS name is the default): the profile must name the server")
		}
		store, err := resolver.NewCertStore(cfg.Resolver.Encrypted.TLS, slog.New(slog.DiscardHandler))
		if err != nil {
			return nil, err
		}
		name = store.ServerName()
	}
	return &profile{cfg: cfg, group: group, token: token, serverName: name}, nil
}

func (p *profile) write(stdout, stderr io.Writer, format, address string) error {
	switch format {
	case "mobileconfig":
		url, err := p.dohURL()
		if err != nil {
			return err
		}
		_, err = io.WriteString(stdout, p.mobileconfig(url))
		return err
	case "android":
		return p.android(stdout, stderr)
	case "windows":
		return p.windows(stdout, address)
	}
	return fmt.Errorf("-format %q: use mobileconfig, android or windows", format)
}

// dohURL is the group's DoH URL: the token in the path, the port of the
// first listen_https address unless it is 443.
func (p *profile) dohURL() (string, error) {
	if len(p.cfg.Resolver.Encrypted.ListenHTTPS) == 0 {
		return "", errors.New("listen_https is not configured: Apple and Windows devices need the DoH listener")
	}
	_, port, _ := net.SplitHostPort(p.cfg.Resolver.Encrypted.ListenHTTPS[0])
	host := p.serverName
	if port != "443" {
		host = net.JoinHostPort(host, port)
	}
	path := resolver.DoHPath
	if p.token != "" {
		path += "/" + p.token
	}
	return "https://" + host + path, nil
}

// android prints the Private DNS host name. Android speaks DoT on 853
// only, and the token rides in the first label.
func (p *profile) android(stdout, stderr io.Writer) error {
	ok := false
	for _, a := range p.cfg.Resolver.Encrypted.ListenTLS {
		_, port, _ := net.SplitHostPort(a)
		ok = ok || port == "853"
	}
	if !ok {
		return errors.New("no listen_tls address on port 853: Android's Private DNS connects to port 853 only")
	}
	host := p.serverName
	if p.token != "" {
		host = p.token + "." + host
		fmt.Fprintf(stderr, "note: the certificate must cover *.%s (a wildcard), or devices reject %s\n", p.serverName, host)
	}
	_, err := fmt.Fprintln(stdout, host)
	return err
}

// windows prints the PowerShell that registers the DoH template for the
// server's address, for an Intune platform script or by hand.
func (p *profile) windows(stdout io.Writer, address string) error {
	url, err := p.dohURL()
	if err != nil {
		return err
	}
	if address == "" {
		host, _, _ := net.SplitHostPort(p.cfg.Resolver.Encrypted.ListenHTTPS[0])
		if a, err := netip.ParseAddr(host); err == nil && !a.IsUnspecified() && !a.IsLoopback() {
			address = a.String()
		}
	}
	ip, err := netip.ParseAddr(address)
	if err != nil {
		return fmt.Errorf("-address %q: Windows binds a DoH template to the IP address of a DNS server; pass the address devices reach dnsward at", address)
	}
	_, err = fmt.Fprintf(stdout, windowsScript, p.group, p.tokenNote(), ip, psQuote(url), ip, ip)
	return err
}

func (p *profile) tokenNote() string {
	if p.token == "" {
		return "no device token"
	}
	return "device token " + blocklist.TokenID(p.token)
}

const windowsScript = `# dnsward: encrypted DNS for group %s (%s). Run as administrator,
# or deploy as an Intune platform script (run as SYSTEM, 64-bit PowerShell).
$ErrorActionPreference = 'Stop'
$server = '%s'
Get-DnsClientDohServerAddress -ServerAddress $server -ErrorAction SilentlyContinue | Remove-DnsClientDohServerAddress
Add-DnsClientDohServerAddress -ServerAddress $server -DohTemplate %s -AllowFallbackToUdp $False -AutoUpgrade $True
# Windows uses the template only while %s is a DNS server of the adapter:
# DHCP on the office network hands it out; elsewhere set it, e.g.
#   Set-DnsClientServerAddress -InterfaceAlias 'Wi-Fi' -ServerAddresses %s
Get-DnsClientDohServerAddress -ServerAddress $server
`

// psQuote quotes s for PowerShell (single quotes, doubled inside).
func psQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
