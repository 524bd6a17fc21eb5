//go:build !linux

package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/miekg/dns"
)

// udpPoller on systems other than Linux runs each UDP attempt on a
// goroutine of its own through Go's net package: slower per query, but
// the same behaviour, so dnsward builds and its tests run on a developer's
// macOS or FreeBSD machine. Linux uses the epoll poller.
type udpPoller struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func newUDPPoller() (*udpPoller, error) {
	ctx, cancel := context.WithCancel(context.Background())
	return &udpPoller{ctx: ctx, cancel: cancel}, nil
}

func (p *udpPoller) close() error { p.cancel(); return nil }

func (p *udpPoller) send(a *attempt, t *udpTransport) {
	ctx, cancel := context.WithDeadline(p.ctx, a.deadline)
	a.onCancel(cancel)
	go func() {
		defer cancel()
		buf, id, err := exchangeUDP(ctx, a, t)
		switch {
		case p.ctx.Err() != nil:
			a.finish(nil, ErrClosed, false)
		case errors.Is(ctx.Err(), context.Canceled):
			a.finish(nil, nil, true) // stopped by the exchange
		case err != nil:
			a.finish(nil, err, false)
		default:
			t.replied(a, buf, id)
		}
	}()
}

func exchangeUDP(ctx context.Context, a *attempt, t *udpTransport) ([]byte, uint16, error) {
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(t.addr))
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	every := a.up.resendAfter(a.ex.f.timeout)
	_ = conn.SetDeadline(minTime(time.Now().Add(every), a.deadline))
	wire, id := withID(a.ex.wire)
	if _, err := conn.Write(wire); err != nil {
		return nil, 0, err
	}
	buf := make([]byte, udpReadSize)
	var rejected error
	for {
		n, err := conn.Read(buf)
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil && time.Now().Before(a.deadline) {
			// Not answered yet: the same query again (see udpPoller.resendLocked on Linux).
			if _, err := conn.Write(wire); err != nil {
				return nil, 0, err
			}
			a.resent.Store(true)
			a.ex.f.obs.UpstreamResend(a.up.name)
			every *= 2
			_ = conn.SetDeadline(minTime(time.Now().Add(every), a.deadline))
			continue
		}
		if err != nil {
			if rejected != nil && errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, 0, rejected
			}
			return nil, 0, err
		}
		if matchesQuery(buf[:n], a.ex.wire, id, a.ex.qlen) {
			return buf[:n], id, nil
		}
		rejected = fmt.Errorf("%w: only replies to other queries arrived (wrong ID or question)", errBadResponse)
	}
}

// Lane exists on Linux only; elsewhere NewLane fails and callers use Start.
type Lane struct{}

var errNoLanes = errors.New("upstream: lanes need Linux")

func (f *Forwarder) NewLane() (*Lane, error) { return nil, errNoLanes }
func (l *Lane) Fd() int                      { return -1 }
func (l *Lane) Busy() bool                   { return false }
func (l *Lane) Wait() int                    { return -1 }
func (l *Lane) Process()                     {}
func (l *Lane) Close() error                 { return nil }

// StartOn is Start: there are no lanes here.
func (f *Forwarder) StartOn(_ *Lane, q Query, deadline time.Time, done func(*dns.Msg, error)) {
	f.Start(q, deadline, done)
}
