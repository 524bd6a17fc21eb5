package resolver

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// DNS over HTTPS (RFC 8484) on /dns-query and /dns-query/{token}.
const (
	DoHPath        = "/dns-query"
	dohContentType = "application/dns-message"
	maxDNSMessage  = 65535
	minDNSMessage  = 12 // a header
)

// Timeouts of the DoH http.Server: a client gets 5 s to send its headers
// and 10 s for a whole request, and an idle connection is closed after 60 s
// (RFC 8484 clients keep one open; that is long enough to reuse it).
const (
	dohReadHeaderTimeout = 5 * time.Second
	dohReadTimeout       = 10 * time.Second
	dohWriteTimeout      = 10 * time.Second
	dohIdleTimeout       = 60 * time.Second
	dohQueryTimeout      = 5 * time.Second
	dohMaxStreams        = 100 // concurrent HTTP/2 streams per connection
	// dohMaxHeaderBytes fits a GET of the largest message: 65535 bytes are
	// 87380 characters of base64url.
	dohMaxHeaderBytes = 128 << 10
)

// DoHHandler answers RFC 8484 requests through the pipeline.
type DoHHandler struct {
	Handle QueryHandler
	// Proxy lists the peers whose Forwarded / X-Forwarded-For headers are
	// believed; nil believes none.
	Proxy   *ProxyPolicy
	Timeout time.Duration // per query; default 5 s
	// serve, when set, runs a query through the pipeline without waiting
	// for a cache miss (Resolver.serveQuery); the HTTP/2 connections use
	// it. Without it they call Handle in a goroutine per query.
	serve func(q Query, from origin, s *scratch) (out []byte, pending bool)
}

func (h *DoHHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, ok := dohToken(r.URL.Path)
	if !ok {
		http.Error(w, "not found: DNS queries go to "+DoHPath, http.StatusNotFound)
		return
	}
	wire, status, msg := readDoHQuery(r)
	if status != 0 {
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, msg, status)
		return
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = dohQueryTimeout
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	q := Query{Wire: wire, Client: h.clientAddr(r), Local: localAddrOf(r), Transport: TransportHTTPS, Token: token}
	reply := h.Handle(ctx, q)
	if reply == nil {
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, dohNoAnswer, http.StatusServiceUnavailable)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", dohContentType)
	hdr.Set("Content-Length", strconv.Itoa(len(reply)))
	hdr.Set("Cache-Control", dohCacheControl(reply))
	_, _ = w.Write(reply)
}

// dohNoAnswer is the 503 text when the pipeline sends nothing (a drop),
// which HTTP can only say as an error.
const dohNoAnswer = "no answer"

// dohCacheControl is a DNS answer's Cache-Control (see dohMaxAge).
func dohCacheControl(reply []byte) string {
	return "max-age=" + strconv.FormatUint(uint64(dohMaxAge(reply)), 10)
}

// dohToken splits /dns-query or /dns-query/{token}. A token longer than a
// DNS label, or a deeper path, is not a DoH path at all.
func dohToken(path string) (string, bool) {
	if path == DoHPath {
		return "", true
	}
	tok, ok := strings.CutPrefix(path, DoHPath+"/")
	if !ok || tok == "" || len(tok) > 63 || strings.Contains(tok, "/") {
		return "", false
	}
	return tok, true
}

// readDoHQuery returns the DNS message of a GET or POST, or the HTTP status
// and message for a bad request.
func readDoHQuery(r *http.Request) ([]byte, int, string) {
	var wire []byte
	switch r.Method {
	case http.MethodGet:
		var status int
		var msg string
		if wire, status, msg = decodeDoHGet(nil, r.URL.Query().Get("dns")); status != 0 {
			return nil, status, msg
		}
	case http.MethodPost:
		if status, msg := checkDoHPostType(r.Header.Get("Content-Type")); status != 0 {
			return nil, status, msg
		}
		var err error
		wire, err = io.ReadAll(io.LimitReader(r.Body, maxDNSMessage+1))
		if err != nil {
			return nil, http.StatusBadRequest, "reading the body: " + err.Error()
		}
	default:
		return nil, http.StatusMethodNotAllowed, "use GET or POST"
	}
	if status, msg := checkDoHSize(wire); status != 0 {
		return nil, status, msg
	}
	return wire, 0, ""
}

// dohTooLarge is the 413 text for a body over one DNS message.
const dohTooLarge = "a DNS message is at most 65535 bytes"

