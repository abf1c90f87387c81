package query

import (
	"testing"

	"github.com/hearth-profiler/hearth/internal/storage"
)

func TestSpanSelectionKeep(t *testing.T) {
	sel := &SpanSelection{}
	sel.IDs.Add(0x00f067aa0ba902b7)
	sel.IDs.Add(12345)
	for _, c := range []struct {
		r    storage.SpanRef
		want bool
	}{
		{storage.SpanRef{Span: 0x00f067aa0ba902b7}, true},
		{storage.SpanRef{Span: 0x1111111111111111, Root: 0x00f067aa0ba902b7}, true},
		{storage.SpanRef{Span: 99, Root: 12345}, true},
		{storage.SpanRef{Span: 0x1111111111111111}, false},
		{storage.SpanRef{Trace: [16]byte{15: 1}}, false},
		{storage.SpanRef{}, false},
	} {
		if got := sel.keep(c.r); got != c.want {
			t.Errorf("keep(%+v) = %v, want %v", c.r, got, c.want)
		}
	}
}

func TestSpanIDs(t *testing.T) {
	var s SpanIDs
	want := map[uint64]bool{}
	x := uint64(1)
	for i := range 100000 {
		// Random IDs, and runs of consecutive ones (test data, some
		// tracers' counters).
		x = x*6364136223846793005 + 1442695040888963407
		id := x
		if i%3 == 0 {
			id = uint64(i)
		}
		if got := s.Add(id); got != !want[id] && id != 0 {
			t.Fatalf("Add(%d) = %v, had it: %v", id, got, want[id])
		}
		if id != 0 {
			want[id] = true
		}
	}
	if s.Len() != len(want) {
		t.Fatalf("Len %d, want %d", s.Len(), len(want))
	}
	for id := range want {
		if !s.Has(id) {
			t.Fatalf("lost %d", id)
		}
	}
	for _, id := range []uint64{0, 1<<63 + 5, 0xdeadbeef} {
		if s.Has(id) != want[id] {
			t.Errorf("Has(%d) = %v", id, !want[id])
		}
	}
	if s.Add(0) || s.Has(0) {
		t.Error("zero is a span ID")
	}
	var empty SpanIDs
	if empty.Has(7) || empty.Len() != 0 {
		t.Error("the empty set has something")
	}
}
