package resolver

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/resolver/upstream"
)

// scriptedUpstream is a real DNS server on 127.0.0.1 (UDP and TCP) whose
// handler a test writes, for replies no well-behaved server sends.
type scriptedUpstream struct {
	addr string
	mu   sync.Mutex
	seen []*dns.Msg // UDP and TCP queries, in arrival order
}

func startScripted(t *testing.T, handle func(w dns.ResponseWriter, req *dns.Msg, n int)) *scriptedUpstream {
	t.Helper()
	u := &scriptedUpstream{}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		u.mu.Lock()
		u.seen = append(u.seen, req)
		n := len(u.seen)
		u.mu.Unlock()
		handle(w, req, n)
	})
	var pc net.PacketConn
	var l net.Listener
	for range 10 {
		p, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if l, err = net.Listen("tcp", p.LocalAddr().String()); err == nil {
			pc = p
			break
		}
		p.Close()
	}
	if pc == nil {
		t.Fatal("no port free for UDP and TCP")
	}
	u.addr = pc.LocalAddr().String()
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h}} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go s.ActivateAndServe()
		<-started
		t.Cleanup(func() { _ = s.Shutdown() })
	}
	return u
}

func (u *scriptedUpstream) queries() []*dns.Msg {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*dns.Msg(nil), u.seen...)
}

// answerA replies with one A record for the question.
func answerA(w dns.ResponseWriter, req *dns.Msg, ip string) {
	m := new(dns.Msg).SetReply(req)
	rr, _ := dns.NewRR(req.Question[0].Name + " 300 IN A " + ip)
	m.Answer = []dns.RR{rr}
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), opt.Do())
	}
	_ = w.WriteMsg(m)
}

// startCountingResolver starts a resolver on one UDP socket forwarding to
// addr, and counts the packets that reach the full pipeline's workers.
func startCountingResolver(t *testing.T, addr string, timeout time.Duration) (*Resolver, string, *atomic.Int64) {
	t.Helper()
	return startCountingResolverWith(t, upstream.Config{Servers: []string{addr}, Strategy: "failover", Timeout: timeout})
}

func startCountingResolverWith(t *testing.T, upCfg upstream.Config) (*Resolver, string, *atomic.Int64) {
	t.Helper()
	fwd, err := upstream.New(upCfg, upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fwd.Close() })
	cfg := DefaultConfig()
	cfg.Listen = []string{"127.0.0.1:0"}
	r, err := New(Options{Config: cfg, Upstream: fwd, UDPReaders: 1})
	if err != nil {
		t.Fatal(err)
	}
	slow := new(atomic.Int64)
	run := r.workers.run
	r.workers.run = func(p slowPacket) { slow.Add(1); run(p) }
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.Shutdown(ctx)
	})
	return r, r.Addrs()[0].String(), slow
}

func clientQueries(qs []*dns.Msg) []*dns.Msg {
	var out []*dns.Msg
	for _, q := range qs {
		if q.Question[0].Name != "." { // the readiness probe
			out = append(out, q)
		}
	}
	return out
}

func TestDirectMissIsSentByTheReadLoop(t *testing.T) {
	up := startScripted(t, func(w dns.ResponseWriter, req *dns.Msg, _ int) { answerA(w, req, "192.0.2.7") })
	_, addr, slow := startCountingResolver(t, up.addr, time.Second)

	q := new(dns.Msg).SetQuestion("WWW.Example.COM.", dns.TypeA)
	q.SetEdns0(4096, true)
	for i := range 2 {
		resp, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(q, addr)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 || resp.Answer[0].(*dns.A).A.String() != "192.0.2.7" {
			t.Fatalf("query %d: got %v", i, resp)
		}
		if resp.Question[0].Name != "WWW.Example.COM." || resp.Id != q.Id || !resp.RecursionAvailable {
			t.Fatalf("query %d: question %q id %d, want the query's", i, resp.Question[0].Name, resp.Id)
		}
		if opt := resp.IsEdns0(); opt == nil || !opt.Do() {
			t.Fatalf("query %d: answer lacks OPT with DO: %v", i, resp)
		}
	}
	seen := clientQueries(up.queries())
	if len(seen) != 1 {
		t.Fatalf("upstream saw %d queries, want 1 (the second answer comes from the cache)", len(seen))
	}
	got := seen[0]
	opt := got.IsEdns0()
	if got.Question[0].Name != "www.example.com." || !got.RecursionDesired || opt == nil || opt.UDPSize() != ourUDPSize || !opt.Do() {
		t.Fatalf("upstream query %v: want lower-case name, RD, OPT %d with DO", got, ourUDPSize)
	}
	if n := slow.Load(); n != 0 {
		t.Fatalf("%d packets took the full pipeline, want 0", n)
	}
}

