package main

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

var (
	hasLine       = regexp.MustCompile(`^line \d+: `)
	unknownAnchor = regexp.MustCompile(`^unknown anchor '([^']*)' referenced`)
)

// withLine gives a YAML error that yaml.v3 reports without a line the
// line it is about: bad bytes and unknown anchors are found in data, and
// the other errors it leaves unlocated are on the first line. Every
// syntax error then points somewhere in the file.
func withLine(msg string, data []byte) string {
	if hasLine.MatchString(msg) {
		return msg
	}
	line := 0
	switch {
	case strings.Contains(msg, "control characters"):
		line = lineOfRune(data, func(r rune, size int) bool { return r != utf8.RuneError && !yamlPrintable(r) })
	case strings.Contains(msg, "UTF-8"):
		line = lineOfRune(data, func(r rune, size int) bool { return r == utf8.RuneError && size <= 1 })
	case unknownAnchor.MatchString(msg):
		alias := "*" + unknownAnchor.FindStringSubmatch(msg)[1]
		if i := bytes.Index(data, []byte(alias)); i >= 0 {
			line = 1 + bytes.Count(data[:i], []byte("\n"))
		}
	default:
		// yaml.v3 leaves the line out when its mark is on the first line
		// (decode.go, parser.fail): line 0, counting from zero.
		line = 1
	}
	if line == 0 {
		return msg
	}
	return fmt.Sprintf("line %d: %s", line, msg)
}

// lineOfRune returns the line of the first rune bad reports, or 0.
func lineOfRune(data []byte, bad func(r rune, size int) bool) int {
	line := 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if bad(r, size) {
			return line
		}
		if r == '\n' {
			line++
		}
		i += size
	}
	return 0
}

// yamlPrintable is YAML 1.2's c-printable set (§5.1), which yaml.v3 enforces.
func yamlPrintable(r rune) bool {
	switch {
	case r == '\t', r == '\n', r == '\r', r == 0x85:
		return true
	case r >= 0x20 && r <= 0x7e, r >= 0xa0 && r <= 0xd7ff, r >= 0xe000 && r <= 0xfffd, r >= 0x10000 && r <= 0x10ffff:
		return true
	}
	return false
}
