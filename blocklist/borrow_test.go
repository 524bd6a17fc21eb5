package blocklist

import (
	"reflect"
	"testing"
	"unsafe"
)

// Decide may be given a name that borrows the caller's buffer (the
// resolver's scratch space): overwriting the buffer after the call must
// not change the Verdict, so nothing in it may point into the name.
func TestVerdictOutlivesABorrowedName(t *testing.T) {
	e := policyEngine(t)
	buf := []byte("v16-webapp.tiktok.com.")
	name := unsafe.String(&buf[0], len(buf))
	v := e.Decide(addr("10.1.1.1"), name)
	want := v
	want.Group, want.List, want.Rule = string([]byte(v.Group)), string([]byte(v.List)), string([]byte(v.Rule))
	for i := range buf {
		buf[i] = 'x'
	}
	if v.Action != Block || !reflect.DeepEqual(v, want) {
		t.Fatalf("verdict changed when the name's buffer was overwritten: %+v, was %+v", v, want)
	}
}
