package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"

	"github.com/dnsward/dnsward/internal/dnstest"
	"github.com/dnsward/dnsward/resolver"
)

// Two devices, one source address: the token each presents picks its
// group, over DoT (server name), DoH (path) and DoQ (server name).
const (
	govToken   = "gov0device0token0aaaa1"
	staffToken = "staff0device0token0bb2"
)

type encryptedApp struct {
	*app
	ca *dnstest.CA
}

func startEncryptedApp(t *testing.T) encryptedApp {
	t.Helper()
	z := startZoneServer(t, nil)
	dir := t.TempDir()
	ca := dnstest.NewCA(t)
	cert, key, _ := ca.WritePair(t, dir, "dns.test", "*.dns.test", "127.0.0.1")
	path := writeConfig(t, dir, z.addr, fmt.Sprintf(`
listen_tls: ["127.0.0.1:0"]
listen_https: ["127.0.0.1:0"]
listen_quic: ["127.0.0.1:0"]
tls: {cert_file: %q, key_file: %q, server_name: dns.test}
proxy_protocol: {trusted: ["127.0.0.9/32"]}
lists:
  tiktok: {sources: ["builtin:tiktok"]}
groups:
  - name: gov-devices
    tokens: [%s]
    clients: ["10.0.0.0/8"]
    block: [tiktok]
  - name: staff
    tokens: [%s]
    clients: ["192.0.2.0/24"]
`, cert, key, govToken, staffToken))
	return encryptedApp{app: startApp(t, path), ca: ca}
}

func (a encryptedApp) addr(t resolver.Transport) string { return a.resolver.ListenAddrs(t)[0].String() }

func (a encryptedApp) tlsConfig(serverName string, alpn ...string) *tls.Config {
	return &tls.Config{RootCAs: a.ca.Pool(), ServerName: serverName, NextProtos: alpn, MinVersion: tls.VersionTLS12}
}

func wantRcode(t *testing.T, what string, m *dns.Msg, err error, rcode int) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if m.Rcode != rcode {
		t.Fatalf("%s: rcode %s, want %s\n%v", what, dns.RcodeToString[m.Rcode], dns.RcodeToString[rcode], m)
	}
}

func TestDeviceTokensChoosePolicyOverDoTDoHAndDoQ(t *testing.T) {
	a := startEncryptedApp(t)
	q := new(dns.Msg).SetQuestion("www.tiktok.com.", dns.TypeA)
	for token, rcode := range map[string]int{govToken: dns.RcodeNameError, staffToken: dns.RcodeSuccess} {
		// DoT: the token is the first label of the server name.
		c := &dns.Client{Net: "tcp-tls", Timeout: 5 * time.Second, TLSConfig: a.tlsConfig(token + ".dns.test")}
		m, _, err := c.Exchange(q.Copy(), a.addr(resolver.TransportTLS))
		wantRcode(t, "DoT with token "+token[:5], m, err, rcode)

		// DoH, POST and GET: the token is in the path.
		for _, get := range []bool{false, true} {
			m, err := dohExchange(a, "/dns-query/"+token, q, get)
			wantRcode(t, fmt.Sprintf("DoH (GET %v) with token %s", get, token[:5]), m, err, rcode)
		}

		// DoQ: the token is the first label of the server name.
		m, err = doqExchange(a, token+".dns.test", q)
		wantRcode(t, "DoQ with token "+token[:5], m, err, rcode)
	}
	// Without a token, 127.0.0.1 is in no group: not filtered.
	m, err := dohExchange(a, "/dns-query", q, false)
	wantRcode(t, "DoH without a token", m, err, dns.RcodeSuccess)
}

func dohExchange(a encryptedApp, path string, q *dns.Msg, get bool) (*dns.Msg, error) {
	wire, _ := q.Pack()
	wire[0], wire[1] = 0, 0 // RFC 8484 §4.1: ID 0
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: a.tlsConfig("dns.test"), ForceAttemptHTTP2: true}}
	defer client.CloseIdleConnections()
	url := "https://" + a.addr(resolver.TransportHTTPS) + path
	var resp *http.Response
	var err error
	if get {
		resp, err = client.Get(url + "?dns=" + base64.RawURLEncoding.EncodeToString(wire))
	} else {
		resp, err = client.Post(url, "application/dns-message", bytes.NewReader(wire))
	}
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s (%v): %s", resp.Status, err, body)
	}
	m := new(dns.Msg)
	return m, m.Unpack(body)
}

func doqExchange(a encryptedApp, serverName string, q *dns.Msg) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, a.addr(resolver.TransportQUIC), a.tlsConfig(serverName, "doq"), nil)
	if err != nil {
		return nil, err
	}
	defer conn.CloseWithError(0, "")
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	m := q.Copy()
	m.Id = 0 // RFC 9250 §4.2.1
	wire, _ := m.Pack()
	if _, err := st.Write(binary.BigEndian.AppendUint16(nil, uint16(len(wire)))); err != nil {
		return nil, err
	}
	if _, err := st.Write(wire); err != nil {
		return nil, err
	}
	st.Close()
	reply, err := io.ReadAll(st)
	if err != nil || len(reply) < 2 {
		return nil, fmt.Errorf("DoQ reply %x: %v", reply, err)
	}
	out := new(dns.Msg)
	return out, out.Unpack(reply[2:])
}

