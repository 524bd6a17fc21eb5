package blocklist

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"

	"github.com/miekg/dns"
)

// Formats reported in Parsed.Format.
const (
	FormatPlain    = "plain"
	FormatHosts    = "hosts"
	FormatAdblock  = "adblock"
	FormatDnsmasq  = "dnsmasq"
	FormatWildcard = "wildcard"
	FormatRPZ      = "rpz"
	FormatCIDR     = "cidr" // networks, for response-IP policy
)

// maxRejectedKept bounds Parsed.Rejected; RejectedCount has the total.
const maxRejectedKept = 20

// Parsed is the outcome of reading one source.
type Parsed struct {
	Format        string // plain, hosts, adblock, dnsmasq, wildcard, rpz, cidr
	Rules         []Rule
	Rejected      []Rejected // the first few rejected lines
	RejectedCount int
	Lines         int
}

// Parse reads one list source in any supported format. The format is
// detected from the content: RPZ zone files and CIDR lists as a whole (see
// looksLikeRPZ and looksLikeCIDRs), the other formats line by line (so a
// plain list with some "*.name" lines is fine). Bad lines
// are counted and the first few kept in Rejected; the error is only for
// input that cannot be read or is not a text list at all.
func Parse(r io.Reader) (Parsed, error) {
	var rules ruleSlice
	p, err := parseInto(r, &rules)
	if err != nil {
		return Parsed{}, err
	}
	p.Rules = rules
	return p, nil
}

// parsedRule is one rule as the parser hands it to a sink: a name rule, or
// a response-IP rule when name is nil.
type parsedRule struct {
	name   []byte // canonical; valid only during the sink's call
	prefix netip.Prefix
	scope  Scope
	kind   RuleKind
	answer RuleAnswer
	record dns.RR // one record of local data; the sink may keep it
	line   int
}

// ruleSink receives rules as the parser finds them. A sink that keeps a
// rule's name must copy it.
type ruleSink interface {
	rule(r parsedRule)
}

// ruleSlice collects rules for Parse.
type ruleSlice []Rule

func (s *ruleSlice) rule(r parsedRule) {
	rule := Rule{Prefix: r.prefix, Scope: r.scope, Kind: r.kind, Answer: r.answer, Record: r.record, Line: r.line}
	if r.name != nil {
		rule.Name = string(r.name)
	}
	*s = append(*s, rule)
}

// ruleCounter only counts, for checking new content without keeping it.
type ruleCounter int

func (n *ruleCounter) rule(parsedRule) { *n++ }

// parseInto is the one parser: it streams each rule to sink and returns the
// rest of Parsed (Rules stays nil). On error the sink may have seen rules
// of the unusable input; callers discard them.
func parseInto(r io.Reader, sink ruleSink) (Parsed, error) {
	lr := newLineReader(r)
	head, _ := lr.br.Peek(detectWindow)
	switch {
	case looksLikeRPZ(head):
		return parseRPZ(lr, sink)
	case looksLikeCIDRs(head):
		return parseCIDRs(lr, sink)
	}
	return parseLines(lr, sink)
}

// collector streams rules to a sink and accumulates rejections for one
// source.
type collector struct {
	sink      ruleSink
	p         Parsed
	junkLines int // lines of control characters or invalid UTF-8
	firstJunk int
	textLines int // non-blank lines
	name      nameBuf
}

// addName validates raw as a rule name and adds it, or rejects the line.
// "name" covers the name and below, "*.name" only the names below.
func (c *collector) addName(raw []byte, kind RuleKind, line int, text []byte) {
	name, below, reason := c.name.ruleName(raw)
	if reason != "" {
		c.reject(line, text, reason+": "+readableText(raw))
		return
	}
	scope := ScopeSubtree
	if below {
		scope = ScopeBelow
	}
	c.sink.rule(parsedRule{name: name, scope: scope, kind: kind, line: line})
}

func (c *collector) reject(line int, text []byte, reason string) {
	c.p.RejectedCount++
	if len(c.p.Rejected) < maxRejectedKept {
		c.p.Rejected = append(c.p.Rejected, Rejected{Line: line, Text: readableText(text), Reason: reason})
	}
}

// status handles over-long and junk lines; it reports whether the line
// can be parsed.
func (c *collector) status(st lineStatus, line int, text []byte) bool {
	switch st {
	case lineTooLong:
		c.textLines++
		c.reject(line, text, fmt.Sprintf("line longer than %d bytes", maxLineLen))
		return false
	case lineJunk:
		c.textLines++
		c.junkLines++
		if c.firstJunk == 0 {
			c.firstJunk = line
		}
		c.reject(line, text, "control characters or invalid UTF-8")
		return false
	}
	return true
}

// finish rejects input that is mostly binary: a real list with a stray
// bad byte keeps its good lines, a binary file fails as a whole.
func (c *collector) finish(lines int) (Parsed, error) {
	c.p.Lines = lines
	if c.junkLines > 0 && c.junkLines*2 >= c.textLines {
		return Parsed{}, fmt.Errorf("line %d: %d of %d lines are binary data: %w",
			c.firstJunk, c.junkLines, c.textLines, errNotText)
	}
	return c.p, nil
}

