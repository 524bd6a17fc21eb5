package blocklist

import (
	"bytes"
	"crypto/sha256"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/s2"
)

// contentPacker packs content as it is written, for sources that produce
// their text piece by piece (zone transfers): the whole text is never in
// memory, only its packed form.
type contentPacker struct {
	buf   bytes.Buffer
	w     *s2.Writer
	sum   hash.Hash
	size  int
	lines int
}

// newContentPacker expects about sizeHint bytes of text (S2 packs list
// text to about a third).
func newContentPacker(sizeHint int) *contentPacker {
	p := &contentPacker{sum: sha256.New()}
	p.buf.Grow(sizeHint/3 + 64)
	p.w = s2.NewWriter(&p.buf, s2.WriterConcurrency(1))
	return p
}

func (p *contentPacker) Write(b []byte) (int, error) {
	p.w.Write(b) // writes to a bytes.Buffer do not fail
	p.sum.Write(b)
	p.size += len(b)
	p.lines += bytes.Count(b, []byte("\n"))
	return len(b), nil
}

// finish returns the packed content, as packContent would have made it.
func (p *contentPacker) finish() packedContent {
	p.w.Close()
	data := p.buf.Bytes()
	if cap(data)-len(data) > len(data)/4 {
		data = bytes.Clone(data)
	}
	c := packedContent{data: data, size: p.size, lines: p.lines + 1}
	copy(c.sum[:], p.sum.Sum(nil))
	return c
}

// saveContent writes packed content's text to the source's saved copy,
// streaming, atomically (temp file, fsync, rename).
func (e *Engine) saveContent(s *source, c packedContent) {
	path := e.diskCopyPath(s)
	if path == "" {
		return
	}
	if err := writeStreamAtomic(path, c.reader()); err != nil {
		e.log.Warn("blocklist: cannot save copy of source; a restart while it is unreachable will lack it",
			"source", s.display, "path", path, "error", err)
	}
}

func writeStreamAtomic(path string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
