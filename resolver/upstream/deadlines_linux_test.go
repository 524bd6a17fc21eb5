package upstream

import (
	"testing"
	"time"
)

func TestDeadlineHeapOrders(t *testing.T) {
	var d deadlines
	base := time.Unix(1000, 0)
	for _, s := range []int{5, 1, 9, 3, 7, 2, 8, 0, 6, 4} {
		d.push(timer{at: base.Add(time.Duration(s) * time.Second), idx: int32(s)})
	}
	for want := range 10 {
		if got := d.pop(); got.idx != int32(want) {
			t.Fatalf("pop %d gave timer %d", want, got.idx)
		}
	}
}
