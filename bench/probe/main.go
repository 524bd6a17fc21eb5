// Command probe checks a resolver under benchmark, on loopback only.
//
//	probe -mode wait   -server ADDR -name NAME [-type A] -expect blocked -since UNIXNANO -timeout 60s
//	    polls until NAME gets the expected answer; prints milliseconds since -since.
//	probe -mode verify -server ADDR -file QUERIES -n 200 -expect blocked|allowed
//	    asks the first n queries of a dnsperf file once each; fails unless every answer is as expected.
//
// -net dot or doh (with -ca CERT) asks over DNS over TLS or DNS over HTTPS instead of UDP.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
)

type options struct {
	mode, server, name, qtype, expect, file string
	network, ca                             string
	since                                   int64
	timeout                                 time.Duration
	n                                       int
}

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "wait", "wait or verify")
	flag.StringVar(&o.server, "server", "127.0.0.1:5302", "loopback IP:PORT of the resolver")
	flag.StringVar(&o.name, "name", "", "name to ask (wait)")
	flag.StringVar(&o.qtype, "type", "A", "query type (wait)")
	flag.StringVar(&o.expect, "expect", "blocked", "blocked (0.0.0.0 or ::) or allowed (an address in 192.0.2.0/24 or 2001:db8::/32)")
	flag.Int64Var(&o.since, "since", 0, "start time in Unix nanoseconds (wait; default now)")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Second, "give up after this long (wait)")
	flag.StringVar(&o.file, "file", "", "dnsperf query file (verify)")
	flag.IntVar(&o.n, "n", 200, "queries to check (verify)")
	flag.StringVar(&o.network, "net", "udp", "udp, dot or doh")
	flag.StringVar(&o.ca, "ca", "", "PEM certificate to trust (dot, doh)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	ap, err := netip.ParseAddrPort(o.server)
	if err != nil || !ap.Addr().IsLoopback() {
		return fmt.Errorf("-server %q: want a loopback IP:PORT", o.server)
	}
	if o.expect != "blocked" && o.expect != "allowed" {
		return fmt.Errorf("-expect %q: want blocked or allowed", o.expect)
	}
	switch o.mode {
	case "wait":
		return wait(o)
	case "verify":
		return verify(o)
	}
	return fmt.Errorf("-mode %q: want wait or verify", o.mode)
}

// wait polls every 5 ms, bounded by -timeout.
func wait(o options) error {
	qtype, ok := dns.StringToType[strings.ToUpper(o.qtype)]
	if o.name == "" || !ok {
		return errors.New("wait needs -name and a known -type")
	}
	start := time.Now()
	if o.since > 0 {
		start = time.Unix(0, o.since)
	}
	deadline := time.Now().Add(o.timeout)
	exchange, err := newExchange(o.network, o.server, o.ca, 200*time.Millisecond)
	if err != nil {
		return err
	}
	for time.Now().Before(deadline) {
		if ask(exchange, o.name, qtype, o.expect) == nil {
			fmt.Printf("%.0f\n", float64(time.Since(start).Microseconds())/1000)
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("no %s answer for %s from %s within %s", o.expect, o.name, o.server, o.timeout)
}

// verify asks each of the first n queries once and reports every mismatch.
func verify(o options) error {
	f, err := os.Open(o.file)
	if err != nil {
		return err
	}
	defer f.Close()
	exchange, err := newExchange(o.network, o.server, o.ca, 2*time.Second)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(f)
	checked, bad := 0, 0
	for sc.Scan() && checked < o.n {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 {
			continue
		}
		checked++
		if err := ask(exchange, fields[0], dns.StringToType[fields[1]], o.expect); err != nil {
			if bad < 5 {
				fmt.Fprintln(os.Stderr, "probe:", err)
			}
			bad++
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if bad > 0 || checked == 0 {
		return fmt.Errorf("%s: %d of %d answers were not %s", o.file, bad, checked, o.expect)
	}
	fmt.Printf("%s: %d of %d answers %s over %s\n", o.file, checked, checked, o.expect, o.network)
	return nil
}

// ask sends one query and checks the answer's first address.
func ask(exchange exchangeFunc, name string, qtype uint16, expect string) error {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	resp, err := exchange(m)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	var addr netip.Addr
	for _, rr := range resp.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			addr, _ = netip.AddrFromSlice(rr.A.To4())
		case *dns.AAAA:
			addr, _ = netip.AddrFromSlice(rr.AAAA)
		}
	}
	blocked := addr.IsValid() && addr.IsUnspecified()
	allowed := addr.IsValid() && (netip.MustParsePrefix("192.0.2.0/24").Contains(addr) || netip.MustParsePrefix("2001:db8::/32").Contains(addr))
	if (expect == "blocked" && blocked) || (expect == "allowed" && allowed) {
		return nil
	}
	return fmt.Errorf("%s %s: rcode %s, address %v; want %s", name, dns.TypeToString[qtype], dns.RcodeToString[resp.Rcode], addr, expect)
}