// parseLines reads the line-oriented formats, choosing each line's syntax
// by its shape, and names the source's format after the most common one.
func parseLines(lr *lineReader, sink ruleSink) (Parsed, error) {
	c := collector{sink: sink}
	var counts [numLineFormats]int
	err := c.eachLine(lr, func(line int, b []byte) error {
		text := bytes.TrimSpace(b)
		if len(text) == 0 || isCommentLine(text) {
			return nil
		}
		if c.textLines == 0 && isMarkup(text) {
			return fmt.Errorf("line %d: an HTML or XML document (%s), %w", line, readableText(text), errNotText)
		}
		c.textLines++
		counts[parseLine(&c, line, text)]++
		return nil
	})
	if err != nil {
		return Parsed{}, err
	}
	c.p.Format = dominantFormat(counts)
	return c.finish(lr.line)
}

// eachLine hands fn every line that can be parsed, after reporting
// over-long and junk lines; it stops at the end of input or the first
// error, from reading or from fn.
func (c *collector) eachLine(lr *lineReader, fn func(line int, b []byte) error) error {
	for {
		b, st, err := lr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if !c.status(st, lr.line, b) {
			continue
		}
		if err := fn(lr.line, b); err != nil {
			return err
		}
	}
}

// isMarkup spots an HTML or XML page where a list was expected, such as
// a proxy's error or login page served with status 200.
func isMarkup(t []byte) bool {
	if t[0] != '<' {
		return false
	}
	for _, p := range []string{"<!doctype", "<html", "<?xml", "<head", "<body"} {
		if len(t) >= len(p) && bytes.EqualFold(t[:len(p)], []byte(p)) {
			return true
		}
	}
	return false
}

// isCommentLine covers '#' and '!' comments and the "[Adblock Plus 2.0]"
// style header.
func isCommentLine(t []byte) bool {
	switch t[0] {
	case '#', '!':
		return true
	case '[':
		return t[len(t)-1] == ']'
	}
	return false
}

type lineFormat uint8

const (
	linePlain lineFormat = iota
	lineWildcard
	lineHosts
	lineAdblock
	lineDnsmasq
	numLineFormats
)

func (f lineFormat) String() string {
	switch f {
	case lineWildcard:
		return FormatWildcard
	case lineHosts:
		return FormatHosts
	case lineAdblock:
		return FormatAdblock
	case lineDnsmasq:
		return FormatDnsmasq
	}
	return FormatPlain
}

func dominantFormat(counts [numLineFormats]int) string {
	best := linePlain
	for f := range numLineFormats {
		if counts[f] > counts[best] {
			best = f
		}
	}
	return best.String()
}

// parseLine parses one non-blank, non-comment line and says which syntax
// it had.
func parseLine(c *collector, line int, text []byte) lineFormat {
	if cosmeticRule(text) {
		c.reject(line, text, "adblock cosmetic (element hiding) rule, not a domain rule")
		return lineAdblock
	}
	if isDnsmasqLine(text) {
		// '#' is a name in "address=/#/": only a spaced '#' starts a comment.
		parseDnsmasq(c, line, text, cutSpacedComment(text))
		return lineDnsmasq
	}
	entry := cutComment(text)
	if isAdblockLine(entry) {
		parseAdblock(c, line, text, entry)
		return lineAdblock
	}
	if bytes.IndexByte(entry, ' ') < 0 && bytes.IndexByte(entry, '\t') < 0 {
		return addPlain(c, line, text, entry)
	}
	fields := bytes.Fields(entry)
	if len(fields) > 1 {
		if isHostsLine(fields) {
			parseHosts(c, line, text, fields[1:])
			return lineHosts
		}
		c.reject(line, text, "unrecognised line: several fields but no IP address first")
		return linePlain
	}
	return addPlain(c, line, text, fields[0])
}

// addPlain adds a plain "name" or wildcard "*.name" entry.
func addPlain(c *collector, line int, text, entry []byte) lineFormat {
	if reason := cidrInDomainList(entry); reason != "" {
		c.reject(line, text, reason)
		return linePlain
	}
	c.addName(entry, KindBlock, line, text)
	if bytes.HasPrefix(entry, []byte("*.")) {
		return lineWildcard
	}
	return linePlain
}

// cutComment drops a '#' comment after an entry.
func cutComment(t []byte) []byte {
	if i := bytes.IndexByte(t, '#'); i >= 0 {
		t = bytes.TrimSpace(t[:i])
	}
	return t
}

func cutSpacedComment(t []byte) []byte {
	for i := 1; i < len(t); i++ {
		if t[i] == '#' && (t[i-1] == ' ' || t[i-1] == '\t') {
			return bytes.TrimSpace(t[:i])
		}
	}
	return t
}

// cosmeticRule spots adblock element-hiding rules such as
// "example.com##.banner", which a '#' comment cut would turn into a
// block of example.com.
func cosmeticRule(t []byte) bool {
	i := bytes.IndexByte(t, '#')
	if i <= 0 || i+1 >= len(t) || t[i-1] == ' ' || t[i-1] == '\t' {
		return false
	}
	return bytes.IndexByte([]byte("#@?$%"), t[i+1]) >= 0
}
