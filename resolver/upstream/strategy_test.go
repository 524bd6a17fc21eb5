package upstream

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/internal/dnstest"
)

// fixedRcode answers every query with rcode and no records.
func fixedRcode(rcode int) func(*dns.Msg) *dns.Msg {
	return func(req *dns.Msg) *dns.Msg { return new(dns.Msg).SetRcode(req, rcode) }
}

func exchangeA(t *testing.T, f *Forwarder) *dns.Msg {
	t.Helper()
	r, err := f.Exchange(context.Background(), query("a.test.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("rcode %s, %d answers; want NOERROR with one A", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	return r
}

func TestFailoverSkipsClosedPort(t *testing.T) {
	good, _ := startUDPTCP(t, serve(zone))
	for _, dead := range []string{"udp://" + dnstest.ClosedPort(t, "udp"), "tcp://" + dnstest.ClosedPort(t, "tcp")} {
		t.Run(dead, func(t *testing.T) {
			rec := &recorder{}
			f := newForwarder(t, Config{Servers: []string{dead, good}, Strategy: StrategyFailover, Timeout: 5 * time.Second},
				Options{Observer: rec})
			start := time.Now()
			exchangeA(t, f)
			if elapsed := time.Since(start); elapsed > 2500*time.Millisecond {
				t.Errorf("failover past a closed port took %v; a refused connection should fail fast", elapsed)
			}
			if rec.resultCount(dead+" error") != 1 || rec.resultCount(good+" success") != 1 {
				t.Errorf("observer saw %v", rec.results)
			}
		})
	}
}

func TestFailoverPastServerThatNeverAnswers(t *testing.T) {
	silent := dnstest.Blackhole(t)
	good, _ := startUDPTCP(t, serve(zone))
	rec := &recorder{}
	f := newForwarder(t, Config{Servers: []string{silent, good}, Strategy: StrategyFailover, Timeout: 200 * time.Millisecond},
		Options{Observer: rec})
	start := time.Now()
	exchangeA(t, f)
	if elapsed := time.Since(start); elapsed < 200*time.Millisecond {
		t.Errorf("took %v, want one 200ms timeout then an answer", elapsed)
	}
	if rec.resultCount(silent+" timeout") != 1 {
		t.Errorf("observer saw %v", rec.results)
	}
}

func TestAllUpstreamsDownErrorsWithinTimeout(t *testing.T) {
	servers := []string{dnstest.Blackhole(t), dnstest.Blackhole(t), dnstest.Blackhole(t)}
	f := newForwarder(t, Config{Servers: servers, Timeout: 500 * time.Millisecond}, Options{})
	start := time.Now()
	_, err := f.Exchange(context.Background(), query("a.test.", dns.TypeA))
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("want an error when every upstream is silent")
	}
	if elapsed > 1200*time.Millisecond { // asking the three in turn would take 1.5s
		t.Errorf("parallel_best gave up after %v, want about the 500ms timeout", elapsed)
	}
}

func TestFailoverTotalCappedByContextDeadline(t *testing.T) {
	servers := []string{dnstest.Blackhole(t), dnstest.Blackhole(t), dnstest.Blackhole(t)}
	f := newForwarder(t, Config{Servers: servers, Strategy: StrategyFailover, Timeout: 500 * time.Millisecond}, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := f.Exchange(ctx, query("a.test.", dns.TypeA))
	elapsed := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want it to wrap context.DeadlineExceeded", err)
	}
	if elapsed > 1200*time.Millisecond {
		t.Errorf("took %v; the 400ms context deadline should cap 3 x 500ms", elapsed)
	}
}

func TestRoundRobinSpreadsQueries(t *testing.T) {
	var counts [3]counter
	var servers []string
	for i := range counts {
		addr, _ := startUDPTCP(t, counts[i].wrap(serve(zone)))
		servers = append(servers, addr)
	}
	f := newForwarder(t, Config{Servers: servers, Strategy: StrategyRoundRobin}, Options{})
	for i := 0; i < 30; i++ {
		exchangeA(t, f)
	}
	for i := range counts {
		if n := counts[i].udp.Load(); n != 10 {
			t.Errorf("upstream %d got %d of 30 queries, want 10", i, n)
		}
	}
}

func TestParallelBestReturnsTheFastAnswer(t *testing.T) {
	var slowSeen atomic.Int64
	slow, _ := startUDPTCP(t, serve(func(req *dns.Msg) *dns.Msg {
		slowSeen.Add(1)
		time.Sleep(time.Second)
		m := new(dns.Msg).SetReply(req)
		rr, _ := dns.NewRR("a.test. 300 IN A 198.51.100.1")
		m.Answer = []dns.RR{rr}
		return m
	}))
	fast, _ := startUDPTCP(t, serve(func(req *dns.Msg) *dns.Msg {
		time.Sleep(20 * time.Millisecond) // lets both sends leave even on a loaded machine
		return zone(req)
	}))
	rec := &recorder{}
	f := newForwarder(t, Config{Servers: []string{slow, fast}, Timeout: 5 * time.Second}, Options{Observer: rec})
	for i := 0; i < 3; i++ {
		start := time.Now()
		r := exchangeA(t, f)
		if elapsed := time.Since(start); elapsed > 600*time.Millisecond {
			t.Errorf("took %v; the fast upstream answers at once", elapsed)
		}
		if !strings.Contains(r.Answer[0].String(), "192.0.2.1") {
			t.Errorf("answer %v came from the slow upstream", r.Answer[0])
		}
	}
	waitFor(t, func() bool { return slowSeen.Load() > 0 }, "parallel_best to ask the slow upstream too")
	if n := rec.resultCount(slow + " timeout"); n != 0 {
		t.Errorf("cancelled attempts were reported as %d timeouts", n)
	}
}

func TestServfailFallsOverAndIsReturnedWhenEveryoneFails(t *testing.T) {
	sf1, _ := startUDPTCP(t, serve(fixedRcode(dns.RcodeServerFailure)))
	sf2, _ := startUDPTCP(t, serve(fixedRcode(dns.RcodeRefused)))
	good, _ := startUDPTCP(t, serve(zone))

	f := newForwarder(t, Config{Servers: []string{sf1, sf2, good}, Strategy: StrategyFailover}, Options{})
	exchangeA(t, f)

	f = newForwarder(t, Config{Servers: []string{sf1, sf2}, Strategy: StrategyFailover}, Options{})
	q := query("a.test.", dns.TypeA)
	q.Id = 777
	r, err := f.Exchange(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeServerFailure || r.Id != 777 {
		t.Errorf("rcode %s id %d, want the upstream's SERVFAIL with id 777", dns.RcodeToString[r.Rcode], r.Id)
	}
}

func TestFormerrAndNotimpAreBadResponses(t *testing.T) {
	formerr, _ := startUDPTCP(t, serve(fixedRcode(dns.RcodeFormatError)))
	notimp, _ := startUDPTCP(t, serve(fixedRcode(dns.RcodeNotImplemented)))
	good, _ := startUDPTCP(t, serve(zone))
	rec := &recorder{}
	f := newForwarder(t, Config{Servers: []string{formerr, notimp, good}, Strategy: StrategyFailover}, Options{Observer: rec})
	exchangeA(t, f)
	if rec.resultCount(formerr+" bad_response") != 1 || rec.resultCount(notimp+" bad_response") != 1 {
		t.Errorf("observer saw %v", rec.results)
	}

	f = newForwarder(t, Config{Servers: []string{formerr}}, Options{})
	if _, err := f.Exchange(context.Background(), query("a.test.", dns.TypeA)); !errors.Is(err, errBadResponse) {
		t.Errorf("err = %v, want a bad response error rather than the FORMERR answer", err)
	}
}

func TestDownUpstreamIsSkippedThenProbedBackUp(t *testing.T) {
	var refusing atomic.Bool
	refusing.Store(true)
	var clientQueries, probes atomic.Int64
	flakyAddr, _ := startUDPTCP(t, serve(func(req *dns.Msg) *dns.Msg {
		if req.Question[0].Name == "." {
			probes.Add(1)
		} else {
			clientQueries.Add(1)
		}
		if refusing.Load() {
			return fixedRcode(dns.RcodeRefused)(req)
		}
		return zone(req)
	}))
	backupAddr, _ := startUDPTCP(t, serve(zone))
	rec := &recorder{}
	f := newForwarder(t, Config{Servers: []string{flakyAddr, backupAddr}, Strategy: StrategyFailover}, Options{Observer: rec})
	f.probeInterval = 50 * time.Millisecond

	for i := 0; i < downAfter; i++ {
		exchangeA(t, f)
	}
	if rec.upCount(flakyAddr+" down") != 1 {
		t.Fatalf("after %d failures: transitions %v, want %s down", downAfter, rec.ups, flakyAddr)
	}
	for range 3 {
		exchangeA(t, f) // the down upstream is not asked: no client waits on it
	}
	if n := clientQueries.Load(); n != downAfter {
		t.Errorf("down upstream got %d client queries, want %d", n, downAfter)
	}
	waitFor(t, func() bool { return probes.Load() >= 1 }, "a probe of the down upstream")

	refusing.Store(false) // recovery needs no client traffic: the probe finds it
	waitFor(t, func() bool { return rec.upCount(flakyAddr+" up") == 2 }, "the probe to bring it back up")
	flakyOK, backupOK := rec.resultCount(flakyAddr+" success"), rec.resultCount(backupAddr+" success")
	exchangeA(t, f)
	if rec.resultCount(flakyAddr+" success") != flakyOK+1 || rec.resultCount(backupAddr+" success") != backupOK {
		t.Errorf("after recovery the first upstream should answer again; observer saw %v", rec.results)
	}
	probesThen := probes.Load()
	time.Sleep(3 * f.probeInterval)
	if n := probes.Load(); n != probesThen {
		t.Errorf("%d probes after recovery, want none", n-probesThen)
	}
}

func TestReadyOnlyAfterAnAnswer(t *testing.T) {
	silent := dnstest.Blackhole(t)
	f := newForwarder(t, Config{Servers: []string{silent}, Timeout: 100 * time.Millisecond}, Options{})
	if f.Ready() {
		t.Fatal("ready before any answer")
	}
	if _, err := f.Exchange(context.Background(), query("a.test.", dns.TypeA)); err == nil {
		t.Fatal("want a timeout error")
	}
	if f.Ready() {
		t.Fatal("ready after a timeout")
	}
	good, _ := startUDPTCP(t, serve(zone))
	f = newForwarder(t, Config{Servers: []string{good}}, Options{})
	exchangeA(t, f)
	if !f.Ready() {
		t.Fatal("not ready after an answer")
	}
	if names := f.Names(); len(names) != 1 || names[0] != good {
		t.Errorf("Names() = %v, want [%s]", names, good)
	}
}

func TestExchangeHonoursCancellation(t *testing.T) {
	f := newForwarder(t, Config{Servers: []string{dnstest.Blackhole(t), dnstest.Blackhole(t)}, Timeout: 5 * time.Second}, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := f.Exchange(ctx, query("a.test.", dns.TypeA))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if elapsed := time.Since(start); elapsed > 2500*time.Millisecond { // well under the 5s timeout
		t.Errorf("returned %v after cancel, want at once", elapsed)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}
