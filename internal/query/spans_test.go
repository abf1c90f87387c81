package query

import (
	"testing"

	"github.com/hearth-profiler/hearth/internal/labels"
)

func TestSpanSelectionKeep(t *testing.T) {
	sel := &SpanSelection{IDs: map[[8]byte]struct{}{
		{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}: {},
		{0, 0, 0, 0, 0, 0, 0x30, 0x39}:                   {}, // 12345
	}}
	for _, c := range []struct {
		set  labels.Labels
		want bool
	}{
		{labels.FromStrings("span_id", "00f067aa0ba902b7"), true},
		{labels.FromStrings("span_id", "1111111111111111", "local_root_span_id", "00f067aa0ba902b7"), true},
		{labels.FromStrings("span id", "99", "local root span id", "12345"), true}, // Datadog's, in decimal
		{labels.FromStrings("span_id", "1111111111111111"), false},
		{labels.FromStrings("span_id", "not an id"), false},
		{labels.FromStrings("thread_name", "main"), false},
		{labels.FromStrings(), false},
	} {
		if got := sel.keep(c.set); got != c.want {
			t.Errorf("keep(%v) = %v, want %v", c.set, got, c.want)
		}
	}
}
