package metrics

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dnstap "github.com/dnstap/golang-dnstap"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

func TestDnstapConfigValidate(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		cfg  DnstapConfig
		key  string // "" = valid
	}{
		{"off", DnstapConfig{}, ""},
		{"socket", DnstapConfig{Socket: "/run/dnstap.sock", Identity: "ns1", Version: "dnsward", BufferSize: 5}, ""},
		{"tcp", DnstapConfig{TCP: "127.0.0.1:6000"}, ""},
		{"tcp name", DnstapConfig{TCP: "collector.example:6000"}, ""},
		{"both", DnstapConfig{Socket: "/run/dnstap.sock", TCP: "127.0.0.1:6000"}, "dnstap.tcp"},
		{"socket too long", DnstapConfig{Socket: "/" + strings.Repeat("a", 200)}, "dnstap.socket"},
		{"socket is a directory", DnstapConfig{Socket: dir}, "dnstap.socket"},
		{"tcp no port", DnstapConfig{TCP: "127.0.0.1"}, "dnstap.tcp"},
		{"tcp no host", DnstapConfig{TCP: ":6000"}, "dnstap.tcp"},
		{"tcp port 0", DnstapConfig{TCP: "127.0.0.1:0"}, "dnstap.tcp"},
		{"tcp port range", DnstapConfig{TCP: "127.0.0.1:70000"}, "dnstap.tcp"},
		{"negative buffer", DnstapConfig{Socket: "/run/x", BufferSize: -1}, "dnstap.buffer_size"},
		{"huge buffer", DnstapConfig{Socket: "/run/x", BufferSize: 1 << 30}, "dnstap.buffer_size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.key == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Key() != tc.key {
				t.Fatalf("Validate = %v, want an error for key %s", err, tc.key)
			}
			if !strings.Contains(err.Error(), tc.key+": ") {
				t.Errorf("message %q does not start with the key", err)
			}
		})
	}
}

func TestDnstapOff(t *testing.T) {
	d, err := NewDnstap(DnstapConfig{Identity: "x"}, nil)
	if d != nil || err != nil {
		t.Fatalf("NewDnstap(off) = %v, %v; want nil, nil", d, err)
	}
	d.Close() // nil-safe
	if d.Dropped() != 0 {
		t.Fatal("nil Dnstap dropped something")
	}
	if _, err := NewDnstap(DnstapConfig{Socket: "/a", TCP: "127.0.0.1:1"}, nil); err == nil {
		t.Fatal("NewDnstap accepted an invalid config")
	}
	r, _ := newTestRecorder(t, Options{})
	if r.WantsWire() {
		t.Fatal("WantsWire without dnstap")
	}
	var nilRec *Recorder
	if nilRec.WantsWire() {
		t.Fatal("nil recorder WantsWire")
	}
}