// A PROXY v2 header from a trusted balancer carries the client's address
// into group choice; from anyone else the connection is refused.
func TestProxyProtocolCarriesTheClientAddress(t *testing.T) {
	a := startEncryptedApp(t)
	q := new(dns.Msg).SetQuestion("www.tiktok.com.", dns.TypeA)
	for _, addr := range []string{a.dnsAddr(), a.addr(resolver.TransportTLS)} {
		tlsOn := addr != a.dnsAddr()
		m, err := viaProxy(a, "127.0.0.9", addr, "10.1.2.3", q, tlsOn)
		wantRcode(t, "from the trusted balancer for client 10.1.2.3 (gov-devices) to "+addr, m, err, dns.RcodeNameError)
		if _, err := viaProxy(a, "127.0.0.1", addr, "10.1.2.3", q, tlsOn); err == nil {
			t.Errorf("%s: a PROXY header from an untrusted peer was accepted", addr)
		}
	}
}

// viaProxy connects from src to addr, sends a PROXY v2 header naming
// client, then one framed query (over TLS when tlsOn).
func viaProxy(a encryptedApp, src, addr, client string, q *dns.Msg, tlsOn bool) (*dns.Msg, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 3 * time.Second}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	dst := raw.RemoteAddr().(*net.TCPAddr)
	hdr := []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c")
	hdr = append(hdr, net.ParseIP(client).To4()...)
	hdr = append(hdr, dst.IP.To4()...)
	hdr = binary.BigEndian.AppendUint16(hdr, 40000)
	hdr = binary.BigEndian.AppendUint16(hdr, uint16(dst.Port))
	if _, err := raw.Write(hdr); err != nil {
		return nil, err
	}
	var conn net.Conn = raw
	if tlsOn {
		tc := tls.Client(raw, a.tlsConfig("dns.test"))
		if err := tc.Handshake(); err != nil {
			return nil, err
		}
		conn = tc
	}
	dc := &dns.Conn{Conn: conn}
	if err := dc.WriteMsg(q); err != nil {
		return nil, err
	}
	return dc.ReadMsg()
}

// Windows 11, iOS and Android ask _dns.resolver.arpa SVCB on the
// resolver DHCP gave them, and upgrade to what it names.
func TestDDRNamesTheEncryptedEndpoints(t *testing.T) {
	a := startEncryptedApp(t)
	m := query(t, "127.0.0.1", a.dnsAddr(), "_dns.resolver.arpa.", dns.TypeSVCB)
	alpns := map[string]uint16{}
	for _, rr := range m.Answer {
		svcb, ok := rr.(*dns.SVCB)
		if !ok || svcb.Target != "dns.test." {
			t.Fatalf("DDR answer %v, want SVCB records for dns.test.", rr)
		}
		var alpn string
		var port uint16
		for _, kv := range svcb.Value {
			switch v := kv.(type) {
			case *dns.SVCBAlpn:
				alpn = strings.Join(v.Alpn, ",")
			case *dns.SVCBPort:
				port = v.Port
			}
		}
		alpns[alpn] = port
	}
	for alpn, tr := range map[string]resolver.Transport{"dot": resolver.TransportTLS, "h2": resolver.TransportHTTPS, "doq": resolver.TransportQUIC} {
		_, port, _ := net.SplitHostPort(a.addr(tr))
		if fmt.Sprint(alpns[alpn]) != port {
			t.Errorf("DDR names %v; want %s on port %s", alpns, alpn, port)
		}
	}
	if m := query(t, "127.0.0.1", a.dnsAddr(), "_dns.resolver.arpa.", dns.TypeA); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 {
		t.Errorf("_dns.resolver.arpa A: %v, want NODATA", m)
	}
}

// kdig (knot-dnsutils) speaks DoT and DoH as a real client would.
func TestKdigOverTLSAndHTTPS(t *testing.T) {
	kdig, err := exec.LookPath("kdig")
	if err != nil {
		t.Skip("kdig not on PATH (Debian package knot-dnsutils; .ci/run installs it)")
	}
	a := startEncryptedApp(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, a.ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"DoT": {"-p", port(a.addr(resolver.TransportTLS)), "+tls-ca=" + caFile, "+tls-hostname=" + govToken + ".dns.test"},
		"DoH": {"-p", port(a.addr(resolver.TransportHTTPS)), "+tls-ca=" + caFile, "+tls-hostname=dns.test", "+https=/dns-query/" + govToken},
	} {
		args = append([]string{"@127.0.0.1", "+timeout=5", "+retry=0"}, args...)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, kdig, append(args, "www.tiktok.com", "A")...).CombinedOutput()
		cancel()
		if err != nil || !strings.Contains(string(out), "status: NXDOMAIN") || !strings.Contains(string(out), "blocked by list tiktok") {
			t.Errorf("kdig %s for a government device: %v\n%s", name, err, out)
		}
	}
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
