package resolver

import (
	"strings"

	"github.com/miekg/dns"
)

// ourUDPSize is the EDNS buffer size we advertise (the DNS flag day 2020
// value that avoids IP fragmentation).
const ourUDPSize = 1232

// fit makes resp a proper reply to req: same ID, the question exactly as
// asked (case included) when there is one, our own OPT when the client
// sent one, and small enough for the client's UDP buffer, never above the
// size we advertise (TC set when records had to go).
func fit(resp, req *dns.Msg, udp bool, opts []dns.EDNS0) {
	resp.Id = req.Id
	resp.Response = true
	resp.Opcode = req.Opcode
	resp.RecursionDesired = req.RecursionDesired
	resp.RecursionAvailable = true
	resp.CheckingDisabled = req.CheckingDisabled
	// A query has one question. Echoing many (a non-QUERY opcode may carry
	// hundreds) could push even a header-only error past the client's
	// buffer, so that error goes without them.
	resp.Question = nil
	if len(req.Question) == 1 {
		resp.Question = req.Question
		echoOwnerCase(resp, req.Question[0].Name)
	}
	resp.Extra = withoutOPT(resp.Extra)
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		ours := ourOPT(resp.Rcode, opt.Do())
		ours.Option = opts
		resp.Extra = append(resp.Extra, ours)
		size = min(max(int(opt.UDPSize()), dns.MinMsgSize), ourUDPSize)
	}
	resp.Rcode &= 0xF // the extended bits travel in the OPT record
	if !udp {
		size = dns.MaxMsgSize
	}
	resp.Truncate(size)
}

func ourOPT(rcode int, do bool) *dns.OPT {
	o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	o.SetUDPSize(ourUDPSize)
	o.SetDo(do)
	o.SetExtendedRcode(uint16(rcode))
	return o
}

func withoutOPT(rrs []dns.RR) []dns.RR {
	out := rrs[:0]
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeOPT {
			out = append(out, rr)
		}
	}
	return out
}

// echoOwnerCase rewrites answer owner names equal to the question (in any
// case) to the client's spelling: cached answers are shared by every
// spelling, and 0x20-checking stubs compare them.
func echoOwnerCase(resp *dns.Msg, qname string) {
	for _, rr := range resp.Answer {
		h := rr.Header()
		if h.Name != qname && strings.EqualFold(h.Name, qname) {
			h.Name = qname
		}
	}
}
