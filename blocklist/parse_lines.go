package blocklist

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

const (
	// maxLineLen caps one list line; no real entry comes close, and a
	// hostile 10 MB line is skipped in bounded memory.
	maxLineLen = 4 << 10
	readBufLen = 64 << 10
	// maxRejectedText keeps a rejected line readable in reports.
	maxRejectedText = 80
)

// lineStatus says whether a line can be parsed.
type lineStatus uint8

const (
	lineOK      lineStatus = iota
	lineTooLong            // over maxLineLen; text holds its start
	lineJunk               // control characters or invalid UTF-8
)

// lineReader yields lines without their line ending (LF or CRLF) and
// without a leading UTF-8 BOM. It fails on NUL bytes: text lists never
// contain them, binary files almost always do.
type lineReader struct {
	br     *bufio.Reader
	line   int
	prefix []byte // start of an over-long line, for reporting
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, readBufLen)}
}

// errNotText marks input that is binary rather than a list.
var errNotText = errors.New("not a text list")

// next returns the next line. The slice is valid until the next call.
// At the end of input it returns io.EOF.
func (lr *lineReader) next() ([]byte, lineStatus, error) {
	b, err := lr.br.ReadSlice('\n')
	if len(b) == 0 && err != nil {
		if err == io.EOF {
			return nil, lineOK, io.EOF
		}
		return nil, lineOK, fmt.Errorf("reading line %d: %w", lr.line+1, err)
	}
	lr.line++
	if err == bufio.ErrBufferFull {
		return lr.skipLong(b)
	}
	if err != nil && err != io.EOF {
		return nil, lineOK, fmt.Errorf("reading line %d: %w", lr.line, err)
	}
	b = trimLineEnd(b)
	if lr.line == 1 {
		if lr.utf16(b) {
			return nil, lineOK, fmt.Errorf("line 1: UTF-16 text: %w (save the list as UTF-8)", errNotText)
		}
		b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	}
	if bytes.IndexByte(b, 0) >= 0 {
		return nil, lineOK, lr.nulError()
	}
	if len(b) > maxLineLen {
		return b[:maxRejectedText], lineTooLong, nil
	}
	if !isText(b) {
		return b, lineJunk, nil
	}
	return b, lineOK, nil
}

// skipLong discards the rest of a line longer than the read buffer,
// still checking every chunk for NUL bytes.
func (lr *lineReader) skipLong(first []byte) ([]byte, lineStatus, error) {
	if bytes.IndexByte(first, 0) >= 0 {
		return nil, lineOK, lr.nulError()
	}
	lr.prefix = append(lr.prefix[:0], first[:maxRejectedText]...)
	for {
		chunk, err := lr.br.ReadSlice('\n')
		if bytes.IndexByte(chunk, 0) >= 0 {
			return nil, lineOK, lr.nulError()
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == nil || err == io.EOF:
			return lr.prefix, lineTooLong, nil
		default:
			return nil, lineOK, fmt.Errorf("reading line %d: %w", lr.line, err)
		}
	}
}

func (lr *lineReader) nulError() error {
	return fmt.Errorf("line %d: NUL byte: %w (binary data?)", lr.line, errNotText)
}

// utf16 spots a UTF-16 byte order mark, whose ASCII would otherwise be
// reported as NUL bytes.
func (lr *lineReader) utf16(b []byte) bool {
	return bytes.HasPrefix(b, []byte{0xff, 0xfe}) || bytes.HasPrefix(b, []byte{0xfe, 0xff})
}

func trimLineEnd(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

// isText reports valid UTF-8 without control characters other than tab.
func isText(b []byte) bool {
	ascii := true
	for _, c := range b {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
		if c >= 0x80 {
			ascii = false
		}
	}
	return ascii || utf8.Valid(b)
}

// readableText cuts a line for a report and replaces what would garble a
// log line.
func readableText(b []byte) string {
	if len(b) > maxRejectedText {
		b = b[:maxRejectedText]
	}
	s := []rune(string(bytes.ToValidUTF8(b, []byte("?"))))
	for i, r := range s {
		switch {
		case r == '\n' || r == '\t':
			s[i] = ' '
		case r < 0x20 || r == 0x7f:
			s[i] = '?'
		}
	}
	return strings.TrimSpace(string(s))
}
