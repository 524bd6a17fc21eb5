package metrics

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"strconv"
)

// auditSink is where the audit writer puts whole batches of lines.
type auditSink interface {
	io.Writer
	Reopen() error
	Close() error
}

// streamSink writes to a stream it does not own (stdout).
type streamSink struct{ io.Writer }

func (streamSink) Reopen() error { return nil }
func (streamSink) Close() error  { return nil }

// rotatingFile appends to path and, before a write would take it past
// maxBytes, shifts path → path.1 → … → path.maxFiles (dropping the oldest)
// and starts a new file. Only regular files rotate: a device such as
// /dev/full or a FIFO is written as is. Used by one goroutine only.
type rotatingFile struct {
	path     string
	maxBytes int64
	maxFiles int
	f        *os.File
	size     int64
	regular  bool
}

func openRotatingFile(path string, maxBytes int64, maxFiles int) (*rotatingFile, error) {
	r := &rotatingFile{path: path, maxBytes: maxBytes, maxFiles: maxFiles}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *rotatingFile) open() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	r.f, r.size, r.regular = f, fi.Size(), fi.Mode().IsRegular()
	return nil
}

func (r *rotatingFile) Write(p []byte) (int, error) {
	if r.f == nil { // an earlier rotate or reopen failed: try again
		if err := r.open(); err != nil {
			return 0, err
		}
	}
	if r.regular && r.size > 0 && r.size+int64(len(p)) > r.maxBytes {
		if err := r.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

func (r *rotatingFile) rotate() error {
	if err := r.closeFile(); err != nil {
		return err
	}
	name := func(i int) string { return r.path + "." + strconv.Itoa(i) }
	if err := os.Remove(name(r.maxFiles)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for i := r.maxFiles - 1; i >= 1; i-- {
		if err := os.Rename(name(i), name(i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := os.Rename(r.path, name(1)); err != nil {
		return err
	}
	return r.open()
}

// Reopen closes and reopens path, for external rotation (logrotate + SIGHUP).
func (r *rotatingFile) Reopen() error {
	if err := r.closeFile(); err != nil {
		return err
	}
	return r.open()
}

func (r *rotatingFile) Close() error { return r.closeFile() }

func (r *rotatingFile) closeFile() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