func TestDirectIgnoresRepliesToOtherQueries(t *testing.T) {
	up := startScripted(t, func(w dns.ResponseWriter, req *dns.Msg, _ int) {
		wrongID := new(dns.Msg).SetReply(req)
		wrongID.Id++
		rr, _ := dns.NewRR(req.Question[0].Name + " 300 IN A 198.51.100.66")
		wrongID.Answer = []dns.RR{rr}
		_ = w.WriteMsg(wrongID)
		wrongName := new(dns.Msg).SetReply(req)
		wrongName.Question[0].Name = "evil.example."
		_ = w.WriteMsg(wrongName)
		query := req.Copy() // QR not set
		_ = w.WriteMsg(query)
		answerA(w, req, "192.0.2.8")
	})
	_, addr, slow := startCountingResolver(t, up.addr, time.Second)
	resp := ask(t, "udp", addr, "spoof.example.", dns.TypeA, true)
	if len(resp.Answer) != 1 || resp.Answer[0].(*dns.A).A.String() != "192.0.2.8" {
		t.Fatalf("got %v, want the real answer 192.0.2.8", resp)
	}
	if n := slow.Load(); n != 0 {
		t.Fatalf("%d packets took the full pipeline, want 0", n)
	}
}

// Replies the loop does not handle itself go to the full pipeline, which
// asks again its own way and answers.
func TestDirectHandsUnusualRepliesToThePipeline(t *testing.T) {
	cases := []struct {
		name  string
		first func(w dns.ResponseWriter, req *dns.Msg) // what the first UDP query gets
	}{
		{"servfail", func(w dns.ResponseWriter, req *dns.Msg) {
			_ = w.WriteMsg(new(dns.Msg).SetRcode(req, dns.RcodeServerFailure))
		}},
		{"truncated", func(w dns.ResponseWriter, req *dns.Msg) {
			m := new(dns.Msg).SetReply(req)
			m.Truncated = true
			_ = w.WriteMsg(m)
		}},
		{"no reply", func(w dns.ResponseWriter, req *dns.Msg) {}},
		{"garbage with the right ID", func(w dns.ResponseWriter, req *dns.Msg) {
			b, _ := new(dns.Msg).SetReply(req).Pack()
			b[7] = 5 // ANCOUNT 5, no records follow
			_, _ = w.Write(b)
		}},
		{"SOA with no data", func(w dns.ResponseWriter, req *dns.Msg) {
			m := new(dns.Msg).SetReply(req)
			a, _ := dns.NewRR(req.Question[0].Name + " 300 IN A 192.0.2.66")
			m.Answer = []dns.RR{a}
			b, _ := m.Pack()
			b[9] = 1 // NSCOUNT 1: root, SOA, IN, TTL 300, RDLENGTH 0
			_, _ = w.Write(append(b, 0, 0, 6, 0, 1, 0, 0, 1, 44, 0, 0))
		}},
		{"extended rcode", func(w dns.ResponseWriter, req *dns.Msg) {
			m := new(dns.Msg).SetReply(req)
			m.SetEdns0(1232, false)
			m.Rcode = dns.RcodeBadCookie
			_ = w.WriteMsg(m)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var asked atomic.Int64
			up := startScripted(t, func(w dns.ResponseWriter, req *dns.Msg, _ int) {
				if req.Question[0].Name != "." && asked.Add(1) == 1 {
					tc.first(w, req)
					return
				}
				answerA(w, req, "192.0.2.9")
			})
			_, addr, slow := startCountingResolver(t, up.addr, 300*time.Millisecond)
			start := time.Now()
			resp := ask(t, "udp", addr, "odd.example.", dns.TypeA, true)
			if len(resp.Answer) != 1 || resp.Answer[0].(*dns.A).A.String() != "192.0.2.9" {
				t.Fatalf("got %v, want the answer from the second try", resp)
			}
			if n := slow.Load(); n != 1 {
				t.Fatalf("%d packets took the full pipeline, want 1", n)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("answer took %v", d)
			}
		})
	}
}

