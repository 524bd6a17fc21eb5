package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// healthCmd is what a container HEALTHCHECK or a monitoring script runs:
// it asks the admin listener's /healthz and, with -probe, resolves a name
// over UDP. Exit 0 healthy, 1 unhealthy, 2 bad flags; no curl needed.
func healthCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	admin := fs.String("admin", "127.0.0.1:9153", `admin listener to ask for /healthz ("" skips it)`)
	dnsAddr := fs.String("dns", "127.0.0.1:53", "DNS listener the -probe query goes to")
	probe := fs.String("probe", "", "name to resolve over UDP; any NOERROR or NXDOMAIN answer passes (default: no DNS check)")
	timeout := fs.Duration("timeout", 3*time.Second, "time allowed for each check")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if _, ok := dns.IsDomainName(*probe); *probe != "" && !ok {
		fmt.Fprintf(stderr, "dnsward health: -probe %q is not a domain name\n", *probe)
		return 2
	}
	if fs.NArg() > 0 || (*admin == "" && *probe == "") || *timeout <= 0 {
		fmt.Fprintln(stderr, "usage: dnsward health [-admin HOST:PORT] [-dns HOST:PORT -probe NAME] [-timeout 3s]")
		return 2
	}
	var passed []string
	if *admin != "" {
		if err := checkHealthz(*admin, *timeout); err != nil {
			fmt.Fprintln(stderr, "dnsward health: unhealthy:", err)
			return 1
		}
		passed = append(passed, "admin "+*admin+" /healthz ok")
	}
	if *probe != "" {
		res, err := probeDNS(*dnsAddr, *probe, *timeout)
		if err != nil {
			fmt.Fprintln(stderr, "dnsward health: unhealthy:", err)
			return 1
		}
		passed = append(passed, res)
	}
	fmt.Fprintln(stdout, "healthy:", strings.Join(passed, "; "))
	return 0
}

// checkHealthz expects 200 from GET http://addr/healthz.
func checkHealthz(addr string, timeout time.Duration) error {
	url := "http://" + addr + "/healthz"
	client := &http.Client{Timeout: timeout}
	resp, err := client.Get(url)
	if err != nil {
		return fmt.Errorf("admin %s: %w", url, unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin %s: HTTP %d %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// probeDNS sends one A query for name to addr over UDP. NOERROR and
// NXDOMAIN both mean the pipeline decided (a blocked name is a fine probe:
// no upstream needed); SERVFAIL and REFUSED are reported with their usual cause.
func probeDNS(addr, name string, timeout time.Duration) (string, error) {
	m := new(dns.Msg).SetQuestion(dns.Fqdn(name), dns.TypeA)
	c := &dns.Client{Net: "udp", Timeout: timeout}
	resp, rtt, err := c.Exchange(m, addr)
	if err != nil {
		return "", fmt.Errorf("dns %s: %s: %w", addr, name, unwrapNetError(err))
	}
	rcode := dns.RcodeToString[resp.Rcode]
	switch resp.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
		return fmt.Sprintf("dns %s %s %s in %s", addr, name, rcode, rtt.Round(time.Millisecond)), nil
	case dns.RcodeServerFailure:
		return "", fmt.Errorf("dns %s: %s: SERVFAIL (no upstream answered?)", addr, name)
	case dns.RcodeRefused:
		return "", fmt.Errorf("dns %s: %s: REFUSED (is the probe's source address in access.allow?)", addr, name)
	}
	return "", fmt.Errorf("dns %s: %s: %s", addr, name, rcode)
}

// unwrapURLError drops net/http's "Get "URL": " prefix: the URL is
// already in the message.
func unwrapURLError(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return unwrapNetError(ue.Err)
	}
	return err
}

// unwrapNetError turns a timeout into words that name the time allowed.
func unwrapNetError(err error) error {
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return errors.New("no answer (timeout)")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("no answer (timeout)")
	}
	return err
}
