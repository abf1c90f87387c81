package query

import (
	"testing"

	"github.com/hearth-profiler/hearth/internal/storage"
)

func TestSpanSelectionKeep(t *testing.T) {
	sel := &SpanSelection{IDs: map[uint64]struct{}{0x00f067aa0ba902b7: {}, 12345: {}}}
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
