package resolver

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const testToken = "0123456789abcdef0123456789abcdef"

// dohFixture is a real DoH listener on loopback: GuardListener with TLS
// from a test CA, NewDoHServer, and the echo handler behind it.
type dohFixture struct {
	ca   *testCA
	addr string
	echo *echoHandler
	srv  *http.Server
}

func startDoH(t testing.TB, trusted ...string) *dohFixture {
	t.Helper()
	echo := &echoHandler{}
	f := startDoHWith(t, echo.handle, trusted...)
	f.echo = echo
	return f
}

// startDoHWith is startDoH with its own handler behind the listener.
func startDoHWith(t testing.TB, handle QueryHandler, trusted ...string) *dohFixture {
	t.Helper()
	f := &dohFixture{ca: newTestCA(t)}
	store := testCertStore(t, f.ca)
	pol, err := NewProxyPolicy(ProxyConfig{Trusted: trusted})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	tc := store.ServerTLSConfig("h2", "http/1.1")
	g := GuardListener(ln, GuardOptions{TLS: tc, Proxy: pol, ProxyHeaderOptional: true, Transport: "https", Logger: slog.New(slog.DiscardHandler)})
	f.srv = NewDoHServer(&DoHHandler{Handle: handle, Proxy: pol}, tc, slog.New(slog.DiscardHandler))
	go f.srv.Serve(g)
	t.Cleanup(func() { f.srv.Close() })
	return f
}

// client speaks h2 (or only HTTP/1.1) to the fixture; header, when not
// nil, is a PROXY header written before the TLS handshake.
func (f *dohFixture) client(h2 bool, header []byte) *http.Client {
	var protocols http.Protocols
	protocols.SetHTTP1(!h2)
	protocols.SetHTTP2(h2)
	tr := &http.Transport{TLSClientConfig: clientTLS(f.ca, "dns.test"), Protocols: &protocols,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, network, addr)
			if err == nil && header != nil {
				_, err = c.Write(header)
			}
			return c, err
		}}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

