package upstream

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnstest"
)

// zone answers a small fixed set of names, like a real upstream would.
func zone(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	q := req.Question[0]
	add := func(s string) {
		rr, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		m.Answer = append(m.Answer, rr)
	}
	switch strings.ToLower(q.Name) + " " + dns.TypeToString[q.Qtype] {
	case "a.test. A":
		add("a.test. 300 IN A 192.0.2.1")
	case "aaaa.test. AAAA":
		add("aaaa.test. 300 IN AAAA 2001:db8::1")
	case "cname.test. A":
		add("cname.test. 300 IN CNAME a.test.")
		add("a.test. 300 IN A 192.0.2.1")
	case "mx.test. MX":
		add("mx.test. 300 IN MX 10 mail.test.")
	case "txt.test. TXT":
		add(`txt.test. 300 IN TXT "hello world" "second string"`)
	case "big.test. TXT":
		for i := 0; i < 16; i++ { // 16 x 255-byte strings: about 4 KB
			m.Answer = append(m.Answer, &dns.TXT{
				Hdr: dns.RR_Header{Name: "big.test.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300},
				Txt: []string{strings.Repeat(string(rune('a'+i)), 255)},
			})
		}
	case "servfail.test. A":
		m.Rcode = dns.RcodeServerFailure
	default:
		m.Rcode = dns.RcodeNameError
	}
	return m
}

// serve wraps an answer function as a miekg handler that truncates UDP
// replies to the client's advertised size, as real servers do.
func serve(answer func(*dns.Msg) *dns.Msg) dns.HandlerFunc {
	return func(w dns.ResponseWriter, req *dns.Msg) {
		m := answer(req)
		if m == nil {
			return // stay silent
		}
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
			size := dns.MinMsgSize
			if opt := req.IsEdns0(); opt != nil {
				size = int(opt.UDPSize())
			}
			m.Truncate(size)
		}
		w.WriteMsg(m)
	}
}

// counter counts queries per transport seen by a test server.
type counter struct{ udp, tcp atomic.Int64 }

func (c *counter) wrap(h dns.HandlerFunc) dns.HandlerFunc {
	return func(w dns.ResponseWriter, req *dns.Msg) {
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
			c.udp.Add(1)
		} else {
			c.tcp.Add(1)
		}
		h(w, req)
	}
}

// startUDPTCP starts UDP and TCP servers on the same loopback port and
// returns "127.0.0.1:port" and the TCP listener's accept counter.
func startUDPTCP(t testing.TB, h dns.Handler) (string, *dnstest.CountingListener) {
	return dnstest.Serve(t, h)
}

// recorder is an Observer that keeps every call.
type recorder struct {
	mu      sync.Mutex
	results []string // "upstream outcome"
	ups     []string // "upstream up|down"
	resends []string // "upstream"
}

func (r *recorder) UpstreamResult(upstream, outcome string, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.results = append(r.results, upstream+" "+outcome)
}

func (r *recorder) UpstreamUp(upstream string, up bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	state := "down"
	if up {
		state = "up"
	}
	r.ups = append(r.ups, upstream+" "+state)
}

func (r *recorder) UpstreamResend(upstream string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resends = append(r.resends, upstream)
}

func (r *recorder) count(list func(*recorder) []string, entry string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range list(r) {
		if e == entry {
			n++
		}
	}
	return n
}

func (r *recorder) resultCount(entry string) int {
	return r.count(func(r *recorder) []string { return r.results }, entry)
}

func (r *recorder) upCount(entry string) int {
	return r.count(func(r *recorder) []string { return r.ups }, entry)
}

// newForwarder builds a Forwarder closed at the end of the test. Tests that
// do not time anything get a 5s timeout: the race detector on a busy 2-core
// machine can make a TLS handshake take seconds.
func newForwarder(t *testing.T, cfg Config, opts Options) *Forwarder {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	f, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

func answerStrings(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		out = append(out, rr.String())
	}
	return out
}
