// Command upstream is the benchmark's local authoritative server: every name
// gets an A (192.0.2.x) and an AAAA (2001:db8::x) answer with TTL 3600, so the
// resolvers under test measure their own cost, not the upstream's.
//
// UDP is served on one SO_REUSEPORT socket per core, plus one TCP listener.
// It serves loopback only and exits on SIGTERM or SIGINT. SIGUSR1 toggles
// silence: while silent it reads queries and answers none, as a dead
// upstream does (bench/soak.sh flips one of two upstreams this way).
package main

import (
	"flag"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/miekg/dns"
)

const answerTTL = 3600

func main() {
	listen := flag.String("listen", "127.0.0.1:5300", "loopback address for UDP and TCP")
	sockets := flag.Int("sockets", runtime.NumCPU(), "UDP sockets (SO_REUSEPORT)")
	flag.Parse()
	if err := run(*listen, *sockets); err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
}

func run(listen string, sockets int) error {
	ap, err := netip.ParseAddrPort(listen)
	if err != nil || !ap.Addr().IsLoopback() {
		return fmt.Errorf("-listen %q: want a loopback IP:PORT", listen)
	}
	if sockets < 1 {
		sockets = 1
	}
	var silent atomic.Bool
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		if !silent.Load() {
			answer(w, req)
		}
	})
	var servers []*dns.Server
	for i := 0; i < sockets; i++ {
		servers = append(servers, &dns.Server{Addr: listen, Net: "udp", Handler: handler, ReusePort: true, UDPSize: 65535})
	}
	servers = append(servers, &dns.Server{Addr: listen, Net: "tcp", Handler: handler, ReusePort: true})

	errs := make(chan error, len(servers))
	for _, s := range servers {
		go func(s *dns.Server) { errs <- s.ListenAndServe() }(s)
	}
	slog.Info("upstream serving", "addr", listen, "udp_sockets", sockets)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	toggle := make(chan os.Signal, 1)
	signal.Notify(toggle, syscall.SIGUSR1)
wait:
	for {
		select {
		case <-toggle:
			slog.Info("upstream silence toggled", "silent", !silent.Load())
			silent.Store(!silent.Load())
		case sig := <-stop:
			slog.Info("upstream stopping", "signal", sig.String())
			break wait
		case err = <-errs:
			break wait
		}
	}
	for _, s := range servers {
		_ = s.Shutdown()
	}
	return err
}

// answer gives every A/AAAA question an address derived from the name, so
// answers differ per name but stay stable across runs.
func answer(w dns.ResponseWriter, req *dns.Msg) {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true
	if len(req.Question) != 1 {
		resp.SetRcode(req, dns.RcodeFormatError)
		_ = w.WriteMsg(resp)
		return
	}
	q := req.Question[0]
	octet := nameOctet(q.Name)
	hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: answerTTL}
	switch q.Qtype {
	case dns.TypeA:
		hdr.Rrtype = dns.TypeA
		resp.Answer = append(resp.Answer, &dns.A{Hdr: hdr, A: net.IPv4(192, 0, 2, octet)})
	case dns.TypeAAAA:
		hdr.Rrtype = dns.TypeAAAA
		ip := net.ParseIP("2001:db8::")
		ip[15] = octet
		resp.Answer = append(resp.Answer, &dns.AAAA{Hdr: hdr, AAAA: ip})
	default:
		// NODATA with an SOA, so resolvers can cache it (RFC 2308).
		resp.Ns = append(resp.Ns, &dns.SOA{
			Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: answerTTL},
			Ns:  "ns.bench.test.", Mbox: "hostmaster.bench.test.", Serial: 1,
			Refresh: 3600, Retry: 600, Expire: 86400, Minttl: answerTTL,
		})
	}
	_ = w.WriteMsg(resp)
}

func nameOctet(name string) byte {
	h := fnv.New32a()
	_, _ = h.Write([]byte(strings.ToLower(name)))
	return byte(1 + h.Sum32()%254)
}
