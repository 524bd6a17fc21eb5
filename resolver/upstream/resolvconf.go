package upstream

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
)

// FromResolvConf returns the nameservers listed in a resolv.conf file as bare
// IP strings (UDP with TCP fallback), in file order and without duplicates.
// Loopback and unspecified addresses are skipped: when dnsward serves the host
// they point at dnsward itself and would make it forward to itself.
func FromResolvConf(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading nameservers: %w", err)
	}
	defer f.Close()

	var servers, skipped []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue // comments (# or ;), options, search, domain, sortlist
		}
		ip, err := netip.ParseAddr(fields[1])
		if err != nil {
			continue // the C resolver ignores malformed entries too
		}
		ip = ip.Unmap()
		if ip.IsLoopback() || ip.IsUnspecified() {
			skipped = append(skipped, ip.String())
			continue
		}
		if s := ip.String(); !slices.Contains(servers, s) {
			servers = append(servers, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading nameservers from %s: %w", path, err)
	}
	if len(servers) == 0 {
		msg := fmt.Sprintf("%s lists no usable nameserver", path)
		if len(skipped) > 0 {
			msg += fmt.Sprintf(" (skipped loopback %s: it would point at dnsward itself; with systemd-resolved the real ones are in /run/systemd/resolve/resolv.conf)",
				strings.Join(skipped, ", "))
		}
		return nil, fmt.Errorf("%s; set upstream.servers in the config", msg)
	}
	return servers, nil
}
