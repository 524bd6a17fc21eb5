package blocklist

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/miekg/dns"
)

// A transferred zone is kept as zone-file text, one record a line with
// absolute names, the SOA first: the same RPZ parser reads it as reads an
// RPZ file or URL, the packed text is the last good copy, and the saved
// copy carries its own serial and timers in that first line.

// zoneText accumulates a zone's records as text, packed as it goes: a
// 1.5M-record zone is ~80 MB of text but ~25 MB packed, and only the
// packed form is ever whole in memory.
type zoneText struct {
	pack    *contentPacker
	stage   []byte // lines not yet packed
	records int
}

const zoneStage = 64 << 10

func newZoneText(sizeHint int) *zoneText {
	return &zoneText{pack: newContentPacker(sizeHint), stage: make([]byte, 0, zoneStage)}
}

// add appends one record, owner lower-cased so lines compare by key.
func (z *zoneText) add(rr dns.RR) error {
	h := rr.Header()
	h.Name = strings.ToLower(h.Name)
	line := rr.String()
	if strings.ContainsAny(line, "\n\r") {
		return fmt.Errorf("record of %s spans lines", h.Name)
	}
	return z.addLine([]byte(line))
}

func (z *zoneText) addLine(line []byte) error {
	if len(z.stage)+len(line)+1 > cap(z.stage) {
		z.flush()
	}
	z.stage = append(append(z.stage, line...), '\n')
	z.records++
	if z.pack.size+len(z.stage) > maxSourceBytes {
		return fmt.Errorf("zone larger than %d MiB", maxSourceBytes>>20)
	}
	return nil
}

func (z *zoneText) flush() {
	z.pack.Write(z.stage)
	z.stage = z.stage[:0]
}

// content finishes the text; the zoneText is done with after it.
func (z *zoneText) content() packedContent {
	z.flush()
	return z.pack.finish()
}

// recordKey identifies a record regardless of its TTL and case: IXFR
// deletes a record by its data, and TTLs may differ between versions.
// A line is "owner<TAB>ttl<TAB>class<TAB>type<TAB>rdata".
func recordKey(line string) string { return string(keyInto(nil, []byte(line))) }

// keyInto writes line's key into buf (reused across lines, so streaming a
// 1.5M-line zone through a diff allocates nothing per line).
func keyInto(buf, line []byte) []byte {
	buf = buf[:0]
	if i := bytes.IndexByte(line, '\t'); i >= 0 {
		buf = append(buf, line[:i]...)
		if j := bytes.IndexByte(line[i+1:], '\t'); j >= 0 {
			line = line[i+1+j:] // from the tab after the TTL
		} else {
			line = line[i:]
		}
	}
	buf = append(buf, line...)
	for i, c := range buf {
		if 'A' <= c && c <= 'Z' {
			buf[i] = c + 'a' - 'A'
		}
	}
	return buf
}

func rrKey(rr dns.RR) string {
	h := rr.Header()
	h.Name = strings.ToLower(h.Name)
	return recordKey(rr.String())
}

// zoneDiff is the net effect of an IXFR's difference sequences.
type zoneDiff struct {
	deleted map[string]bool
	added   map[string]string // key -> line
	order   []string          // keys of added, in arrival order
}

func newZoneDiff() *zoneDiff {
	return &zoneDiff{deleted: map[string]bool{}, added: map[string]string{}}
}

func (d *zoneDiff) del(rr dns.RR) {
	k := rrKey(rr)
	delete(d.added, k)
	d.deleted[k] = true
}

func (d *zoneDiff) add(rr dns.RR) {
	h := rr.Header()
	h.Name = strings.ToLower(h.Name)
	line := rr.String()
	k := recordKey(line)
	delete(d.deleted, k)
	if _, dup := d.added[k]; !dup {
		d.order = append(d.order, k)
	}
	d.added[k] = line
}

func (d *zoneDiff) changes() int { return len(d.deleted) + len(d.added) }

// applyDiff streams the old zone text through the diff into a new text
// that starts with soa: only the old text's lines and the new one are in
// memory, never a parsed copy of the zone.
func applyDiff(old io.Reader, oldSize int, soa *dns.SOA, d *zoneDiff) (*zoneText, error) {
	out := newZoneText(oldSize + 64*len(d.added) + 256)
	if err := out.add(soa); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(old)
	sc.Buffer(make([]byte, 0, 64<<10), maxRPZEntry+maxLineLen)
	var k []byte
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		k = keyInto(k, line)
		if d.deleted[string(k)] || isSOAKey(k) {
			continue
		}
		if _, readd := d.added[string(k)]; readd {
			continue // appended below, so never twice
		}
		if err := out.addLine(line); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the kept zone: %w", err)
	}
	for _, k := range d.order {
		if line, ok := d.added[k]; ok && !isSOAKey([]byte(k)) {
			if err := out.addLine([]byte(line)); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// isSOAKey reports a record key of type SOA (owner, class, type, rdata).
func isSOAKey(key []byte) bool {
	for range 2 { // past the owner and the class
		i := bytes.IndexByte(key, '\t')
		if i < 0 {
			return false
		}
		key = key[i+1:]
	}
	return bytes.HasPrefix(key, []byte("soa\t"))
}

// keptSOA reads the SOA from the first line of kept zone text.
func keptSOA(r io.Reader) (*dns.SOA, error) {
	line, err := bufio.NewReaderSize(r, 4096).ReadString('\n')
	if err != nil && line == "" {
		return nil, fmt.Errorf("no SOA record: %w", err)
	}
	rr, err := dns.NewRR(line)
	if err != nil {
		return nil, fmt.Errorf("first line is not a record: %w", err)
	}
	soa, ok := rr.(*dns.SOA)
	if !ok {
		return nil, fmt.Errorf("first record is %s, not SOA", dns.TypeToString[rr.Header().Rrtype])
	}
	return soa, nil
}
