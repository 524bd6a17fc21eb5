package metrics

import (
	"context"
	"net/netip"
	"testing"
	"time"
	"unsafe"
)

// Observe is handed names that borrow the resolver's scratch buffer; the
// top counter must keep its own copy, not the buffer, which the next
// query overwrites.
func TestTopKeepsItsOwnCopyOfABorrowedName(t *testing.T) {
	tc := newTestTop(t, time.Hour, 100, time.Now())
	tc.Start(context.Background())
	defer tc.Close()
	buf := []byte("www.tiktok.com.")
	tc.Observe(unsafe.String(&buf[0], len(buf)), netip.MustParseAddr("127.0.0.1"), false, time.Time{})
	copy(buf, "xxx.xxxxxx.xxx.")
	tc.sync()
	res, err := tc.Top("name", 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) != 1 || res.Entries[0].Key != "www.tiktok.com." {
		t.Fatalf("top names %+v after the buffer was overwritten, want www.tiktok.com.", res.Entries)
	}
}
