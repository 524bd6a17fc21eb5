package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
)

// listeners are the resolver's open sockets.
type listeners struct {
	started atomic.Bool
	udp     []*udpSocket
	streams []*streamListener
	enc     encryptedListeners
	readers sync.WaitGroup // UDP read loops
}

// Start binds UDP and TCP on every listen address and serves in the
// background. A bind failure closes what was opened and is returned.
func (r *Resolver) Start() error {
	if err := r.startEncrypted(); err != nil {
		return r.startFailed(err)
	}
	for _, addr := range r.cfg.Listen {
		ap, err := parseListen(addr)
		if err != nil {
			return r.startFailed(fmt.Errorf("listen %s: %w", addr, err))
		}
		v6only := needsV6Only(ap, r.cfg.Listen)
		u, l, err := listenPair(ap, v6only, r.cfg.UDP.ReceiveBufferMB<<20, r.udpReaders)
		if err != nil {
			return r.startFailed(fmt.Errorf("listen %s: %w", addr, explainBindError(err, ap)))
		}
		r.checkReceiveBuffer(addr, u)
		r.listeners.udp = append(r.listeners.udp, u)
		if r.listeners.enc.proxy.Any() { // balancers in front: PROXY protocol on TCP too
			l = r.guard(l, TransportTCP, nil)
		}
		r.listeners.streams = append(r.listeners.streams, r.newStreamListener(l, TransportTCP))
	}
	socks := append([]*udpSocket(nil), r.listeners.udp...)
	r.rec.SetUDPDropsFunc(func() (n uint64) {
		for _, u := range socks {
			n += u.drops()
		}
		return n
	})
	for _, u := range r.listeners.udp { // a leader and its helpers per socket
		h := newUDPHelpers(r.udpReaders - 1)
		r.listeners.readers.Add(1 + h.n)
		go r.serveUDP(u, h)
		for range h.n {
			go r.helpUDP(u, h)
		}
	}
	for _, l := range r.listeners.streams {
		go l.serve()
	}
	r.listeners.started.Store(true)
	go r.probeUntilReady(r.probeContext())
	return nil
}

// parseListen reads "IP:port"; ":port" means every address, as with Go's net.
func parseListen(addr string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "" {
		return netip.AddrPort{}, fmt.Errorf("%q is not IP:port", addr)
	}
	return netip.ParseAddrPort("[::]:" + port)
}

// needsV6Only reports whether ap is [::]:P while 0.0.0.0:P is listed too:
// then the [::] sockets take IPv6 only, as Unbound and BIND users expect,
// instead of failing to bind a port the IPv4 wildcard holds.
func needsV6Only(ap netip.AddrPort, listen []string) bool {
	if !ap.Addr().Is6() || !ap.Addr().IsUnspecified() || ap.Port() == 0 {
		return false
	}
	for _, other := range listen {
		o, err := netip.ParseAddrPort(other)
		if err == nil && o.Port() == ap.Port() && o.Addr().Is4() && o.Addr().IsUnspecified() {
			return true
		}
	}
	return false
}

// explainBindError says what a busy port most likely means.
func explainBindError(err error, ap netip.AddrPort) error {
	if !errors.Is(err, syscall.EADDRINUSE) {
		return err
	}
	return fmt.Errorf("%w (another process holds %s — another DNS server, or systemd-resolved on port 53?)", err, ap)
}

// listenPair binds a UDP socket and a TCP listener on the same address.
// With port 0 the TCP port must match the one UDP got, which another
// process may hold: then it tries a few fresh ports.
func listenPair(ap netip.AddrPort, v6only bool, rcvbuf, loops int) (*udpSocket, net.Listener, error) {
	for attempt := 0; ; attempt++ {
		u, err := listenUDPSocket(ap, v6only, rcvbuf, loops)
		if err != nil {
			return nil, nil, fmt.Errorf("udp: %w", err)
		}
		l, err := listenTCP(u.local, v6only)
		if err == nil {
			return u, l, nil
		}
		u.release()
		if ap.Port() != 0 || attempt == 10 {
			return nil, nil, fmt.Errorf("tcp: %w", err)
		}
	}
}

// listenTCP opens the stream listener for ap, IPv6-only when v6only.
func listenTCP(ap netip.AddrPort, v6only bool) (net.Listener, error) {
	lc := net.ListenConfig{}
	network := "tcp4"
	if ap.Addr().Is6() {
		network = "tcp6"
		if !v6only && ap.Addr().IsUnspecified() {
			network = "tcp" // [::] serves IPv4 too
		}
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) { serr = setV6Only(fd, v6only) }); err != nil {
				return err
			}
			return serr
		}
	}
	return lc.Listen(context.Background(), network, ap.String())
}

// Addrs returns the bound addresses (UDP and TCP share each port), one
// per listen entry, in order.
func (r *Resolver) Addrs() []net.Addr {
	var out []net.Addr
	for _, l := range r.listeners.streams {
		if l.transport == TransportTCP {
			out = append(out, l.l.Addr())
		}
	}
	return out
}

// checkReceiveBuffer says at start-up when the kernel gave a UDP socket a
// smaller receive buffer than udp.receive_buffer_mb asks for: without
// CAP_NET_ADMIN it grants at most net.core.rmem_max.
func (r *Resolver) checkReceiveBuffer(addr string, u *udpSocket) {
	want := r.cfg.UDP.ReceiveBufferMB << 20
	if got := u.receiveBuffer(); want > 0 && got >= 0 && got < want {
		r.log.Warn("udp.receive_buffer_mb: the kernel granted a smaller receive buffer; a burst past it is dropped "+
			"(dnsward_udp_receive_drops_total). Raise net.core.rmem_max (sysctl) or grant CAP_NET_ADMIN",
			"listen", addr, "asked_bytes", want, "granted_bytes", got)
	}
}

func (r *Resolver) startFailed(err error) error {
	r.listeners.enc.stop(context.Background())
	for _, u := range r.listeners.udp {
		u.release()
	}
	for _, l := range r.listeners.streams {
		l.l.Close()
	}
	r.listeners.udp, r.listeners.streams = nil, nil
	return err
}

// Shutdown stops accepting queries and waits for in-flight ones to be
// answered, or for ctx to end.
func (r *Resolver) Shutdown(ctx context.Context) error {
	r.listeners.started.Store(false)
	r.stopProbe()
	for _, u := range r.listeners.udp {
		u.Close()
	}
	for _, l := range r.listeners.streams {
		l.close()
	}
	r.listeners.enc.stop(ctx)
	r.listeners.readers.Wait() // no new UDP work after this
	done := make(chan struct{})
	go func() {
		r.inflight.Wait()
		for _, l := range r.listeners.streams {
			l.wait()
		}
		close(done)
	}()
	select {
	case <-done:
		for _, u := range r.listeners.udp {
			u.release()
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("shutdown: queries still in flight: %w", ctx.Err())
	}
}
