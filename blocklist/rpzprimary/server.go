package rpzprimary

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/dnsward/dnsward/blocklist"
)

// Policy is what the primary needs from the blocklist engine
// (*blocklist.Engine implements it).
type Policy interface {
	GroupPolicy(group string) ([]blocklist.PolicyName, uint64, error)
	PolicyVersion() (uint64, <-chan struct{})
}

// Options are the server's dependencies.
type Options struct {
	Policy Policy
	Key    blocklist.TSIGKey // the key rpz_primary.tsig names, resolved
	Logger *slog.Logger      // default: slog.Default()
	// OnZoneUpdate, if set, is called after a zone's version changes.
	OnZoneUpdate func(ZoneStatus)
}

// Server is the RPZ primary: a DNS server for the configured zones.
type Server struct {
	cfg    Config
	opts   Options
	log    *slog.Logger
	allow  []netip.Prefix
	notify []netip.AddrPort
	zones  map[string]*servedZone // by canonical name

	servers []*dns.Server
	stop    context.CancelFunc
	done    sync.WaitGroup
}

type servedZone struct {
	zone
	cur                  atomic.Pointer[version]
	axfr, ixfr, ixfrFull atomic.Uint64 // transfers served
}

// TransferCounts are the transfers a zone served since start.
type TransferCounts struct {
	AXFR     uint64 `json:"axfr"`
	IXFR     uint64 `json:"ixfr"`      // incremental
	IXFRFull uint64 `json:"ixfr_full"` // IXFR answered with the whole zone (serial too old)
}

// ZoneStatus is one served zone, for status pages and metrics.
type ZoneStatus struct {
	Zone    string    `json:"zone"`
	Group   string    `json:"group"`
	Serial  uint32    `json:"serial"`
	Records int       `json:"records"`
	Journal int       `json:"journal_versions"` // serials IXFR can start from
	Built   time.Time `json:"built"`
	// Transfers are those served since start.
	Transfers TransferCounts `json:"transfers"`
}

// New checks cfg (already validated) and prepares the server; Start binds it.
func New(cfg Config, opts Options) (*Server, error) {
	if opts.Policy == nil {
		return nil, errors.New("rpzprimary: no policy")
	}
	if opts.Key.Secret == "" {
		return nil, errors.New("rpzprimary: the TSIG key has no secret")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, opts: opts, log: opts.Logger, zones: map[string]*servedZone{}}
	for _, a := range cfg.Allow {
		p, err := parsePrefix(a)
		if err != nil {
			return nil, err
		}
		s.allow = append(s.allow, p)
	}
	for _, a := range cfg.Notify {
		ap, err := parseNotify(a)
		if err != nil {
			return nil, err
		}
		s.notify = append(s.notify, ap)
	}
	for _, zc := range cfg.Zones {
		name := dns.CanonicalName(zc.Name)
		s.zones[name] = &servedZone{zone: zone{name: name, group: zc.Group}}
	}
	return s, nil
}

// Start builds every zone from the current policy, binds UDP and TCP on
// each listen address, and follows policy changes until Shutdown.
func (s *Server) Start() error {
	s.refresh(time.Now())
	for _, z := range s.zones {
		if z.cur.Load() == nil {
			return fmt.Errorf("rpz_primary: zone %s: group %q has no policy to publish", z.name, z.group)
		}
	}
	secrets := map[string]string{s.opts.Key.Name: s.opts.Key.Secret}
	for _, addr := range s.cfg.Listen {
		for _, network := range []string{"udp", "tcp"} {
			srv := &dns.Server{Addr: addr, Net: network, Handler: dns.HandlerFunc(s.serveDNS), TsigSecret: secrets,
				ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
			ready := make(chan error, 1)
			srv.NotifyStartedFunc = func() { ready <- nil }
			go func() { ready <- srv.ListenAndServe() }()
			if err := <-ready; err != nil {
				s.shutdownServers(context.Background())
				return fmt.Errorf("rpz_primary: listening on %s/%s: %w", addr, network, err)
			}
			s.servers = append(s.servers, srv)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.done.Go(func() { s.follow(ctx) })
	s.log.Info("rpz primary started", "listen", s.cfg.Listen, "zones", len(s.zones))
	return nil
}

// Addrs returns the bound addresses (useful with port 0).
func (s *Server) Addrs() []string {
	var out []string
	for _, srv := range s.servers {
		if srv.Net == "udp" && srv.PacketConn != nil {
			out = append(out, srv.PacketConn.LocalAddr().String())
		}
	}
	return out
}

// Shutdown stops listening and following the policy; transfers in flight
// are cut when ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.stop != nil {
		s.stop()
	}
	err := s.shutdownServers(ctx)
	s.done.Wait()
	return err
}

func (s *Server) shutdownServers(ctx context.Context) error {
	var errs []error
	for _, srv := range s.servers {
		errs = append(errs, srv.ShutdownContext(ctx))
	}
	s.servers = nil
	return errors.Join(errs...)
}

// follow rebuilds the zones whenever the engine stores a new snapshot.
func (s *Server) follow(ctx context.Context) {
	for {
		_, changed := s.opts.Policy.PolicyVersion()
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
		for _, z := range s.refresh(time.Now()) {
			s.done.Go(func() { s.sendNotifies(ctx, z) })
		}
	}
}

// refresh rebuilds every zone and returns the ones whose serial changed.
func (s *Server) refresh(now time.Time) []*servedZone {
	var changed []*servedZone
	for _, z := range s.zones {
		names, _, err := s.opts.Policy.GroupPolicy(z.group)
		if err != nil {
			s.log.Error("rpz primary: cannot read the group's policy; serving the previous version", "zone", z.name, "error", err)
			continue
		}
		old := z.cur.Load()
		nv := z.next(old, names, now)
		if nv == old {
			continue
		}
		z.cur.Store(nv)
		s.log.Info("rpz primary: zone updated", "zone", z.name, "group", z.group, "serial", nv.serial, "records", nv.records)
		if s.opts.OnZoneUpdate != nil {
			s.opts.OnZoneUpdate(z.status())
		}
		if old != nil {
			changed = append(changed, z)
		}
	}
	return changed
}

func (z *servedZone) status() ZoneStatus {
	st := ZoneStatus{Zone: z.name, Group: z.group, Transfers: TransferCounts{AXFR: z.axfr.Load(), IXFR: z.ixfr.Load(), IXFRFull: z.ixfrFull.Load()}}
	if v := z.cur.Load(); v != nil {
		st.Serial, st.Records, st.Journal, st.Built = v.serial, v.records, len(v.journal), v.built
	}
	return st
}

// Zones reports every served zone.
func (s *Server) Zones() []ZoneStatus {
	var out []ZoneStatus
	for _, zc := range s.cfg.Zones {
		out = append(out, s.zones[dns.CanonicalName(zc.Name)].status())
	}
	return out
}
