package blocklist

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"io"
)

// packedContent is a source's last good content, kept compressed: lists are
// repetitive text that flate shrinks several times over, and the content is
// read only to rebuild the index or to explain a match. It is never modified
// after packing, so snapshots share it with the source.
type packedContent struct {
	data []byte   // flate stream
	size int      // uncompressed length
	sum  [32]byte // SHA-256 of the uncompressed bytes, to spot unchanged content
}

func packContent(raw []byte) packedContent {
	var buf bytes.Buffer
	buf.Grow(len(raw)/3 + 64)
	w, _ := flate.NewWriter(&buf, flate.BestSpeed) // cannot fail for a valid level
	w.Write(raw)                                   // writes to a bytes.Buffer do not fail
	w.Close()
	return packedContent{data: bytes.Clone(buf.Bytes()), size: len(raw), sum: sha256.Sum256(raw)}
}

// reader streams the uncompressed content.
func (c packedContent) reader() io.Reader {
	return flate.NewReader(bytes.NewReader(c.data))
}

// parse parses the content; it parsed when it was accepted, so an error here
// means memory corruption and is only reported.
func (c packedContent) parse() (Parsed, error) {
	if c.size == 0 {
		return Parsed{}, nil
	}
	return Parse(c.reader())
}
