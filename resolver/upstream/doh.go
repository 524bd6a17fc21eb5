package upstream

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnswire"
)

const dnsMessageType = "application/dns-message"

// dohTransport speaks DNS over HTTPS (RFC 8484) with POST. The query keeps
// ID 0 on the wire, as the RFC recommends for HTTP caches; the Forwarder
// restores the client's ID.
type dohTransport struct {
	url    string
	client *http.Client
}

func (t *dohTransport) start(a *attempt) { startBlocking(a, t.exchange) }

func (t *dohTransport) exchange(ctx context.Context, deadline time.Time, wire []byte, qlen int) (*dns.Msg, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(wire))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", dnsMessageType)
	req.Header.Set("Accept", dnsMessageType)
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096)) // lets the connection be reused
		return nil, fmt.Errorf("HTTP status %q", resp.Status)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != dnsMessageType {
		return nil, fmt.Errorf("content type %q, want %s", resp.Header.Get("Content-Type"), dnsMessageType)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, dnswire.MaxMessageSize+1))
	if err != nil {
		return nil, err
	}
	if len(body) > dnswire.MaxMessageSize {
		return nil, fmt.Errorf("%w: body larger than %d bytes", errBadResponse, dnswire.MaxMessageSize)
	}
	return parseReply(body, wire, 0, qlen)
}

func (t *dohTransport) close() error { return nil }

// newHTTPClient builds the DoH client shared by a Forwarder's HTTPS
// upstreams: HTTP/2 when offered, a few idle connections kept, no redirects
// (a DNS endpoint that redirects is misconfigured, and following would
// re-send queries to a host nobody configured).
func newHTTPClient(base *tls.Config, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:     tlsConfig(base, ""),
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: maxIdleConns,
		IdleConnTimeout:     maxIdleTime,
		TLSHandshakeTimeout: timeout,
		DialContext:         (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// tlsConfig copies base (or starts empty), sets the name to verify and a
// TLS 1.2 floor.
func tlsConfig(base *tls.Config, serverName string) *tls.Config {
	cfg := &tls.Config{}
	if base != nil {
		cfg = base.Clone()
	}
	if serverName != "" {
		cfg.ServerName = serverName
	}
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if cfg.ClientSessionCache == nil {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(16) // cheap reconnects
	}
	return cfg
}
