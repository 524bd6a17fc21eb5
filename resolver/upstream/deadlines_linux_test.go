package upstream

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestDeadlineHeapOrders(t *testing.T) {
	var d deadlines
	base := time.Unix(1000, 0)
	for _, s := range []int{5, 1, 9, 3, 7, 2, 8, 0, 6, 4} {
		d.push(timer{at: base.Add(time.Duration(s) * time.Second), idx: int32(s)})
	}
	for want := range 10 {
		if got := d.pop(); got.idx != int32(want) {
			t.Fatalf("pop %d gave timer %d", want, got.idx)
		}
	}
}

// A loop that reads its lane late, after the deadlines, must still take the
// replies that came in time: one epoll wait hands over 64 sockets, and the
// others' replies used to be failed as timeouts and counted against the
// upstream's health.
func TestLateReadRepliesAreNotTimeouts(t *testing.T) {
	addr, _ := startUDPTCP(t, serve(zone))
	rec := &recorder{}
	f := newForwarder(t, Config{Servers: []string{"udp://" + addr}, Timeout: 500 * time.Millisecond}, Options{Observer: rec})
	lane, err := f.NewLane()
	if err != nil {
		t.Fatal(err)
	}
	defer lane.Close()

	const n = 200 // more than one epoll wait's 64 events
	var answered, failed atomic.Int32
	start := time.Now()
	for range n {
		f.StartOn(lane, Query{Name: "a.test.", Type: dns.TypeA, Class: dns.ClassINET}, start.Add(500*time.Millisecond),
			func(m *dns.Msg, err error) {
				if err == nil && m.Rcode == dns.RcodeSuccess {
					answered.Add(1)
				} else {
					failed.Add(1)
				}
			})
	}
	// The loopback server answers within milliseconds; the lane is read
	// only once every deadline has passed.
	time.Sleep(time.Until(start.Add(700 * time.Millisecond)))
	for i := 0; lane.Busy() && i < n; i++ {
		lane.Process()
	}
	if a, fl := answered.Load(), failed.Load(); a != n || fl != 0 {
		t.Fatalf("%d answered, %d failed; want all %d answered from the replies waiting in their sockets", a, fl, n)
	}
	if got := rec.upCount("udp://" + addr + " down"); got != 0 {
		t.Errorf("upstream marked down %d times for replies read late", got)
	}
}
