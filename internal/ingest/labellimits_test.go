package ingest

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestLabelLengthLimits: a series label name or value over its limit is
// refused as too large, naming the label and the flag; one at the limit,
// and any length with the limits off (replay), is taken.
func TestLabelLengthLimits(t *testing.T) {
	lim := DefaultProfileLimits()
	lim.MaxLabelNameLength, lim.MaxLabelValueLength = 16, 32
	folded := func(labels string) *Request {
		return &Request{Name: "app.cpu{" + labels + "}", Format: "folded", Profile: []byte("main;work 1\n")}
	}
	for _, c := range []struct {
		name, labels, want string
	}{
		{"value at the limit", "k=" + strings.Repeat("v", 32), ""},
		{"name at the limit", strings.Repeat("n", 16) + "=v", ""},
		{"value over", "k=" + strings.Repeat("v", 33), "label k: a value of 33 bytes is over the limit of 32 (max_label_value_length, --limits.max-label-value-length)"},
		{"name over", strings.Repeat("n", 17) + "=v", "over the limit of 16 (max_label_name_length, --limits.max-label-name-length)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(folded(c.labels), lim, time.Unix(1700000000, 0))
			if c.want == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				return
			}
			ie, ok := errors.AsType[*InputError](err)
			if !ok || ie.Reason != ReasonTooLarge || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Decode: %v, want too large: %q", err, c.want)
			}
			if _, err := Decode(folded(c.labels), ProfileLimits{}, time.Unix(1700000000, 0)); err != nil {
				t.Errorf("with no limits (replay): %v", err)
			}
		})
	}
}
