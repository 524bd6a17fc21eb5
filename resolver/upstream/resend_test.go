package upstream

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// dropFirst answers from zone but ignores the first copy of a query for
// lost, as a lossy path does: that reply can only come from a resend.
func dropFirst(copies *sync.Map, lost string) dns.HandlerFunc {
	return serve(func(req *dns.Msg) *dns.Msg {
		n, _ := copies.LoadOrStore(req.Question[0].Name, new(atomic.Int32))
		if n.(*atomic.Int32).Add(1) == 1 && req.Question[0].Name == lost {
			return nil
		}
		return zone(req)
	})
}

func copiesOf(copies *sync.Map, name string) int32 {
	n, ok := copies.Load(name)
	if !ok {
		return 0
	}
	return n.(*atomic.Int32).Load()
}

// A lost query is sent again within the timeout instead of failing the
// exchange; the reply to the resend counts as a success, not as a sample
// of the upstream's round-trip time.
func TestLostQueryIsSentAgain(t *testing.T) {
	var copies sync.Map
	addr, _ := startUDPTCP(t, dropFirst(&copies, "a.test."))
	rec := &recorder{}
	f := newForwarder(t, Config{Servers: []string{"udp://" + addr}}, Options{Observer: rec})
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	if _, err := f.Exchange(ctx, query("aaaa.test.", dns.TypeAAAA)); err != nil {
		t.Fatal(err) // a round-trip time to compare with
	}
	rtt := f.ups[0].rank().rtt

	m, err := f.Exchange(ctx, query("a.test.", dns.TypeA))
	if err != nil || m.Rcode != dns.RcodeSuccess || len(m.Answer) == 0 {
		t.Fatalf("exchange through a lost first query: %v, %v; want the answer to the resend", m, err)
	}
	if got := copiesOf(&copies, "a.test."); got != 2 {
		t.Fatalf("the upstream saw %d copies; want 2 (the lost one and one resend)", got)
	}
	if got := rec.count(func(r *recorder) []string { return r.resends }, "udp://"+addr); got < 1 {
		t.Fatalf("%d resends reported; want at least 1", got)
	}
	if got := len(rec.results); got != 2 || rec.resultCount("udp://"+addr+" success") != 2 {
		t.Fatalf("results %v; want two successes (the warm-up and the resent query)", rec.results)
	}
	if got := f.ups[0].rank().rtt; got != rtt {
		t.Fatalf("round-trip time moved from %v to %v on a resent query's reply", rtt, got)
	}
}

// An upstream that never answers gets a bounded number of copies (the
// waits double), and the attempt still ends once, as a timeout.
func TestSilentUpstreamGetsBoundedResends(t *testing.T) {
	var copies sync.Map
	addr, _ := startUDPTCP(t, serve(func(req *dns.Msg) *dns.Msg {
		n, _ := copies.LoadOrStore(req.Question[0].Name, new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		return nil
	}))
	rec := &recorder{}
	f := newForwarder(t, Config{Servers: []string{"udp://" + addr}, Timeout: time.Second}, Options{Observer: rec})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := f.Exchange(ctx, query("a.test.", dns.TypeA)); err == nil {
		t.Fatal("a silent upstream answered")
	}
	// Sent at 0, then after 250 ms and 500 ms more; the next wait would
	// pass the 1 s deadline.
	if got := copiesOf(&copies, "a.test."); got != 3 {
		t.Fatalf("the upstream saw %d copies within a 1s timeout; want 3", got)
	}
	if got := rec.resultCount("udp://" + addr + " timeout"); got != 1 {
		t.Fatalf("%d timeouts recorded; want 1: %v", got, rec.results)
	}
}

// A timeout shorter than two resend waits sends nothing again.
func TestShortTimeoutSendsOnce(t *testing.T) {
	var copies sync.Map
	addr, _ := startUDPTCP(t, dropFirst(&copies, "a.test."))
	f := newForwarder(t, Config{Servers: []string{"udp://" + addr}, Timeout: 200 * time.Millisecond}, Options{})
	if _, err := f.Exchange(context.Background(), query("a.test.", dns.TypeA)); err == nil {
		t.Fatal("answered; want a timeout, with no time for a resend")
	}
	if got := copiesOf(&copies, "a.test."); got != 1 {
		t.Fatalf("the upstream saw %d copies; want 1", got)
	}
}
