package resolver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
)

// The encrypted listeners hand their queries to the same pipeline as UDP
// and TCP: DNS over TLS is the stream listener on a TLS connection; DoH
// and DoQ requests call Handle. Every TCP-based one sits on a
// GuardListener, which applies the PROXY protocol from trusted balancers
// and bounds handshakes and connections.

type encryptedListeners struct {
	certs  *CertStore
	proxy  *ProxyPolicy
	cancel context.CancelFunc
	https  []*http.Server
	quic   []net.PacketConn
	addrs  map[Transport][]net.Addr
	serves sync.WaitGroup
}

// startEncrypted loads the certificate and opens listen_tls, listen_https
// and listen_quic. It also compiles proxy_protocol, which the plain TCP
// listeners use too.
func (r *Resolver) startEncrypted() error {
	c := r.cfg.Encrypted
	e := &r.listeners.enc
	var err error
	if e.proxy, err = NewProxyPolicy(c.ProxyProtocol); err != nil {
		return err
	}
	e.addrs = map[Transport][]net.Addr{}
	if !c.Enabled() {
		return nil
	}
	if e.certs, err = NewCertStore(c.TLS, r.log); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go e.certs.Run(ctx, 0)
	r.rec.SetCertificateNotAfter(e.certs.NotAfter)
	for _, addr := range c.ListenTLS {
		l, err := r.guarded(addr, c.ListenTLS, TransportTLS, e.certs.ServerTLSConfig("dot"))
		if err != nil {
			return err
		}
		r.listeners.streams = append(r.listeners.streams, r.newStreamListener(l, TransportTLS))
	}
	for _, addr := range c.ListenHTTPS {
		l, err := r.guarded(addr, c.ListenHTTPS, TransportHTTPS, e.certs.ServerTLSConfig("h2", "http/1.1"))
		if err != nil {
			return err
		}
		srv := NewDoHServer(&DoHHandler{Handle: r.Handle, Proxy: e.proxy, serve: r.serveQuery}, e.certs.ServerTLSConfig("h2", "http/1.1"), r.log)
		e.https = append(e.https, srv)
		e.serves.Add(1)
		go func() {
			defer e.serves.Done()
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				r.log.Error("DoH listener stopped", "err", err)
			}
		}()
	}
	for _, addr := range c.ListenQUIC {
		if err := r.startQUIC(ctx, addr); err != nil {
			return err
		}
	}
	r.ddr = e.discovery(c)
	return nil
}

// discovery is what DDR advertises: the configured endpoints, with the
// ports the listeners really got (port 0 in the config picks one).
func (e *encryptedListeners) discovery(c EncryptedConfig) DDREndpoints {
	d := DDREndpointsFrom(c, e.certs.ServerName())
	bound := func(t Transport) uint16 {
		if a := e.addrs[t]; len(a) > 0 {
			return uint16(netAddrPort(a[0]))
		}
		return 0
	}
	d.TLSPort, d.HTTPSPort, d.QUICPort = bound(TransportTLS), bound(TransportHTTPS), bound(TransportQUIC)
	return d
}

func netAddrPort(a net.Addr) int {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.Port
	case *net.UDPAddr:
		return a.Port
	}
	return 0
}

// guarded opens a TCP listener for an encrypted transport (or, with tc
// nil, plain TCP behind the PROXY protocol) behind a GuardListener.
func (r *Resolver) guarded(addr string, siblings []string, t Transport, tc *tls.Config) (net.Listener, error) {
	ap, err := parseListen(addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s %s: %w", t, addr, err)
	}
	ln, err := listenTCP(ap, needsV6Only(ap, siblings))
	if err != nil {
		return nil, fmt.Errorf("listen %s %s: %w", t, addr, explainBindError(err, ap))
	}
	r.listeners.enc.addrs[t] = append(r.listeners.enc.addrs[t], ln.Addr())
	return r.guard(ln, t, tc), nil
}

// guard puts a listener behind a GuardListener: PROXY protocol from
// trusted balancers, the TLS handshake when tc is set, both bounded.
func (r *Resolver) guard(ln net.Listener, t Transport, tc *tls.Config) net.Listener {
	e := &r.listeners.enc
	opts := GuardOptions{TLS: tc, Proxy: e.proxy, ProxyHeaderOptional: t == TransportHTTPS,
		MaxConns: r.cfg.TCP.MaxConnections, Transport: t.String(), Logger: r.log}
	if r.rec != nil {
		opts.OnHandshakeError, opts.OnProxyReject = r.rec.TLSHandshakeError, r.rec.ProxyRejected
	}
	return GuardListener(ln, opts)
}

func (r *Resolver) startQUIC(ctx context.Context, addr string) error {
	e := &r.listeners.enc
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("listen quic %s: %w", addr, err)
	}
	e.quic = append(e.quic, pc)
	e.addrs[TransportQUIC] = append(e.addrs[TransportQUIC], pc.LocalAddr())
	s := &DoQServer{Handle: r.Handle, TLS: e.certs.ServerTLSConfig(), ServerName: e.certs.ServerName(),
		MaxConns: r.cfg.TCP.MaxConnections, IdleTimeout: r.cfg.TCP.IdleTimeout, Logger: r.log}
	if r.rec != nil {
		s.OnHandshakeError = r.rec.TLSHandshakeError
	}
	e.serves.Add(1)
	go func() {
		defer e.serves.Done()
		if err := s.Serve(ctx, pc); err != nil && ctx.Err() == nil {
			r.log.Error("DoQ listener stopped", "err", err)
		}
	}()
	return nil
}

// stop closes the encrypted listeners: DoH finishes requests in flight,
// DoQ connections are closed.
func (e *encryptedListeners) stop(ctx context.Context) {
	for _, srv := range e.https {
		_ = srv.Shutdown(ctx)
	}
	if e.cancel != nil {
		e.cancel()
	}
	for _, pc := range e.quic {
		pc.Close()
	}
	e.serves.Wait()
}

// ListenAddrs returns the bound addresses of a transport's listeners
// (UDP and TCP share theirs: see Addrs).
func (r *Resolver) ListenAddrs(t Transport) []net.Addr {
	if t == TransportUDP || t == TransportTCP {
		return r.Addrs()
	}
	return r.listeners.enc.addrs[t]
}
