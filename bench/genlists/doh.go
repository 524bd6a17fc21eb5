package main

import (
	"bufio"
	"encoding/base64"
	"fmt"

	"github.com/miekg/dns"
)

// writeDoHPaths writes the cached names as RFC 8484 GET paths
// (/dns-query?dns=BASE64URL), one per line, for h2load's input file: the
// doh scenario asks the same names as cached and dot.
func writeDoHPaths(path string, n int) error {
	return writeWith(path, func(w *bufio.Writer) error {
		for i := 0; i < n; i++ {
			m := new(dns.Msg)
			m.SetQuestion(dns.Fqdn(cachedName(i)), dns.TypeA)
			m.Id = 0 // RFC 8484 §4.1: ID 0 keeps GET answers cacheable
			wire, err := m.Pack()
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "/dns-query?dns=%s\n", base64.RawURLEncoding.EncodeToString(wire))
		}
		return nil
	})
}
