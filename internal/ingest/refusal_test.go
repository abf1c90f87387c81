package ingest

import (
	"errors"
	"fmt"
	"testing"
)

// TestReasonNames: the names are the API's error types and the label
// values of hearth_ingest_profiles_refused_total, which dashboards and
// clients match on; they must not change.
func TestReasonNames(t *testing.T) {
	for r, want := range map[Reason]string{
		ReasonBadData:     "bad_data",
		ReasonUnsupported: "unsupported",
		ReasonTooLarge:    "too_large",
		ReasonSeriesLimit: "series_limit",
		numReasons:        "Reason(4)",
	} {
		if got := r.String(); got != want {
			t.Errorf("Reason(%d).String() = %q, want %q", uint8(r), got, want)
		}
	}
}

func TestRefusalConstructors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want Reason
	}{
		{BadData("x %d", 1), ReasonBadData},
		{Unsupported("x %d", 1), ReasonUnsupported},
		{TooLarge("x %d", 1), ReasonTooLarge},
	} {
		ie, ok := errors.AsType[*InputError](fmt.Errorf("wrapped: %w", tc.err))
		if !ok || ie.Reason != tc.want || ie.Msg != "x 1" {
			t.Errorf("%#v, want reason %v and message %q", tc.err, tc.want, "x 1")
		}
	}
}

// TestStatsByReason: each refusal is counted under its reason's name, and
// what is not an *InputError, or has no known reason, under "other".
func TestStatsByReason(t *testing.T) {
	ig := New(nil, DefaultProfileLimits(), nil)
	for _, why := range []error{
		BadData("a"), BadData("b"), TooLarge("c"), Unsupported("d"),
		errors.New("e"), &InputError{Reason: numReasons + 4, Msg: "f"},
	} {
		ig.countOne("t", &Request{}, why, nil)
	}
	want := map[string]uint64{"bad_data": 2, "unsupported": 1, "too_large": 1, "series_limit": 0, "other": 2}
	got := ig.Stats().Refused
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Refused = %v, want %v", got, want)
	}
}
