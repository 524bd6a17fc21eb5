package blocklist

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Timeouts of one exchange with a primary. A transfer has no overall
// deadline (a 1.5M-record zone takes a while) but every message must
// arrive within xfrReadTimeout.
const (
	xfrDialTimeout  = 5 * time.Second
	xfrReadTimeout  = 15 * time.Second
	soaQueryTimeout = 3 * time.Second
)

// xfrPeer is one primary and the key to talk to it with.
type xfrPeer struct {
	addr string // host:port
	zone string // canonical FQDN
	key  *TSIGKey
}

func (p xfrPeer) sign(m *dns.Msg) {
	if p.key != nil {
		m.SetTsig(p.key.Name, p.key.Algorithm, 300, time.Now().Unix())
	}
}

func (p xfrPeer) secrets() map[string]string {
	if p.key == nil {
		return nil
	}
	return map[string]string{p.key.Name: p.key.Secret}
}

// querySOA asks the primary for the zone's SOA, over UDP and again over
// TCP when truncated. A signed query must get a signed answer.
func (p xfrPeer) querySOA(ctx context.Context) (*dns.SOA, error) {
	m := new(dns.Msg)
	m.SetQuestion(p.zone, dns.TypeSOA)
	p.sign(m)
	var r *dns.Msg
	var err error
	for _, network := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: network, Timeout: soaQueryTimeout, TsigSecret: p.secrets()}
		r, _, err = c.ExchangeContext(ctx, m.Copy(), p.addr)
		if err == nil && r.Truncated {
			continue
		}
		break
	}
	if r != nil && r.Rcode != dns.RcodeSuccess {
		return nil, fmt.Errorf("SOA query: primary answered %s", describeRcode(r))
	}
	if err != nil {
		return nil, fmt.Errorf("SOA query: %w", describeTSIGErr(err))
	}
	if p.key != nil && r.IsTsig() == nil {
		return nil, fmt.Errorf("SOA query: the answer is not signed with key %s", p.key.Name)
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok && dns.CanonicalName(soa.Hdr.Name) == p.zone {
			return soa, nil
		}
	}
	return nil, fmt.Errorf("SOA query: the answer has no SOA for %s (is the primary authoritative for it?)", p.zone)
}

// describeRcode names an error answer, with the TSIG error when there is one.
func describeRcode(r *dns.Msg) string {
	s := dns.RcodeToString[r.Rcode]
	if t := r.IsTsig(); t != nil && t.Error != 0 {
		s += " (TSIG error " + dns.RcodeToString[int(t.Error)] + ": the key name, algorithm or secret differs from the primary's, or the clocks differ)"
	} else if r.Rcode == dns.RcodeNotAuth {
		s += " (TSIG: the primary requires a key, or does not know this one)"
	} else if r.Rcode == dns.RcodeRefused {
		s += " (the primary does not allow this transfer: its ACL or key)"
	}
	return s
}

func describeTSIGErr(err error) error {
	switch {
	case errors.Is(err, dns.ErrSig):
		return fmt.Errorf("%w: the answer's TSIG signature does not verify with our secret", err)
	case errors.Is(err, dns.ErrTime):
		return fmt.Errorf("%w: TSIG time check failed; are the clocks in sync?", err)
	}
	return err
}

// rrStream yields a transfer's records one message at a time.
type rrStream struct {
	tr  *dns.Transfer
	ch  chan *dns.Envelope
	buf []dns.RR
}

func (p xfrPeer) openTransfer(q *dns.Msg) (*rrStream, error) {
	p.sign(q)
	tr := &dns.Transfer{DialTimeout: xfrDialTimeout, ReadTimeout: xfrReadTimeout, TsigSecret: p.secrets()}
	ch, err := tr.In(q, p.addr)
	if err != nil {
		return nil, err
	}
	return &rrStream{tr: tr, ch: ch}, nil
}

// next returns the next record, io.EOF at the end of the transfer.
func (s *rrStream) next() (dns.RR, error) {
	for len(s.buf) == 0 {
		env, ok := <-s.ch
		if !ok {
			return nil, io.EOF
		}
		if env.Error != nil {
			return nil, xfrError(env.Error)
		}
		s.buf = env.RR
	}
	rr := s.buf[0]
	s.buf = s.buf[1:]
	return rr, nil
}

// close ends the transfer early: closing the connection makes the reading
// goroutine fail and close the channel, so draining it does not wait.
func (s *rrStream) close() {
	if s.tr.Conn != nil {
		s.tr.Conn.Close()
	}
	for range s.ch {
	}
}

func xfrError(err error) error {
	var rcode int
	if _, scanErr := fmt.Sscanf(err.Error(), "dns: bad xfr rcode: %d", &rcode); scanErr == nil {
		msg := &dns.Msg{MsgHdr: dns.MsgHdr{Rcode: rcode}}
		return fmt.Errorf("primary answered %s", describeRcode(msg))
	}
	return describeTSIGErr(err)
}

// zoneResult is a transferred zone: the new text (nil when the primary's
// copy matched ours) and what the transfer was.
type zoneResult struct {
	text *zoneText
	soa  *dns.SOA
	kind string // "axfr" or "ixfr"
}

// axfr transfers the whole zone.
func (p xfrPeer) axfr(sizeHint int) (*zoneResult, error) {
	q := new(dns.Msg)
	q.SetAxfr(p.zone)
	s, err := p.openTransfer(q)
	if err != nil {
		return nil, err
	}
	defer s.close()
	first, err := s.next()
	if err != nil {
		return nil, err
	}
	soa, ok := first.(*dns.SOA)
	if !ok {
		return nil, fmt.Errorf("AXFR did not start with the SOA")
	}
	text := newZoneText(sizeHint)
	if err := text.add(soa); err != nil {
		return nil, err
	}
	if err := readFullZone(s, soa, text); err != nil {
		return nil, err
	}
	return &zoneResult{text: text, soa: soa, kind: "axfr"}, nil
}

// readFullZone reads records into text until the closing SOA.
func readFullZone(s *rrStream, soa *dns.SOA, text *zoneText) error {
	for {
		rr, err := s.next()
		if err == io.EOF {
			return fmt.Errorf("transfer ended before the closing SOA")
		}
		if err != nil {
			return err
		}
		if end, ok := rr.(*dns.SOA); ok {
			if end.Serial != soa.Serial {
				return fmt.Errorf("transfer closed with serial %d, opened with %d", end.Serial, soa.Serial)
			}
			return nil
		}
		if !inZone(rr.Header().Name, soa.Hdr.Name) {
			return fmt.Errorf("record %s is outside the zone %s", rr.Header().Name, soa.Hdr.Name)
		}
		if err := text.add(rr); err != nil {
			return err
		}
	}
}

// inZone reports whether name is zone or below it, case-insensitively:
// a suffix compare, since dns.IsSubDomain costs a third of a second per
// million records.
func inZone(name, zone string) bool {
	n, z := len(name), len(zone)
	if n < z || !strings.EqualFold(name[n-z:], zone) {
		return false
	}
	return n == z || zone == "." || name[n-z-1] == '.'
}

// serialNewer compares SOA serials with RFC 1982 arithmetic: a is newer
// than b when it is ahead by less than half the number space.
func serialNewer(a, b uint32) bool { return a != b && int32(a-b) > 0 }
