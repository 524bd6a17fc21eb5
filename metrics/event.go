package metrics

import (
	"net/netip"
	"time"
)

// Outcome says how one client query was answered. The values are the
// bounded label set of dnsward_queries_total{outcome}.
type Outcome uint8

const (
	OutcomeForwarded   Outcome = iota // answered from an upstream
	OutcomeCached                     // answered from the cache
	OutcomeBlocked                    // answered by policy (sinkhole/NXDOMAIN/...)
	OutcomeStale                      // answered from an expired cache entry (serve-stale)
	OutcomeRefused                    // refused by access control or policy
	OutcomeRateLimited                // dropped or refused by the rate limiter
	OutcomeError                      // SERVFAIL, FORMERR, NOTIMP or an internal failure
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"forwarded", "cached", "blocked", "stale", "refused", "ratelimited", "error"}

// String returns the label value of the outcome.
func (o Outcome) String() string {
	if o < numOutcomes {
		return outcomeNames[o]
	}
	return "error"
}

// QueryEvent describes one answered client query. The resolver fills one
// per query and hands a pointer to Recorder.Query; the recorder must not
// keep the pointer after Query returns.
type QueryEvent struct {
	Time     time.Time     // when the query arrived
	Duration time.Duration // arrival to response written
	Client   netip.Addr
	Proto    string // transport: "udp", "tcp", "tls", "https" or "quic" (others count as "other")
	Group    string // client group from policy ("" when policy is off)
	// TokenID names the device token that chose the group (its short
	// hash, never the token itself); "" when the address chose it.
	TokenID string
	// QName is the name as asked (any case, fully qualified). It may
	// borrow the resolver's scratch buffer, overwritten after Query
	// returns: Query copies what it keeps (see RetainsQName).
	QName   string
	QType   uint16
	Rcode   int
	Outcome Outcome
	// Set when policy decided the answer (blocked) or would have (monitor).
	List      string
	Rule      string
	Answer    string // blocked answer mode: nxdomain, nodata, null_ip, sinkhole, refused
	Monitored bool   // a monitor-mode list matched: resolved normally, "would block"
	// Wire-format query and response for dnstap; may be nil. Set only
	// when Recorder.WantsWire; the recorder copies them.
	QueryWire, ResponseWire []byte
	// Client and listener socket addresses for dnstap; may be zero. Set
	// only when Recorder.WantsWire (AddrPortOf converts a net.Addr).
	ClientAddrPort, ServerAddrPort netip.AddrPort
}
