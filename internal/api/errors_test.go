package api

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/query"
)

// TestErrorStatusOfRefusals: each reason of an ingest refusal has its
// status, and its name is the error type that clients match on.
func TestErrorStatusOfRefusals(t *testing.T) {
	for _, tc := range []struct {
		err       error
		status    int
		errorType string
	}{
		{ingest.BadData("x"), http.StatusBadRequest, "bad_data"},
		{ingest.Unsupported("x"), http.StatusUnsupportedMediaType, "unsupported"},
		{fmt.Errorf("wrapped: %w", ingest.TooLarge("x")), http.StatusRequestEntityTooLarge, "too_large"},
		{&ingest.InputError{Reason: 99, Msg: "x"}, http.StatusBadRequest, "bad_data"},
		{&http.MaxBytesError{Limit: 1}, http.StatusRequestEntityTooLarge, "too_large"},
		{badRequest("x"), http.StatusBadRequest, "bad_data"},
		{fmt.Errorf("read body: %w", &ingest.BusyError{Max: 1}), http.StatusTooManyRequests, "busy"},
		{fmt.Errorf("ingest: %w", &ingest.StorageError{Err: errors.New("no space left on device")}), http.StatusServiceUnavailable, "unavailable"},
		{&ingest.InputError{Reason: ingest.ReasonSeriesLimit, Msg: "x"}, http.StatusBadRequest, "series_limit"},
		{&ingest.RateLimitedError{RetryAfter: time.Second}, http.StatusTooManyRequests, "rate_limited"},
		{fmt.Errorf("baseline: %w", &query.LimitError{}), http.StatusUnprocessableEntity, "limit"},
		{&QueryTimeoutError{}, http.StatusUnprocessableEntity, "limit"},
		{&TooManyQueriesError{}, http.StatusTooManyRequests, "busy"},
	} {
		status, typ := errorStatus(tc.err)
		if status != tc.status || typ != tc.errorType {
			t.Errorf("errorStatus(%v) = %d %s, want %d %s", tc.err, status, typ, tc.status, tc.errorType)
		}
	}
}
