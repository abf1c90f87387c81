package api_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hearth-profiler/hearth/internal/api"
	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/profiletest"
	"github.com/hearth-profiler/hearth/internal/query"
)

// TestIngestStorageFailureIsUnavailable: when the log cannot be written,
// /ingest answers as the other ways in do: 503 with Retry-After, so that
// clients retry, and the failure is logged once, not once per request.
func TestIngestStorageFailureIsUnavailable(t *testing.T) {
	s := profiletest.OpenStore(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	ing := ingest.New(s.DB, ingest.DefaultProfileLimits(), logger)
	a := api.New(ing, query.NewEngine(s.DB), api.Options{}, logger)
	mux := http.NewServeMux()
	a.Register(mux)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	if err := s.DB.Close(); err != nil {
		t.Fatal(err)
	}
	const n = 3
	for range n {
		req, err := http.NewRequest(http.MethodPost, ts.URL+"/ingest?name=app.cpu", strings.NewReader("a;b 1\n"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503", resp.StatusCode)
		}
		if got := resp.Header.Get("Retry-After"); got != "5" {
			t.Errorf("Retry-After %q, want 5", got)
		}
	}
	if got := strings.Count(logs.String(), "storage failed"); got != 1 {
		t.Errorf("storage failure logged %d times for %d requests, want once:\n%s", got, n, logs.String())
	}
	if st := ing.Stats(); st.Failed != n {
		t.Errorf("Stats().Failed = %d, want %d", st.Failed, n)
	}
}
