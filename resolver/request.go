package resolver

import (
	"net/netip"

	"github.com/dnsward/dnsward/metrics"
	"github.com/dnsward/dnsward/resolver/upstream"
)

// Transport says how a query reached dnsward. Its name is the bounded
// value of the metrics' proto label.
type Transport uint8

const (
	TransportUDP Transport = iota
	TransportTCP
	TransportTLS
	TransportHTTPS
	TransportQUIC
)

var transportNames = [...]string{"udp", "tcp", "tls", "https", "quic"}

func (t Transport) String() string {
	if int(t) < len(transportNames) {
		return transportNames[t]
	}
	return "udp"
}

// origin is where a query came from: the pipeline hands it the reply of a
// query it could not answer at once. reply(nil) means "send nothing"; it
// is called exactly once per such query, from any goroutine, with that
// goroutine's scratch.
type origin interface {
	reply(out []byte, s *scratch)
}

// request is one query on its way through the pipeline. Its packet and
// the names in q borrow the listener's buffers until serve returns.
type request struct {
	pkt       []byte
	q         wireQuery
	client    netip.Addr
	token     string // the device token of an encrypted transport, if any
	transport Transport
	limit     int // the largest reply the client takes
	live      *settings
	ev        metrics.QueryEvent
	out       []byte // the reply a stage decided on; nil: send nothing
	silent    bool   // not a query at all (a response, a runt): nothing recorded
	pending   bool   // waiting on an upstream: the origin gets the reply later
	excepted  bool   // policy named an exception for the name: its answer's addresses are not judged

	// Where a reply that is not known at once goes: stream listeners
	// set from; UDP loops fill the fields below instead, and the
	// pipeline builds their origin only for a cache miss, so that
	// answering at once never allocates.
	from    origin
	udp     *udpSocket
	peer    netip.AddrPort // UDP: the client's address and port
	dst     netip.Addr     // UDP: the address the query was sent to, the reply's source
	ifindex int32          // UDP: the interface it arrived on (IPv6 link-local replies need it)
	local   netip.AddrPort // the listener's address, for dnstap
	lane    *upstream.Lane // UDP: the read loop's lane, where its misses go upstream
}

// scratch is one goroutine's reusable memory for building replies.
type scratch struct {
	name [maxNameText]byte
	out  []byte
	io   udpIO // for UDP replies written from this goroutine
}

func newScratch() *scratch { return &scratch{out: make([]byte, 0, 4096)} }

// keep returns out after making it the scratch's buffer, so capacity a
// large answer grew stays for the next one.
func (s *scratch) keep(out []byte) []byte {
	s.out = out[:0]
	return out
}
