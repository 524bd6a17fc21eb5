package metrics

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

func newTestTop(t *testing.T, window time.Duration, capacity int, now time.Time) *TopCounter {
	t.Helper()
	tc, err := NewTopCounter(window, capacity)
	if err != nil {
		t.Fatal(err)
	}
	tc.now = func() time.Time { return now }
	return tc
}

func TestTopFindsHeavyHitters(t *testing.T) {
	now := time.Date(2025, 3, 1, 10, 30, 0, 0, time.UTC)
	const capacity, heavyCount, uniques = 100, 5000, 175_000
	tc := newTestTop(t, time.Hour, capacity, now)
	heavy := []string{"tiktok.com.", "tiktokv.com.", "byteoversea.com.", "ibytedtos.com.", "musical.ly."}
	total := 0
	for i := range uniques {
		tc.add(topEvent{name: "u" + strconv.Itoa(i) + ".example.", client: netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)}), at: now})
		total++
		if i%(uniques/heavyCount) == 0 {
			for j, h := range heavy {
				if i/(uniques/heavyCount) < heavyCount {
					tc.add(topEvent{name: h, client: netip.AddrFrom4([4]byte{127, 0, 0, byte(j + 1)}), at: now, monitored: j == 0})
					total++
				}
			}
		}
	}
	res, err := tc.Top("name", 0, len(heavy))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]TopEntry{}
	for _, e := range res.Entries {
		got[e.Key] = e
	}
	bound := uint64(total / capacity) // Space-Saving's overestimate bound
	for j, h := range heavy {
		e, ok := got[h]
		if !ok {
			t.Fatalf("heavy hitter %s missing from top %d: %+v", h, len(heavy), res.Entries)
		}
		if e.Count < heavyCount || e.Count > heavyCount+bound {
			t.Errorf("%s count %d, want %d..%d", h, e.Count, heavyCount, heavyCount+bound)
		}
		if j == 0 && e.Monitored != heavyCount {
			t.Errorf("%s monitored %d, want %d", h, e.Monitored, heavyCount)
		}
	}
	clients, err := tc.Top("client", time.Minute, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(clients.Entries) != 1 || clients.Entries[0].Key[:8] != "127.0.0." {
		t.Errorf("top client: %+v, want one of 127.0.0.1-5", clients.Entries)
	}
}

func TestTopMemoryBounded(t *testing.T) {
	start := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	const capacity = 1000
	tc := newTestTop(t, time.Hour, capacity, start)
	const n = 1_000_000
	for i := range n {
		// 1M distinct names and clients spread over two hours: every slot fills and the ring wraps.
		at := start.Add(time.Duration(i) * 2 * time.Hour / n)
		tc.add(topEvent{name: "n" + strconv.Itoa(i) + ".example.", client: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), at: at})
	}
	if got, max := tc.entries(), topSlots*2*capacity; got > max {
		t.Fatalf("%d counters held, bound is %d", got, max)
	}
	tc.now = func() time.Time { return start.Add(2*time.Hour - time.Second) }
	res, err := tc.Top("name", time.Hour, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) != 1000 || res.Entries[0].Count > uint64(n/topSlots/capacity)*3 {
		t.Errorf("got %d entries, first %+v", len(res.Entries), res.Entries[0])
	}
}

func TestTopWindows(t *testing.T) {
	now := time.Date(2025, 3, 1, 10, 30, 30, 0, time.UTC)
	tc := newTestTop(t, time.Hour, 10, now)
	add := func(name string, ago time.Duration, n int) {
		for range n {
			tc.add(topEvent{name: name, client: netip.MustParseAddr("127.0.0.1"), at: now.Add(-ago)})
		}
	}
	add("now.example.", 0, 1)
	add("ten-min.example.", 10*time.Minute, 2)
	add("too-old.example.", 2*time.Hour, 5) // beyond the ring: ignored
	for _, c := range []struct {
		window time.Duration
		want   []string
	}{
		{time.Minute, []string{"now.example."}},
		{15 * time.Minute, []string{"ten-min.example.", "now.example."}},
		{time.Hour, []string{"ten-min.example.", "now.example."}},
	} {
		res, err := tc.Top("name", c.window, 10)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, e := range res.Entries {
			keys = append(keys, e.Key)
		}
		if len(keys) != len(c.want) || (len(keys) > 0 && keys[0] != c.want[0]) {
			t.Errorf("window %v: %v, want %v", c.window, keys, c.want)
		}
	}
	for _, bad := range []struct {
		by     string
		window time.Duration
		limit  int
	}{{"ip", time.Hour, 1}, {"name", 2 * time.Hour, 1}, {"name", -time.Minute, 1}, {"name", time.Hour, 0}} {
		if _, err := tc.Top(bad.by, bad.window, bad.limit); err == nil {
			t.Errorf("Top(%q, %v, %d): want an error", bad.by, bad.window, bad.limit)
		}
	}
}

func TestTopThroughChannelAndDrops(t *testing.T) {
	tc := newTestTop(t, time.Hour, 100, time.Now())
	for range topQueueLen + 10 { // not started: the queue fills, the rest drop
		tc.Observe("a.example.", netip.MustParseAddr("127.0.0.1"), false, time.Time{})
	}
	if got := tc.Dropped(); got != 10 {
		t.Errorf("Dropped = %d, want 10", got)
	}
	tc.Start(context.Background())
	defer tc.Close()
	tc.sync() // the queue is drained
	tc.Observe("B.Example.", netip.MustParseAddr("::ffff:127.0.0.2"), true, time.Time{})
	tc.sync()
	res, err := tc.Top("client", 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	want := []TopEntry{{Key: "127.0.0.1", Count: topQueueLen}, {Key: "127.0.0.2", Count: 1, Monitored: 1}}
	if len(res.Entries) != 2 || res.Entries[0] != want[0] || res.Entries[1] != want[1] {
		t.Errorf("top clients %+v, want %+v", res.Entries, want)
	}
	res, _ = tc.Top("name", 0, 5)
	if len(res.Entries) != 2 || res.Entries[1].Key != "b.example." {
		t.Errorf("names are not lower-cased: %+v", res.Entries)
	}
}

func TestTopHTTP(t *testing.T) {
	r, reg := newTestRecorder(t, Options{})
	top := r.Top()
	top.Start(context.Background())
	t.Cleanup(top.Close)
	recordSample(r, time.Time{})
	top.sync()
	_, base := startAdmin(t, reg, nil, top)

	code, body := httpGet(t, base+"/v1/stats/top?by=name&window=1h&limit=20")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	var res TopResult
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	want := []TopEntry{{Key: "www.tiktok.com.", Count: 3}, {Key: "byteoversea.com.", Count: 1, Monitored: 1}}
	if len(res.Entries) != 2 || res.Entries[0] != want[0] || res.Entries[1] != want[1] || res.By != "name" {
		t.Errorf("got %s, want entries %+v", body, want)
	}
	code, body = httpGet(t, base+"/v1/stats/top?by=client")
	if code != http.StatusOK || !json.Valid([]byte(body)) {
		t.Errorf("by=client: %d %s", code, body)
	}
	for _, q := range []string{"by=qname", "window=soon", "window=3h", "limit=0", "limit=x", "limit=5000"} {
		if code, body := httpGet(t, base+"/v1/stats/top?"+q); code != http.StatusBadRequest {
			t.Errorf("?%s: status %d (%s), want 400", q, code, body)
		}
	}
}