func TestDnstapMessagesOverUnixSocket(t *testing.T) {
	path := tapSocket(t)
	reader := startTapReader(t, path)
	d, err := NewDnstap(DnstapConfig{Socket: path, Identity: "resolver-1", Version: "dnsward-test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rec, reg := newTestRecorder(t, Options{Dnstap: d})
	if !rec.WantsWire() {
		t.Fatal("WantsWire is false with dnstap on")
	}

	at := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	q4, r4 := wireQuery(t, "www.example.org.")
	rec.Query(&QueryEvent{Time: at, Duration: 3 * time.Millisecond, Client: netip.MustParseAddr("127.0.0.9"), Proto: "udp",
		QName: "www.example.org.", QType: dns.TypeA, Outcome: OutcomeForwarded, QueryWire: q4, ResponseWire: r4,
		ClientAddrPort: netip.MustParseAddrPort("127.0.0.9:40000"), ServerAddrPort: netip.MustParseAddrPort("127.0.0.1:53")})
	want4 := append([]byte(nil), q4...)
	clear(q4) // the caller may reuse its buffers once Query returns
	clear(r4)
	q6, r6 := wireQuery(t, "v6.example.net.")
	rec.Query(&QueryEvent{Time: at, Client: netip.MustParseAddr("::1"), Proto: "tcp", QType: dns.TypeA,
		Outcome: OutcomeCached, QueryWire: q6, ResponseWire: r6, ClientAddrPort: netip.MustParseAddrPort("[::1]:40001")})
	rec.Query(&QueryEvent{Time: at, Client: netip.MustParseAddr("127.0.0.9"), QName: "nowire.example."}) // no wire: no message

	cq := reader.next(t)
	checkTap(t, cq, dnstap.Message_CLIENT_QUERY, "www.example.org.")
	m := cq.GetMessage()
	if !bytes.Equal(m.GetQueryMessage(), want4) {
		t.Error("query message bytes differ from what the resolver handed over")
	}
	if string(cq.GetIdentity()) != "resolver-1" || string(cq.GetVersion()) != "dnsward-test" {
		t.Errorf("identity/version = %q/%q", cq.GetIdentity(), cq.GetVersion())
	}
	if m.GetSocketFamily() != dnstap.SocketFamily_INET || m.GetSocketProtocol() != dnstap.SocketProtocol_UDP {
		t.Errorf("family/protocol = %v/%v", m.GetSocketFamily(), m.GetSocketProtocol())
	}
	if ip := net.IP(m.GetQueryAddress()); !ip.Equal(net.IPv4(127, 0, 0, 9)) || m.GetQueryPort() != 40000 {
		t.Errorf("query address %v port %d", ip, m.GetQueryPort())
	}
	if ip := net.IP(m.GetResponseAddress()); !ip.Equal(net.IPv4(127, 0, 0, 1)) || m.GetResponsePort() != 53 {
		t.Errorf("response address %v port %d", ip, m.GetResponsePort())
	}
	if got := time.Unix(int64(m.GetQueryTimeSec()), int64(m.GetQueryTimeNsec())); !got.Equal(at) {
		t.Errorf("query time %v, want %v", got, at)
	}
	if m.ResponseMessage != nil || m.ResponseTimeSec != nil {
		t.Error("CLIENT_QUERY carries response fields")
	}

	cr := reader.next(t)
	checkTap(t, cr, dnstap.Message_CLIENT_RESPONSE, "www.example.org.")
	m = cr.GetMessage()
	if got := time.Unix(int64(m.GetResponseTimeSec()), int64(m.GetResponseTimeNsec())); !got.Equal(at.Add(3 * time.Millisecond)) {
		t.Errorf("response time %v", got)
	}
	resp := new(dns.Msg)
	if err := resp.Unpack(m.GetResponseMessage()); err != nil || len(resp.Answer) != 1 || !resp.Response {
		t.Errorf("response message: %v %v", resp, err)
	}

	m6 := reader.next(t).GetMessage()
	if m6.GetType() != dnstap.Message_CLIENT_QUERY || m6.GetSocketFamily() != dnstap.SocketFamily_INET6 ||
		m6.GetSocketProtocol() != dnstap.SocketProtocol_TCP || !net.IP(m6.GetQueryAddress()).Equal(net.IPv6loopback) {
		t.Errorf("IPv6/TCP query: %v", m6)
	}
	if m6.ResponseAddress != nil {
		t.Error("response address set although the event had none")
	}
	checkTap(t, reader.next(t), dnstap.Message_CLIENT_RESPONSE, "v6.example.net.")

	d.Close()
	select {
	case <-reader.stopped:
	case <-time.After(5 * time.Second):
		t.Error("Close did not end the Frame Streams session with STOP")
	}
	select {
	case m := <-reader.frames:
		t.Errorf("unexpected extra message %v", m)
	default:
	}
	if v := dnstapDroppedMetric(t, reg); v != 0 {
		t.Errorf("dnsward_dnstap_dropped_total = %v, want 0", v)
	}
}

func dnstapDroppedMetric(t *testing.T, g prometheus.Gatherer) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "dnsward_dnstap_dropped_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("dnsward_dnstap_dropped_total is not registered")
	return 0
}

func checkTap(t *testing.T, d *dnstap.Dnstap, typ dnstap.Message_Type, qname string) {
	t.Helper()
	m := d.GetMessage()
	if d.GetType() != dnstap.Dnstap_MESSAGE || m.GetType() != typ {
		t.Fatalf("got %v/%v, want MESSAGE/%v", d.GetType(), m.GetType(), typ)
	}
	wire := m.GetQueryMessage()
	if typ == dnstap.Message_CLIENT_RESPONSE {
		wire = m.GetResponseMessage()
	}
	msg := new(dns.Msg)
	if err := msg.Unpack(wire); err != nil {
		t.Fatalf("%v: unpacking the DNS message: %v", typ, err)
	}
	if len(msg.Question) != 1 || msg.Question[0].Name != qname {
		t.Fatalf("%v: question %v, want %s", typ, msg.Question, qname)
	}
}

func TestAddrPortOf(t *testing.T) {
	var nilUDP *net.UDPAddr
	for _, tc := range []struct {
		in   net.Addr
		want string
	}{
		{&net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 5353}, "127.0.0.2:5353"}, // 16-byte (mapped) form
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 53}, "[::1]:53"},
		{nilUDP, "invalid AddrPort"},
		{&net.UnixAddr{Name: "/run/x", Net: "unix"}, "invalid AddrPort"},
		{nil, "invalid AddrPort"},
	} {
		if got := AddrPortOf(tc.in).String(); got != tc.want {
			t.Errorf("AddrPortOf(%v) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// BenchmarkDnstapQuery is Recorder.Query's cost with dnstap on and a
// reader draining the socket: one allocation for the wire copies.
func BenchmarkDnstapQuery(b *testing.B) {
	path := filepath.Join(b.TempDir(), "tap.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() { // a reader that handshakes and discards
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if fr, err := dnstap.NewReader(c, &dnstap.ReaderOptions{Bidirectional: true}); err == nil {
					buf := make([]byte, 1<<16)
					for _, err := fr.ReadFrame(buf); err == nil; _, err = fr.ReadFrame(buf) {
					}
				}
			}()
		}
	}()
	d, err := NewDnstap(DnstapConfig{Socket: path}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	rec, _ := newTestRecorder(b, Options{Dnstap: d})
	ev := tapEvent(b, "bench.example.")
	b.ReportAllocs()
	for b.Loop() {
		rec.Query(ev)
	}
}
