package metrics

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	dnstap "github.com/dnstap/golang-dnstap"
	"github.com/miekg/dns"
	"google.golang.org/protobuf/proto"
)

// tapReader is a dnstap reader on a unix socket, built from
// golang-dnstap's bidirectional Frame Streams reader: what a collector
// such as `dnstap -u` does, minus the printing.
type tapReader struct {
	l       net.Listener
	frames  chan *dnstap.Dnstap
	stopped chan struct{} // gets one value per session the writer ended with STOP

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

// startTapReader listens on the unix socket path.
func startTapReader(t *testing.T, path string) *tapReader {
	t.Helper()
	_ = os.Remove(path)
	return startTapReaderOn(t, "unix", path)
}

func startTapReaderOn(t *testing.T, network, addr string) *tapReader {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &tapReader{l: l, frames: make(chan *dnstap.Dnstap, 1000), stopped: make(chan struct{}, 10)}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.stop)
	return r
}

func (r *tapReader) accept() {
	defer r.wg.Done()
	for {
		c, err := r.l.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.conns = append(r.conns, c)
		r.mu.Unlock()
		r.wg.Add(1)
		go r.read(c)
	}
}

// writeCounter counts the reader's writes: ACCEPT in the handshake, then
// FINISH only in answer to the writer's STOP.
type writeCounter struct {
	net.Conn
	writes int
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.writes++
	return w.Conn.Write(p)
}

func (r *tapReader) read(conn net.Conn) {
	defer r.wg.Done()
	defer conn.Close()
	c := &writeCounter{Conn: conn}
	fr, err := dnstap.NewReader(c, &dnstap.ReaderOptions{Bidirectional: true, Timeout: 5 * time.Second})
	if err != nil {
		return
	}
	buf := make([]byte, 1<<16)
	for {
		n, err := fr.ReadFrame(buf)
		if err != nil {
			if errors.Is(err, io.EOF) && c.writes == 2 { // FINISH sent: the writer ended cleanly
				r.stopped <- struct{}{}
			}
			return
		}
		m := new(dnstap.Dnstap)
		if err := proto.Unmarshal(buf[:n], m); err != nil {
			return
		}
		r.frames <- m
	}
}

// stop closes the listener and every session, and waits for the readers.
func (r *tapReader) stop() {
	r.l.Close()
	r.mu.Lock()
	for _, c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// next returns the next frame, failing after a few seconds.
func (r *tapReader) next(t *testing.T) *dnstap.Dnstap {
	t.Helper()
	select {
	case m := <-r.frames:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no dnstap frame within 5s")
		return nil
	}
}

func tapSocket(t *testing.T) string {
	return filepath.Join(t.TempDir(), "tap.sock")
}

// wireQuery returns a packed query and a packed answer for name.
func wireQuery(t testing.TB, name string) (q, r []byte) {
	t.Helper()
	req := new(dns.Msg).SetQuestion(name, dns.TypeA)
	resp := new(dns.Msg).SetReply(req)
	resp.Answer = append(resp.Answer, &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
		A: net.IPv4(192, 0, 2, 1)})
	var err error
	if q, err = req.Pack(); err != nil {
		t.Fatal(err)
	}
	if r, err = resp.Pack(); err != nil {
		t.Fatal(err)
	}
	return q, r
}
