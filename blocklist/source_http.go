package blocklist

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// fetchURL GETs a URL source, conditionally when the server gave validators.
func (e *Engine) fetchURL(ctx context.Context, s *source) (fetched, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.path, nil)
	if err != nil {
		return fetched{}, err
	}
	req.Header.Set("User-Agent", "dnsward")
	if s.haveContent {
		if s.etag != "" {
			req.Header.Set("If-None-Match", s.etag)
		}
		if s.lastModified != "" {
			req.Header.Set("If-Modified-Since", s.lastModified)
		}
	}
	resp, err := e.opts.HTTPClient.Do(req)
	if err != nil {
		return fetched{}, err
	}
	defer resp.Body.Close()
	f := fetched{etag: resp.Header.Get("ETag"), modified: resp.Header.Get("Last-Modified")}
	switch {
	case resp.StatusCode == http.StatusNotModified && s.haveContent:
		f.notModified = true
		return f, nil
	case resp.StatusCode != http.StatusOK:
		return fetched{}, fmt.Errorf("HTTP %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSourceBytes+1))
	if err != nil {
		return fetched{}, fmt.Errorf("reading body: %w", err)
	}
	if len(body) > maxSourceBytes {
		return fetched{}, fmt.Errorf("body larger than %d MiB", maxSourceBytes>>20)
	}
	f.body = body
	return f, nil
}

// diskCopyPath is where a URL source's last good body lives: named by a hash
// of the URL, so any URL makes a safe file name.
func (e *Engine) diskCopyPath(s *source) string {
	if e.opts.StateDir == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(s.spec))
	return filepath.Join(e.opts.StateDir, "list-"+hex.EncodeToString(sum[:16])+".txt")
}

// saveDiskCopy writes the body atomically (temp file, fsync, rename) so a
// crash never leaves a half-written copy behind.
func (e *Engine) saveDiskCopy(s *source, body []byte) {
	path := e.diskCopyPath(s)
	if path == "" {
		return
	}
	if err := writeFileAtomic(path, body); err != nil {
		e.log.Warn("blocklist: cannot save copy of URL source; a restart while it is unreachable will lack it",
			"source", s.display, "path", path, "error", err)
	}
}

func writeFileAtomic(path string, data []byte) error {
	return writeStreamAtomic(path, bytes.NewReader(data))
}

// loadDiskCopy makes the saved copy of a URL source its content and returns
// when it was saved. No shrink check: there is nothing to compare with.
func (e *Engine) loadDiskCopy(s *source) (time.Time, bool) {
	path := e.diskCopyPath(s)
	if path == "" {
		return time.Time{}, false
	}
	f, err := readFile(path)
	if err != nil {
		if !os.IsNotExist(err) {
			e.log.Warn("blocklist: cannot read saved copy of URL source", "source", s.display, "path", path, "error", err)
		}
		return time.Time{}, false
	}
	var count ruleCounter
	p, err := parseInto(bytes.NewReader(f.body), &count)
	if err != nil {
		e.log.Warn("blocklist: saved copy of URL source does not parse", "source", s.display, "path", path, "error", err)
		return time.Time{}, false
	}
	s.content, s.haveContent = packContent(f.body), true
	s.rules, s.format = int(count), p.Format
	s.parseRej, s.parseRejN = p.Rejected, p.RejectedCount
	s.lastSuccess = f.stamp.modTime
	s.outcome = "loaded the saved copy"
	return f.stamp.modTime, true
}
