package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/miekg/dns"
)

// exchangeFunc sends one query and returns its answer.
type exchangeFunc func(m *dns.Msg) (*dns.Msg, error)

// newExchange returns the client for -net: plain UDP, DNS over TLS, or DNS
// over HTTPS (POST to /dns-query), verifying TLS against the -ca file.
func newExchange(network, server, caFile string, timeout time.Duration) (exchangeFunc, error) {
	if network != "udp" && network != "dot" && network != "doh" {
		return nil, fmt.Errorf("-net %q: want udp, dot or doh", network)
	}
	var tlsConf *tls.Config
	if network != "udp" {
		var err error
		if tlsConf, err = trustFile(caFile); err != nil {
			return nil, err
		}
	}
	if network == "doh" {
		hc := &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: true}}
		return func(m *dns.Msg) (*dns.Msg, error) { return postDoH(hc, "https://"+server+"/dns-query", m) }, nil
	}
	c := &dns.Client{Timeout: timeout}
	if network == "dot" {
		c.Net, c.TLSConfig = "tcp-tls", tlsConf
	}
	return func(m *dns.Msg) (*dns.Msg, error) {
		r, _, err := c.Exchange(m, server)
		return r, err
	}, nil
}

// trustFile trusts only the bench's own certificate.
func trustFile(caFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, fmt.Errorf("-net dot and doh need -ca, the listeners' certificate")
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// postDoH is one RFC 8484 POST; ID 0 as the RFC recommends.
func postDoH(hc *http.Client, url string, m *dns.Msg) (*dns.Msg, error) {
	m.Id = 0
	wire, err := m.Pack()
	if err != nil {
		return nil, err
	}
	resp, err := hc.Post(url, "application/dns-message", bytes.NewReader(wire))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, dns.MaxMsgSize))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %s", url, resp.Status)
	}
	r := new(dns.Msg)
	return r, r.Unpack(body)
}