// parallel_best races the two best upstreams from the loop too: the
// first good answer wins, a failed racer leaves it to the other.
func TestDirectRacesForParallelBest(t *testing.T) {
	silent := startScripted(t, func(w dns.ResponseWriter, req *dns.Msg, _ int) {
		if req.Question[0].Name == "." {
			answerA(w, req, "192.0.2.1") // let the forwarder see it up
		}
	})
	servfail := func(w dns.ResponseWriter, req *dns.Msg, _ int) {
		_ = w.WriteMsg(new(dns.Msg).SetRcode(req, dns.RcodeServerFailure))
	}
	failing, failingToo := startScripted(t, servfail), startScripted(t, servfail)
	slowGood := startScripted(t, func(w dns.ResponseWriter, req *dns.Msg, _ int) {
		time.Sleep(30 * time.Millisecond)
		answerA(w, req, "192.0.2.12")
	})
	cases := []struct {
		name    string
		servers []string
		slow    int64 // packets the full pipeline should see
		answer  bool
	}{
		{"one silent", []string{silent.addr, slowGood.addr}, 0, true},
		{"one failing", []string{failing.addr, slowGood.addr}, 0, true},
		{"both failing", []string{failing.addr, failingToo.addr}, 1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, addr, slow := startCountingResolverWith(t, upstream.Config{Servers: tc.servers,
				Strategy: upstream.StrategyParallelBest, Timeout: 500 * time.Millisecond})
			resp := ask(t, "udp", addr, "race-"+tc.name[:3]+".example.", dns.TypeA, true)
			if tc.answer && (len(resp.Answer) != 1 || resp.Answer[0].(*dns.A).A.String() != "192.0.2.12") {
				t.Fatalf("got %v, want the good racer's answer", resp)
			}
			if !tc.answer && resp.Rcode != dns.RcodeServerFailure {
				t.Fatalf("got %v, want SERVFAIL", resp)
			}
			if n := slow.Load(); n != tc.slow {
				t.Fatalf("%d packets took the full pipeline, want %d", n, tc.slow)
			}
		})
	}
}