// checkDoHSize accepts a message from a header's length to 65535 bytes.
func checkDoHSize(wire []byte) (int, string) {
	switch {
	case len(wire) > maxDNSMessage:
		return http.StatusRequestEntityTooLarge, dohTooLarge
	case len(wire) < minDNSMessage:
		return http.StatusBadRequest, "too short for a DNS message"
	}
	return 0, ""
}

// decodeDoHGet decodes a GET's dns parameter into dst's memory (growing
// it when needed), or returns the status and message of a bad one; the
// caller checks the message's size (checkDoHSize).
func decodeDoHGet(dst []byte, b64 string) ([]byte, int, string) {
	if b64 == "" {
		return nil, http.StatusBadRequest, "missing the dns parameter (base64url DNS message)"
	}
	if len(b64) > base64.RawURLEncoding.EncodedLen(maxDNSMessage) {
		return nil, http.StatusRequestURITooLong, "dns parameter longer than a 65535-byte message"
	}
	b64 = strings.TrimRight(b64, "=")
	if n := base64.RawURLEncoding.DecodedLen(len(b64)); cap(dst) < n {
		dst = make([]byte, n)
	}
	n, err := base64.RawURLEncoding.Decode(dst[:cap(dst)], []byte(b64))
	if err != nil {
		return nil, http.StatusBadRequest, "dns parameter is not base64url: " + err.Error()
	}
	return dst[:n], 0, ""
}

// checkDoHPostType accepts a POST's Content-Type of application/dns-message.
func checkDoHPostType(ctype string) (int, string) {
	if ctype == dohContentType {
		return 0, ""
	}
	if mt, _, err := mime.ParseMediaType(ctype); err != nil || mt != dohContentType {
		return http.StatusUnsupportedMediaType, "Content-Type must be " + dohContentType
	}
	return 0, ""
}

// NewDoHServer is the http.Server for h over HTTP/2 and HTTP/1.1. Serve it
// on a GuardListener with tlsConf (ALPN h2 and http/1.1, e.g.
// CertStore.ServerTLSConfig("h2", "http/1.1")): the guard does PROXY and
// the handshake, and its connections' RemoteAddr is the client.
func NewDoHServer(h *DoHHandler, tlsConf *tls.Config, log *slog.Logger) *http.Server {
	if log == nil {
		log = slog.Default()
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	mux := http.NewServeMux()
	mux.Handle(DoHPath, h)
	mux.Handle(DoHPath+"/", h)
	h2 := &h2Server{h: h, log: log, conns: make(map[*h2Conn]struct{})}
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         tlsConf,
		Protocols:         &protocols,
		ReadHeaderTimeout: dohReadHeaderTimeout,
		ReadTimeout:       dohReadTimeout,
		WriteTimeout:      dohWriteTimeout,
		IdleTimeout:       dohIdleTimeout,
		MaxHeaderBytes:    dohMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		// HTTP/2 is ours (doh_h2.go); net/http serves HTTP/1.1.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){"h2": h2.serveConn},
	}
	srv.RegisterOnShutdown(h2.shutdown)
	return srv
}

// clientAddr is the request's client: the connection's (already the PROXY
// header's when a trusted balancer sent one), or, when that address is a
// trusted proxy, the nearest untrusted hop its forwarding header names.
func (h *DoHHandler) clientAddr(r *http.Request) netip.AddrPort {
	peer, _ := netip.ParseAddrPort(r.RemoteAddr)
	return h.clientBehind(peer, r.Header.Values("Forwarded"), r.Header.Values("X-Forwarded-For"))
}

// clientBehind is the client of a request from peer with the given
// Forwarded and X-Forwarded-For header values (see clientAddr).
func (h *DoHHandler) clientBehind(peer netip.AddrPort, forwarded, xff []string) netip.AddrPort {
	client := netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	if !h.Proxy.Trusted(client.Addr()) {
		return client
	}
	hops := forwardedFor(forwarded, xff)
	for i := len(hops) - 1; i >= 0 && h.Proxy.Trusted(client.Addr()); i-- {
		if !hops[i].IsValid() {
			break // "unknown" or an obfuscated hop: the last trusted proxy is all we know
		}
		client = hops[i]
	}
	return client
}

// localAddrOf is the address the client connected to.
func localAddrOf(r *http.Request) netip.AddrPort {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return addrPortOf(a)
	}
	return netip.AddrPort{}
}
