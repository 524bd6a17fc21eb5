package blocklist

import (
	"bytes"
	"strings"

	"github.com/miekg/dns"
)

const (
	// detectWindow is how much of a source is looked at to spot RPZ.
	detectWindow = 16 << 10
	// maxRPZEntry bounds one record spread over lines by parentheses, so
	// a lone '(' cannot swallow the rest of a feed.
	maxRPZEntry = 8 << 10
	// defaultRPZTTL is the TTL of local data in a zone without $TTL.
	defaultRPZTTL = 3600
)

// looksLikeRPZ reports a zone file: a leading $ORIGIN/$TTL directive, or
// an SOA or CNAME record among the first entries.
func looksLikeRPZ(head []byte) bool {
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	for seen := 0; len(head) > 0 && seen < 50; {
		var line []byte
		line, head, _ = bytes.Cut(head, []byte("\n"))
		t := bytes.TrimSpace(line)
		if len(t) == 0 || t[0] == ';' || t[0] == '#' || t[0] == '!' {
			continue
		}
		seen++
		if t[0] == '$' {
			return true
		}
		if i := bytes.IndexByte(t, ';'); i >= 0 {
			t = t[:i]
		}
		fields := bytes.Fields(t)
		for i := 1; i < len(fields); i++ {
			if bytes.EqualFold(fields[i], []byte("SOA")) ||
				bytes.EqualFold(fields[i], []byte("CNAME")) && i+1 < len(fields) {
				return true
			}
		}
	}
	return false
}

// rpzParser frames a zone file into records itself (directives, records
// continued in parentheses, omitted owners) and hands each record to
// miekg/dns's zone parser. miekg's parser stops at the first error and
// does not report the line of a record; framing here keeps a bad record
// from losing the rest of the feed and gives every rule its line.
type rpzParser struct {
	c           collector
	origin      string // current $ORIGIN, fully qualified, lower case
	firstOrigin string
	zone        string // zone apex from the SOA record
	owner       string // last owner name, for records that omit it
	ttl         uint32 // $TTL, for local data
	lastOwner   string // owner of the previous record, for sameOwner
	lastData    bool   // the previous owner's records are local data
	entry       []byte
	entryLine   int
	depth       int
}

func parseRPZ(lr *lineReader, sink ruleSink) (Parsed, error) {
	p := rpzParser{c: collector{sink: sink}, origin: ".", ttl: defaultRPZTTL}
	err := p.c.eachLine(lr, func(line int, b []byte) error {
		p.addLine(line, b)
		return nil
	})
	if err != nil {
		return Parsed{}, err
	}
	if len(p.entry) > 0 {
		p.c.reject(p.entryLine, p.entry, "record not closed: missing ')'")
	}
	p.c.p.Format = FormatRPZ
	return p.c.finish(lr.line)
}

// addLine appends a line to the current record and parses the record once
// its parentheses balance.
func (p *rpzParser) addLine(line int, b []byte) {
	code, depth := zoneLineCode(b)
	if len(p.entry) == 0 {
		if len(bytes.TrimSpace(code)) == 0 {
			return
		}
		p.entryLine = line
		p.c.textLines++
	}
	p.entry = append(p.entry, code...)
	p.entry = append(p.entry, '\n')
	p.depth += depth
	switch {
	case p.depth < 0:
		p.c.reject(p.entryLine, p.entry, "unbalanced parentheses: ')' without '('")
	case p.depth == 0:
		p.record(p.entryLine, p.entry)
	case len(p.entry) > maxRPZEntry:
		p.c.reject(p.entryLine, p.entry, "record longer than 8 KiB: missing ')'?")
	default:
		return
	}
	p.entry, p.depth = p.entry[:0], 0
}

// zoneLineCode returns the line without its ';' comment and the change in
// parenthesis depth, ignoring both inside quoted strings.
func zoneLineCode(b []byte) ([]byte, int) {
	depth, quoted := 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == ';':
			return b[:i], depth
		case c == '(':
			depth++
		case c == ')':
			depth--
		}
	}
	return b, depth
}

// record parses one framed record or directive.
func (p *rpzParser) record(line int, text []byte) {
	if text[0] == '$' {
		p.directive(line, text)
		return
	}
	src := text
	if text[0] == ' ' || text[0] == '\t' {
		if p.owner == "" {
			p.c.reject(line, text, "record without an owner name")
			return
		}
		src = append([]byte(p.owner), text...)
	}
	zp := dns.NewZoneParser(bytes.NewReader(src), p.origin, "")
	zp.SetDefaultTTL(p.ttl)
	rr, ok := zp.Next()
	if !ok {
		if err := zp.Err(); err != nil {
			p.c.reject(line, text, "zone syntax: "+zoneErrText(err))
		}
		return
	}
	p.owner = rr.Header().Name
	p.classify(line, text, rr)
}

// zoneErrText drops miekg's position, which is relative to the record.
func zoneErrText(err error) string {
	msg, _, _ := strings.Cut(err.Error(), " at line: ")
	return strings.TrimPrefix(msg, "dns: ")
}

func (p *rpzParser) directive(line int, text []byte) {
	fields := bytes.Fields(text)
	switch strings.ToUpper(string(fields[0])) {
	case "$ORIGIN":
		if len(fields) != 2 {
			p.c.reject(line, text, "$ORIGIN needs exactly one name")
			return
		}
		o := string(fields[1])
		if !dns.IsFqdn(o) {
			o = dns.Fqdn(o) + strings.TrimPrefix(p.origin, ".")
		}
		if _, ok := dns.IsDomainName(o); !ok {
			p.c.reject(line, text, "$ORIGIN is not a domain name")
			return
		}
		p.origin = dns.CanonicalName(o)
		if p.firstOrigin == "" {
			p.firstOrigin = p.origin
		}
	case "$TTL":
		ttl, ok := zoneTTL(fields)
		if !ok {
			p.c.reject(line, text, "$TTL needs one TTL, such as 300 or 1h")
			return
		}
		p.ttl = ttl
	case "$INCLUDE":
		p.c.reject(line, text, "$INCLUDE is not supported: put the records in the source itself")
	default:
		p.c.reject(line, text, "unsupported zone directive "+readableText(fields[0]))
	}
}

// zoneTTL reads a $TTL directive's value with miekg's own TTL syntax
// ("300", "1h30m") by parsing a record under it.
func zoneTTL(fields [][]byte) (uint32, bool) {
	if len(fields) != 2 {
		return 0, false
	}
	zp := dns.NewZoneParser(strings.NewReader("$TTL "+string(fields[1])+"\n. A 0.0.0.0\n"), ".", "")
	rr, ok := zp.Next()
	if !ok || zp.Err() != nil {
		return 0, false
	}
	return rr.Header().Ttl, true
}