func TestDirectMergesIdenticalQueries(t *testing.T) {
	up := startScripted(t, func(w dns.ResponseWriter, req *dns.Msg, _ int) {
		time.Sleep(100 * time.Millisecond)
		answerA(w, req, "192.0.2.10")
	})
	_, addr, slow := startCountingResolver(t, up.addr, time.Second)
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for id := uint16(1); id <= 3; id++ {
		q := new(dns.Msg).SetQuestion("merge.example.", dns.TypeA)
		q.Id = id
		b, _ := q.Pack()
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	ids := map[uint16]bool{}
	buf := make([]byte, 512)
	for range 3 {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(buf[:n]); err != nil || len(m.Answer) != 1 {
			t.Fatalf("bad answer %v (%v)", m, err)
		}
		ids[m.Id] = true
	}
	if len(ids) != 3 {
		t.Fatalf("answers for IDs %v, want 1, 2 and 3", ids)
	}
	if n := len(clientQueries(up.queries())); n != 1 {
		t.Fatalf("upstream saw %d queries, want 1", n)
	}
	if n := slow.Load(); n != 0 {
		t.Fatalf("%d packets took the full pipeline, want 0", n)
	}
}

func TestDirectQueriesFinishOnShutdown(t *testing.T) {
	up := startScripted(t, func(w dns.ResponseWriter, req *dns.Msg, _ int) {
		if req.Question[0].Name != "." {
			time.Sleep(200 * time.Millisecond)
		}
		answerA(w, req, "192.0.2.11")
	})
	r, addr, _ := startCountingResolver(t, up.addr, time.Second)
	got := make(chan *dns.Msg, 1)
	go func() {
		resp, _, err := (&dns.Client{Timeout: 3 * time.Second}).Exchange(new(dns.Msg).SetQuestion("late.example.", dns.TypeA), addr)
		if err != nil {
			t.Error(err)
		}
		got <- resp
	}()
	deadline := time.Now().Add(2 * time.Second)
	for len(clientQueries(up.queries())) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if resp := <-got; resp == nil || len(resp.Answer) != 1 {
		t.Fatalf("query in flight at shutdown got %v, want its answer", resp)
	}
}

// FuzzDirectReply feeds arbitrary upstream replies to the read loop's
// check and answer code: nothing may panic, and a reply the loop accepts
// must become an answer that unpacks, carries the client's ID and
// question, and keeps the upstream's rcode.
func FuzzDirectReply(f *testing.F) {
	query := new(dns.Msg).SetQuestion("a.example.", dns.TypeA)
	query.SetEdns0(1232, false)
	good := new(dns.Msg).SetReply(query)
	rr, _ := dns.NewRR("a.example. 300 IN A 192.0.2.1")
	cname, _ := dns.NewRR("a.example. 300 IN CNAME b.example.")
	soa, _ := dns.NewRR("example. 300 IN SOA ns.example. host.example. 1 3600 600 86400 30")
	f.Add(mustPack(f, good))
	withAnswer := good.Copy()
	withAnswer.Answer = []dns.RR{cname, rr}
	f.Add(mustPack(f, withAnswer))
	negative := good.Copy()
	negative.Rcode, negative.Ns = dns.RcodeNameError, []dns.RR{soa}
	f.Add(mustPack(f, negative))

	r, err := New(Options{Config: DefaultConfig(), Upstream: newTestForwarder(f, "127.0.0.1:9")})
	if err != nil {
		f.Fatal(err)
	}
	clientPkt := mustPack(f, query)
	var s fastScratch
	q, err := parseQuery(clientPkt, s.name[:])
	if err != nil {
		f.Fatal(err)
	}
	d := &directLoop{r: r}
	sl := &directSlot{key: cacheKey{name: "a.example.", qtype: dns.TypeA, qclass: dns.ClassINET}}
	so := &directSocket{id: query.Id}
	wire := appendDirectQuery(nil, &q, query.Id)
	sl.qlen = copy(sl.question[:], wire[headerLen:headerLen+len(q.rawQName)+4])

	f.Fuzz(func(t *testing.T, reply []byte) {
		if len(reply) >= 2 { // let most inputs get past the ID check
			reply[0], reply[1] = byte(query.Id>>8), byte(query.Id)
		}
		msg, verdict := d.check(sl, so, reply)
		if verdict != replyGood {
			return
		}
		e := r.cache.put(sl.key, msg)
		if e == nil {
			return
		}
		q, _ := parseQuery(clientPkt, s.name[:])
		out, ok := r.appendCached(s.out[:0], e, &q, netip.MustParseAddr("127.0.0.1"), r.now())
		if !ok {
			return
		}
		got := new(dns.Msg)
		if err := got.Unpack(out); err != nil {
			t.Fatalf("answer does not unpack: %v", err)
		}
		if got.Id != query.Id || len(got.Question) != 1 || got.Question[0] != query.Question[0] || got.Rcode != msg.Rcode {
			t.Fatalf("answer %v for query %v and reply rcode %d", got, query, msg.Rcode)
		}
	})
}

func mustPack(tb testing.TB, m *dns.Msg) []byte {
	tb.Helper()
	b, err := m.Pack()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
