package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnstest"
)

// zoneServer is a real upstream on 127.0.0.1 answering A/AAAA for every
// name (192.0.2.1 / 2001:db8::1) plus CNAMEs from its map.
type zoneServer struct {
	addr    string
	cnames  map[string]string
	ipv4    map[string]net.IP // names answered with another address than 192.0.2.1
	queries atomic.Int64
}

func startZoneServer(t *testing.T, cnames map[string]string) *zoneServer {
	t.Helper()
	z := &zoneServer{cnames: cnames}
	z.addr, _ = dnstest.Serve(t, z)
	return z
}

func (z *zoneServer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	q := req.Question[0]
	if q.Name != "." { // readiness probes are not client traffic
		z.queries.Add(1)
	}
	m := new(dns.Msg).SetReply(req)
	name := strings.ToLower(q.Name)
	if target, ok := z.cnames[name]; ok {
		m.Answer = append(m.Answer, &dns.CNAME{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 300}, Target: target})
		name = target
	}
	hdr := dns.RR_Header{Name: name, Class: dns.ClassINET, Ttl: 300}
	switch q.Qtype {
	case dns.TypeA:
		hdr.Rrtype = dns.TypeA
		a := net.IPv4(192, 0, 2, 1)
		if ip, ok := z.ipv4[name]; ok {
			a = ip
		}
		m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: a})
	case dns.TypeAAAA:
		hdr.Rrtype = dns.TypeAAAA
		m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: net.ParseIP("2001:db8::1")})
	}
	_ = w.WriteMsg(m)
}

// writeConfig writes a dnsward YAML whose upstream is up and whose
// listeners use free loopback ports, and returns its path.
func writeConfig(t *testing.T, dir, upstreamAddr, body string) string {
	t.Helper()
	return writeConfigOn(t, dir, "127.0.0.1:0", upstreamAddr, body)
}

// writeConfigOn is writeConfig with the DNS listener on listen, for a
// primary that must know where to send NOTIFY before dnsward starts.
func writeConfigOn(t *testing.T, dir, listen, upstreamAddr, body string) string {
	t.Helper()
	text := fmt.Sprintf("listen: [%q]\nupstream:\n  servers: [\"%s\"]\n  strategy: failover\n  timeout: 1s\nadmin:\n  listen: \"127.0.0.1:0\"\nstate_dir: %q\n%s",
		listen, upstreamAddr, filepath.Join(dir, "state"), body)
	path := filepath.Join(dir, "dnsward.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startApp runs dnsward in-process on the config at path.
func startApp(t *testing.T, path string) *app {
	t.Helper()
	cfg, err := loadConfigFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	a, err := start(ctx, cfg, log, 0)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.run(ctx, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return a
}

func (a *app) dnsAddr() string { return a.resolver.Addrs()[0].String() }

// query sends one UDP query with EDNS from the loopback address src.
func query(t *testing.T, src, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	resp, err := exchange(src, addr, name, qtype)
	if err != nil {
		t.Fatalf("query %s from %s: %v", name, src, err)
	}
	return resp
}

func ede(m *dns.Msg) string {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				return fmt.Sprintf("%d %s", e.InfoCode, e.ExtraText)
			}
		}
	}
	return ""
}

// exchange is query without the test: safe from any goroutine.
func exchange(src, addr, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg).SetQuestion(name, qtype)
	m.SetEdns0(1232, false)
	c := &dns.Client{Net: "udp", Timeout: 3 * time.Second,
		Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(src)}}}
	resp, _, err := c.Exchange(m, addr)
	return resp, err
}
