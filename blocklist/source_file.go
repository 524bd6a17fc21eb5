package blocklist

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// fileStamp is what polling compares to notice a changed file.
type fileStamp struct {
	size    int64
	modTime time.Time
}

func resolvePath(baseDir, p string) string {
	if filepath.IsAbs(p) || baseDir == "" {
		return filepath.Clean(p)
	}
	return filepath.Join(baseDir, p)
}

func statFile(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	if !fi.Mode().IsRegular() {
		return fileStamp{}, fmt.Errorf("%s is not a regular file", path)
	}
	return fileStamp{size: fi.Size(), modTime: fi.ModTime()}, nil
}

// readFile reads a whole list file, refusing anything larger than maxSourceBytes.
func readFile(path string) (fetched, error) {
	f, err := os.Open(path)
	if err != nil {
		return fetched{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fetched{}, err
	}
	if !fi.Mode().IsRegular() {
		return fetched{}, fmt.Errorf("%s is not a regular file", path)
	}
	stamp := fileStamp{size: fi.Size(), modTime: fi.ModTime()}
	body, err := readAllSized(f, fi.Size())
	if err != nil {
		return fetched{stamp: stamp}, fmt.Errorf("read %s: %w", path, err)
	}
	if len(body) > maxSourceBytes {
		return fetched{stamp: stamp}, fmt.Errorf("%s is larger than %d MiB", path, maxSourceBytes>>20)
	}
	return fetched{body: body, stamp: stamp}, nil
}

// fileChanged reports whether a polled file differs from when it was last
// read. A stat error counts as a change only when it is a new error, so a
// missing file is reported once, not every poll.
func fileChanged(s *source) bool {
	st, err := statFile(s.path)
	if err != nil {
		if err.Error() == s.statErr {
			return false
		}
		s.statErr = err.Error()
		return true
	}
	s.statErr = ""
	return st.size != s.stamp.size || !st.modTime.Equal(s.stamp.modTime)
}

// readAllSized reads r to the end into a buffer sized for the expected
// length, so a 30 MB list is read without io.ReadAll's growing copies. It
// reads at most maxSourceBytes+1 bytes.
func readAllSized(r io.Reader, expected int64) ([]byte, error) {
	const limit = maxSourceBytes + 1
	buf := make([]byte, 0, min(max(expected, 0)+1, limit))
	for len(buf) < limit {
		if len(buf) == cap(buf) { // the file grew while being read
			buf = slices.Grow(buf, min(len(buf), limit-len(buf)))
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), limit)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}