func packQuery(t testing.TB, name string, qtype uint16) []byte {
	t.Helper()
	m := new(dns.Msg).SetQuestion(name, qtype)
	m.Id = 0 // RFC 8484 §4.1: cache-friendly
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *dohFixture) get(t *testing.T, c *http.Client, path string, wire []byte) *http.Response {
	t.Helper()
	url := "https://" + f.addr + path
	if wire != nil {
		url += "?dns=" + base64.RawURLEncoding.EncodeToString(wire)
	}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func (f *dohFixture) post(t *testing.T, c *http.Client, ctype string, body []byte) *http.Response {
	t.Helper()
	resp, err := c.Post("https://"+f.addr+DoHPath, ctype, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// answer checks a 200 DoH response and returns its message.
func answer(t *testing.T, resp *http.Response, maxAge string) *dns.Msg {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/dns-message" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "max-age="+maxAge {
		t.Errorf("Cache-Control %q, want max-age=%s", cc, maxAge)
	}
	m := new(dns.Msg)
	if err := m.Unpack(body); err != nil {
		t.Fatalf("reply does not parse: %v", err)
	}
	return m
}

func TestDoHGetAndPost(t *testing.T) {
	f := startDoH(t)
	h2, h1 := f.client(true, nil), f.client(false, nil)

	resp := f.get(t, h2, DoHPath+"/"+testToken, packQuery(t, "www.example.org.", dns.TypeA))
	if resp.ProtoMajor != 2 {
		t.Errorf("GET over %s, want HTTP/2", resp.Proto)
	}
	if m := answer(t, resp, "300"); len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
		t.Errorf("GET answer %v", m)
	}
	q := f.echo.lastQuery(t)
	if q.Token != testToken || q.Transport != TransportHTTPS || q.Client.Addr() != netip.MustParseAddr("127.0.0.1") || q.Local.String() != f.addr {
		t.Errorf("query seen by the pipeline: %+v", q)
	}

	resp = f.post(t, h1, "application/dns-message", packQuery(t, "txt.example.org.", dns.TypeTXT))
	if resp.ProtoMajor != 1 {
		t.Errorf("POST over %s, want HTTP/1.1", resp.Proto)
	}
	answer(t, resp, "42") // the smaller of the two TTLs
	if q := f.echo.lastQuery(t); q.Token != "" {
		t.Errorf("token %q on /dns-query", q.Token)
	}
	answer(t, f.post(t, h2, "application/dns-message; charset=binary", packQuery(t, "nx.test.", dns.TypeA)), "120") // SOA MINIMUM
	answer(t, f.get(t, h2, DoHPath, packQuery(t, "fail.test.", dns.TypeA)), "0")
	answer(t, f.get(t, h2, DoHPath, packQuery(t, "nodata.test.", dns.TypeAAAA)), "0")
	// Padding is not allowed by RFC 8484, but some clients send it.
	padded := base64.URLEncoding.EncodeToString(packQuery(t, "www.example.org.", dns.TypeA))
	if resp, err := h2.Get("https://" + f.addr + DoHPath + "?dns=" + padded); err != nil || resp.StatusCode != 200 {
		t.Errorf("padded GET: %v %v", resp, err)
	}
}

func TestDoHBadRequests(t *testing.T) {
	f := startDoH(t)
	c := f.client(true, nil)
	wire := packQuery(t, "www.example.org.", dns.TypeA)
	req := func(method, path, ctype string, body []byte) int {
		r, _ := http.NewRequest(method, "https://"+f.addr+path, bytes.NewReader(body))
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		resp, err := c.Do(r)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		resp.Body.Close()
		if cc := resp.Header.Get("Cache-Control"); resp.StatusCode != 404 && cc != "no-store" {
			t.Errorf("%s %s: Cache-Control %q on an error", method, path, cc)
		}
		return resp.StatusCode
	}
	b64 := "?dns=" + base64.RawURLEncoding.EncodeToString(wire)
	for _, tt := range []struct {
		method, path, ctype string
		body                []byte
		want                int
	}{
		{"PUT", DoHPath, "application/dns-message", wire, 405},
		{"DELETE", DoHPath + b64, "", nil, 405},
		{"POST", DoHPath, "text/plain", wire, 415},
		{"POST", DoHPath, "", wire, 415},
		{"POST", DoHPath, "application/dns-message", make([]byte, 70000), 413},
		{"POST", DoHPath, "application/dns-message", wire[:5], 400},
		{"GET", DoHPath, "", nil, 400},
		{"GET", DoHPath + "?dns=***", "", nil, 400},
		{"GET", DoHPath + "?dns=" + base64.RawURLEncoding.EncodeToString(wire[:8]), "", nil, 400},
		{"GET", DoHPath + "?dns=" + strings.Repeat("A", 90000), "", nil, 414},
		{"GET", "/other" + b64, "", nil, 404},
		{"GET", DoHPath + "/a/b" + b64, "", nil, 404},
		{"GET", DoHPath + "/" + strings.Repeat("x", 64) + b64, "", nil, 404},
		{"GET", DoHPath + b64[:5] + "ZHJvcA", "", nil, 400},
	} {
		if got := req(tt.method, tt.path, tt.ctype, tt.body); got != tt.want {
			t.Errorf("%s %.60s (%s): %d, want %d", tt.method, tt.path, tt.ctype, got, tt.want)
		}
	}
	// The pipeline dropping a query is a 503, not a hung request.
	resp := f.get(t, c, DoHPath, packQuery(t, "drop.test.", dns.TypeA))
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("dropped query: %d", resp.StatusCode)
	}
}

