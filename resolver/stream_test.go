package resolver

import (
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnstest"
)

// slowZone answers every A query with 192.0.2.1, names starting with
// "slow" after 300 ms.
func slowZone(t *testing.T) string {
	addr, _ := dnstest.Serve(t, dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		if strings.HasPrefix(req.Question[0].Name, "slow") {
			time.Sleep(300 * time.Millisecond)
		}
		m := new(dns.Msg).SetReply(req)
		m.Answer = []dns.RR{dnstest.RR(t, req.Question[0].Name+" 300 IN A 192.0.2.1")}
		_ = w.WriteMsg(m)
	}))
	return addr
}

func writeFrame(t *testing.T, c net.Conn, m *dns.Msg) {
	t.Helper()
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(wire))), wire...)); err != nil {
		t.Fatal(err)
	}
}

func readFrame(c net.Conn) (*dns.Msg, error) {
	var n [2]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint16(n[:]))
	if _, err := io.ReadFull(c, buf); err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	return m, m.Unpack(buf)
}

func dialTCP(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

// RFC 7766 §6.2.1.1: queries on one connection are answered as they are
// ready, so a cached answer overtakes a slow miss asked before it.
func TestTCPPipeliningAnswersOutOfOrder(t *testing.T) {
	srv := startResolver(t, Config{Cache: CacheConfig{MaxEntries: 100}}, Options{}, slowZone(t))
	ask(t, "tcp", srv.addr, "fast.example.", dns.TypeA, false) // now cached
	c := dialTCP(t, srv.addr)
	slow, fast := new(dns.Msg).SetQuestion("slow.example.", dns.TypeA), new(dns.Msg).SetQuestion("fast.example.", dns.TypeA)
	writeFrame(t, c, slow)
	writeFrame(t, c, fast)
	first, err := readFrame(c)
	if err != nil {
		t.Fatal(err)
	}
	second, err := readFrame(c)
	if err != nil {
		t.Fatal(err)
	}
	if first.Id != fast.Id || second.Id != slow.Id || len(second.Answer) != 1 {
		t.Fatalf("answers came as %s then %s; want the cached one first", first.Question[0].Name, second.Question[0].Name)
	}
}

// An idle connection is closed after tcp.idle_timeout; one that sends a
// length and stalls (slow-loris) is cut off too.
func TestTCPIdleAndSlowClientsAreCutOff(t *testing.T) {
	cfg := Config{TCP: TCPConfig{IdleTimeout: time.Second, MaxConnections: 100, MaxPerClient: 100}}
	srv := startResolver(t, cfg, Options{}, slowZone(t))
	idle := dialTCP(t, srv.addr)
	start := time.Now()
	if _, err := idle.Read(make([]byte, 1)); err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("idle connection: read %v after %v; want it closed after the idle timeout", err, time.Since(start))
	}
	loris := dialTCP(t, srv.addr)
	loris.Write([]byte{0x01, 0x00, 0xAB}) // 256 bytes announced, one sent
	start = time.Now()
	loris.SetDeadline(time.Now().Add(6 * time.Second))
	if _, err := loris.Read(make([]byte, 1)); err == nil || time.Since(start) > messageTimeout+time.Second {
		t.Fatalf("stalled message: read %v after %v; want the connection cut off", err, time.Since(start))
	}
}

// A 65535-byte message of junk costs that connection and nothing else.
func TestTCPJunkMessageDoesNoHarm(t *testing.T) {
	srv := startResolver(t, Config{}, Options{}, slowZone(t))
	c := dialTCP(t, srv.addr)
	junk := make([]byte, 2+65535)
	binary.BigEndian.PutUint16(junk, 65535)
	for i := range junk[2:] {
		junk[2+i] = byte(i * 7)
	}
	junk[4] |= 0x80 // a "response": nothing to answer
	c.Write(junk)
	if resp := ask(t, "tcp", srv.addr, "a.example.", dns.TypeA, false); len(resp.Answer) != 1 {
		t.Fatalf("after junk: %v", resp)
	}
}

// 300 idle connections from one client hold only tcp.max_per_client
// slots; another client, over TCP or UDP, is still answered.
func TestIdleConnectionsDoNotLockOutOtherClients(t *testing.T) {
	cfg := DefaultConfig()
	cfg.TCP.MaxPerClient = 50
	srv := startResolver(t, Config{TCP: cfg.TCP}, Options{}, slowZone(t))
	var held []net.Conn
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 7)}, Timeout: 3 * time.Second}
	for range 300 {
		c, err := d.Dial("tcp", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for _, network := range []string{"tcp", "udp"} {
		resp, err := dnstest.Exchange(new(dns.Msg).SetQuestion("a.example.", dns.TypeA), network, "127.0.0.8", srv.addr)
		if err != nil || len(resp.Answer) != 1 {
			t.Fatalf("%s client beside 300 idle connections: %v %v", network, resp, err)
		}
	}
	// The flooder's connections beyond its share were closed at once.
	open := 0
	for _, c := range held {
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil && isTimeout(err) {
			open++
		}
	}
	if open > 50 {
		t.Errorf("%d of the flooder's connections stayed open, want at most tcp.max_per_client (50)", open)
	}
}

// FuzzTCPFraming writes arbitrary bytes to a real TCP connection: every
// frame dnsward sends back is a whole DNS message, and the connection
// ends (it never hangs) once the client stops sending.
func FuzzTCPFraming(f *testing.F) {
	q, _ := new(dns.Msg).SetQuestion("a.example.", dns.TypeA).Pack()
	f.Add(append(binary.BigEndian.AppendUint16(nil, uint16(len(q))), q...))
	f.Add([]byte{0, 0})
	f.Add([]byte{0xff, 0xff, 1, 2, 3})
	up := startUpstreamF(f, testZone...)
	fwd := newTestForwarder(f, up.addr)
	cfg := DefaultConfig()
	cfg.Listen = []string{"127.0.0.1:0"}
	cfg.TCP.IdleTimeout = time.Second
	r, err := New(Options{Config: cfg, Upstream: fwd})
	if err != nil {
		f.Fatal(err)
	}
	if err := r.Start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { shutdown(f, r) })
	addr := r.Addrs()[0].String()
	f.Fuzz(func(t *testing.T, stream []byte) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(stream)
		c.(*net.TCPConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(messageTimeout + 2*time.Second))
		for {
			m, err := readFrame(c)
			if err == io.EOF || err == io.ErrUnexpectedEOF && m == nil {
				return
			}
			if isTimeout(err) {
				t.Fatal("the connection neither answered nor closed")
			}
			if err != nil {
				if _, ok := err.(net.Error); ok {
					return // reset by the server: fine
				}
				t.Fatalf("a frame that is not a DNS message: %v", err)
			}
		}
	})
}
