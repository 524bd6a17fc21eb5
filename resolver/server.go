package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/miekg/dns"
)

// Start binds UDP and TCP on every listen address and serves in the
// background. A bind failure closes what was opened and is returned.
func (r *Resolver) Start() error {
	for _, addr := range r.cfg.Listen {
		conns, l, err := listenPair(addr, r.udpReaders)
		if err != nil {
			r.closeAll()
			return err
		}
		r.udp = append(r.udp, conns...)
		r.servers = append(r.servers, &dns.Server{Listener: l, Handler: r,
			ReadTimeout: 5 * time.Second, IdleTimeout: func() time.Duration { return 10 * time.Second },
			MaxTCPQueries: 1000})
	}
	for _, c := range r.udp {
		r.readers.Add(1)
		go r.serveUDP(c)
	}
	for _, s := range r.servers {
		go func() {
			if err := s.ActivateAndServe(); err != nil && !errors.Is(err, net.ErrClosed) {
				r.log.Error("dns listener stopped", "err", err)
			}
		}()
	}
	r.started.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	r.stopProbe = cancel
	go r.probeUntilReady(ctx)
	return nil
}

// listenPair binds n UDP sockets and one TCP listener on the same
// address. With port 0 the TCP port must match the one UDP got, which
// another process may hold: then it tries a few fresh ports.
func listenPair(addr string, n int) ([]udpSocket, net.Listener, error) {
	_, port, _ := net.SplitHostPort(addr)
	for attempt := 0; ; attempt++ {
		conns, err := listenUDP(addr, n)
		if err != nil {
			return nil, nil, fmt.Errorf("listen udp %s: %w", addr, err)
		}
		l, err := net.Listen("tcp", conns[0].LocalAddr().String())
		if err == nil {
			return conns, l, nil
		}
		for _, c := range conns {
			c.release()
		}
		if port != "0" || attempt == 10 {
			return nil, nil, fmt.Errorf("listen tcp %s: %w", addr, err)
		}
	}
}

// Addrs returns the bound addresses (UDP and TCP share each port), one
// per listen entry, in order.
func (r *Resolver) Addrs() []net.Addr {
	var out []net.Addr
	for _, s := range r.servers {
		out = append(out, s.Listener.Addr())
	}
	return out
}

// Shutdown stops accepting queries and waits for in-flight ones to be
// answered, or for ctx to end.
func (r *Resolver) Shutdown(ctx context.Context) error {
	r.started.Store(false)
	if r.stopProbe != nil {
		r.stopProbe()
	}
	for _, c := range r.udp {
		c.Close()
	}
	r.readers.Wait() // no new UDP work after this
	r.workers.stop()
	for _, s := range r.servers {
		_ = s.ShutdownContext(ctx) // fails only for a server that never started
	}
	done := make(chan struct{})
	go func() { r.inflight.Wait(); close(done) }()
	select {
	case <-done:
		for _, c := range r.udp {
			c.release()
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("shutdown: queries still in flight: %w", ctx.Err())
	}
}

func (r *Resolver) closeAll() {
	for _, c := range r.udp {
		c.release()
	}
	for _, s := range r.servers {
		s.Listener.Close()
	}
	r.udp, r.servers = nil, nil
}