// TestDoHClientAddress: Forwarded/X-Forwarded-For count only from trusted
// proxies, and a PROXY header from a trusted balancer carries the client.
func TestDoHClientAddress(t *testing.T) {
	wire := packQuery(t, "www.example.org.", dns.TypeA)
	withHeaders := func(f *dohFixture, c *http.Client, h map[string]string) netip.AddrPort {
		r, _ := http.NewRequest("GET", "https://"+f.addr+DoHPath+"?dns="+base64.RawURLEncoding.EncodeToString(wire), nil)
		for k, v := range h {
			r.Header.Set(k, v)
		}
		resp, err := c.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return f.echo.lastQuery(t).Client
	}
	trusted := startDoH(t, "127.0.0.0/8")
	c := trusted.client(true, nil)
	for h, want := range map[string]string{
		"203.0.113.9, 127.0.0.5":                     "203.0.113.9:0", // the nearest untrusted hop
		"198.51.100.1, 203.0.113.9, 127.0.0.5":       "203.0.113.9:0", // not further: 203.0.113.9 could have made up the first
		"unknown, 127.0.0.5":                         "127.0.0.5:0",
		"not an address":                             "127.0.0.1:",
		`for="[2001:db8::9]:4711";proto=https`:       "[2001:db8::9]:4711",
		`for=192.0.2.60;by=127.0.0.1, for=127.0.0.9`: "192.0.2.60:0",
	} {
		key := "X-Forwarded-For"
		if strings.Contains(h, "for=") {
			key = "Forwarded"
		}
		if got := withHeaders(trusted, c, map[string]string{key: h}); !strings.HasPrefix(got.String(), want) {
			t.Errorf("%s: %s; client %s, want %s", key, h, got, want)
		}
	}

	untrusted := startDoH(t, "192.0.2.0/24")
	got := withHeaders(untrusted, untrusted.client(true, nil), map[string]string{"X-Forwarded-For": "203.0.113.9", "Forwarded": "for=203.0.113.9"})
	if got.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("forwarding headers from an untrusted peer believed: %s", got)
	}
	header := proxyV2(1, netip.MustParseAddrPort("198.51.100.7:40000"), netip.MustParseAddrPort("203.0.113.1:443"), 0)
	if got := withHeaders(trusted, trusted.client(true, header), nil); got.String() != "198.51.100.7:40000" {
		t.Errorf("PROXY header from a trusted balancer: client %s", got)
	}
	r, err := untrusted.client(true, header).Get("https://" + untrusted.addr + DoHPath)
	if err == nil {
		r.Body.Close()
		t.Errorf("PROXY header from an untrusted peer: status %d; want the connection refused", r.StatusCode)
	}
}

// TestDoHWithCurl resolves a name through the DoH listener with curl
// --doh-url (POSTs, token in the path) and fetches a page from the address.
func TestDoHWithCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not on PATH (Debian package curl)")
	}
	f := startDoH(t)
	web, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	page := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "resolved through dnsward") }),
		ReadHeaderTimeout: time.Second}
	go page.Serve(web)
	defer page.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, f.ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(web.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, curl, "-sS", "--max-time", "10", "--cacert", caFile,
		"--doh-url", fmt.Sprintf("https://%s%s/%s", f.addr, DoHPath, testToken), "http://web.test:"+port+"/")
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "resolved through dnsward" {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	if q := f.echo.lastQuery(t); q.Token != testToken || q.Transport != TransportHTTPS {
		t.Errorf("query from curl: %+v", q)
	}
}

// TestDoHMaxAge covers the wire walk on its own, including replies it must not trust.
func TestDoHMaxAge(t *testing.T) {
	m := new(dns.Msg).SetQuestion("example.org.", dns.TypeA)
	a, _ := dns.NewRR("example.org. 600 IN A 192.0.2.1")
	c, _ := dns.NewRR("example.org. 30 IN CNAME x.example.")
	m.Answer = []dns.RR{a, c}
	m.SetEdns0(1232, true) // the OPT "TTL" (flags) must not count
	m.Compress = true
	b, _ := m.Pack()
	if got := dohMaxAge(b); got != 30 {
		t.Errorf("max-age %d, want 30", got)
	}
	for i := range len(b) {
		_ = dohMaxAge(b[:i]) // truncations must not panic
	}
	if got := dohMaxAge(b[:len(b)-3]); got != 0 {
		t.Errorf("truncated reply: %d", got)
	}
}

// TestDoHWithKdig queries the DoH listener with Knot's kdig (POST and
// +https-get), verifying the certificate against the test CA.
func TestDoHWithKdig(t *testing.T) {
	kdig, err := exec.LookPath("kdig")
	if err != nil {
		t.Skip("kdig not on PATH (Debian package knot-dnsutils)")
	}
	f := startDoH(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, f.ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(f.addr)
	for _, get := range []bool{false, true} {
		args := []string{"@" + host, "-p", port, "+https=" + DoHPath + "/" + testToken, "+tls-ca=" + caFile,
			"+tls-hostname=dns.test", "+timeout=5", "+retry=0", "www.example.org", "A"}
		if get {
			args = append(args, "+https-get")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, kdig, args...).CombinedOutput()
		cancel()
		if err != nil || !strings.Contains(string(out), "status: NOERROR") || !strings.Contains(string(out), "192.0.2.1") {
			t.Fatalf("kdig (GET %v): %v\n%s", get, err, out)
		}
		if q := f.echo.lastQuery(t); q.Token != testToken || q.Transport != TransportHTTPS {
			t.Errorf("query from kdig: %+v", q)
		}
	}
}
