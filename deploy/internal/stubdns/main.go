// Command stubdns is the upstream of the deployment tests: a tiny DNS
// server that answers every A query with 192.0.2.1 and every other type
// with an empty NOERROR, on UDP and TCP. The tests run it next to the
// packaged dnsward (in the container's network namespace, or on loopback
// beside the installed .deb) so no query leaves the machine.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/miekg/dns"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:5300", "address for UDP and TCP")
	flag.Parse()
	handler := dns.HandlerFunc(answer)
	errs := make(chan error, 2)
	for _, network := range []string{"udp", "tcp"} {
		srv := &dns.Server{Addr: *listen, Net: network, Handler: handler}
		go func() { errs <- srv.ListenAndServe() }()
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	select {
	case err := <-errs:
		fmt.Fprintln(os.Stderr, "stubdns:", err)
		os.Exit(1)
	case <-stop:
	}
}

func answer(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg).SetReply(req)
	if len(req.Question) == 1 && req.Question[0].Qtype == dns.TypeA {
		q := req.Question[0]
		m.Answer = []dns.RR{&dns.A{
			Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
			A:   net.IPv4(192, 0, 2, 1),
		}}
	}
	_ = w.WriteMsg(m)
}
