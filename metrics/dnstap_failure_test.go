package metrics

import (
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	dnstap "github.com/dnstap/golang-dnstap"
	"github.com/miekg/dns"
)

// tapEvent is an answered query from 127.0.0.9 carrying wire messages.
func tapEvent(t testing.TB, name string) *QueryEvent {
	q, r := wireQuery(t, name)
	return &QueryEvent{Time: time.Now(), Client: netip.MustParseAddr("127.0.0.9"), Proto: "udp", QName: name,
		QType: dns.TypeA, Outcome: OutcomeForwarded, QueryWire: q, ResponseWire: r}
}

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// sendUntilDelivered records an event for name every 10ms until the
// reader gets a message, and returns that message.
func sendUntilDelivered(t *testing.T, rec *Recorder, reader *tapReader, name string) *dnstap.Dnstap {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		rec.Query(tapEvent(t, name))
		select {
		case m := <-reader.frames:
			return m
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("no message for %s reached the reader within 5s", name)
	return nil
}

// TestDnstapDropsWhenBufferFull: a reader that accepts the connection but
// never answers the handshake stalls the writer; queries go on, the
// overflow is counted, and Close does not wait out the I/O timeout.
func TestDnstapDropsWhenBufferFull(t *testing.T) {
	path := tapSocket(t)
	l, err := net.Listen("unix", path) // never accepts: connects queue in the backlog
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d, err := NewDnstap(DnstapConfig{Socket: path, BufferSize: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, reg := newTestRecorder(t, Options{Dnstap: d})
	for range 100 {
		rec.Query(tapEvent(t, "full.example."))
	}
	// The writer is stuck in the handshake, so exactly 4 queries wait.
	if got := d.Dropped(); got != 2*96 {
		t.Errorf("Dropped = %d, want %d (two messages for each of 96 queries)", got, 2*96)
	}
	start := time.Now()
	d.Close()
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Close took %v with a stalled reader", took)
	}
	if got := dnstapDroppedMetric(t, reg); got != 200 {
		t.Errorf("dnsward_dnstap_dropped_total = %v after Close, want 200", got)
	}
	rec.Query(tapEvent(t, "late.example.")) // after Close: counted, no panic
	if got := d.Dropped(); got != 202 {
		t.Errorf("Dropped = %d after a query past Close, want 202", got)
	}
	d.Close() // twice is fine
}

func TestDnstapReaderAbsentAtStart(t *testing.T) {
	path := tapSocket(t)
	var logs lockedBuffer
	d, err := newDnstap(DnstapConfig{Socket: path}, slog.New(slog.NewTextHandler(&logs, nil)), 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rec, _ := newTestRecorder(t, Options{Dnstap: d})
	for range 10 {
		rec.Query(tapEvent(t, "early.example."))
	}
	waitFor(t, "20 dropped messages", func() bool { return d.Dropped() == 20 })
	time.Sleep(50 * time.Millisecond) // a few retry intervals
	rec.Query(tapEvent(t, "early.example."))
	waitFor(t, "22 dropped messages", func() bool { return d.Dropped() == 22 })
	if n := strings.Count(logs.String(), "reader unreachable"); n != 1 {
		t.Errorf("unreachable reader logged %d times, want once:\n%s", n, logs.String())
	}

	reader := startTapReader(t, path)
	checkTap(t, sendUntilDelivered(t, rec, reader, "later.example."), dnstap.Message_CLIENT_QUERY, "later.example.")
	checkTap(t, reader.next(t), dnstap.Message_CLIENT_RESPONSE, "later.example.")
	if !strings.Contains(logs.String(), "connected to reader") {
		t.Errorf("connection not logged:\n%s", logs.String())
	}
}

func TestDnstapCloseWhileReaderAbsent(t *testing.T) {
	d, err := NewDnstap(DnstapConfig{Socket: tapSocket(t)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := newTestRecorder(t, Options{Dnstap: d})
	for range 50 {
		rec.Query(tapEvent(t, "nobody.example."))
	}
	start := time.Now()
	d.Close()
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %v with no reader", took)
	}
	if got := d.Dropped(); got != 100 {
		t.Errorf("Dropped = %d, want 100", got)
	}
}

func TestDnstapReconnectsAfterReaderRestart(t *testing.T) {
	path := tapSocket(t)
	first := startTapReader(t, path)
	d, err := newDnstap(DnstapConfig{Socket: path}, nil, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rec, _ := newTestRecorder(t, Options{Dnstap: d})
	rec.Query(tapEvent(t, "before.example."))
	checkTap(t, first.next(t), dnstap.Message_CLIENT_QUERY, "before.example.")
	checkTap(t, first.next(t), dnstap.Message_CLIENT_RESPONSE, "before.example.")

	first.stop() // the collector restarts
	second := startTapReader(t, path)
	checkTap(t, sendUntilDelivered(t, rec, second, "after.example."), dnstap.Message_CLIENT_QUERY, "after.example.")
}

func TestDnstapOverTCP(t *testing.T) {
	reader := startTapReaderOn(t, "tcp", "127.0.0.1:0")
	d, err := NewDnstap(DnstapConfig{TCP: reader.l.Addr().String()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rec, _ := newTestRecorder(t, Options{Dnstap: d})
	rec.Query(tapEvent(t, "tcp.example."))
	checkTap(t, reader.next(t), dnstap.Message_CLIENT_QUERY, "tcp.example.")
	checkTap(t, reader.next(t), dnstap.Message_CLIENT_RESPONSE, "tcp.example.")
}
