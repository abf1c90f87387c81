package ingesters

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hearth-profiler/hearth/internal/storage"
	"github.com/hearth-profiler/hearth/internal/tenant"
)

// TestClientFetch: the client forwards the caller's Authorization and
// the tenant, reads every ingester's answer, and fails with an
// IngesterError naming each ingester that answers with an error or not
// in time; the metrics count both.
func TestClientFetch(t *testing.T) {
	var gotAuth, gotTenant, gotStart string
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotTenant, gotStart = r.Header.Get("Authorization"), r.Header.Get(tenant.Header), r.URL.Query().Get("start")
		if r.URL.Path != Path {
			http.NotFound(w, r)
			return
		}
		s := &storage.HeadSnapshot{Instance: "ing-a", Watermark: 3}
		s.WriteTo(w)
	}))
	defer ok.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "storage is closed", http.StatusInternalServerError)
	}))
	defer failing.Close()
	release := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hanging.Close()
	defer close(release)
	addr := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

	ctx := context.Background()
	reg := prometheus.NewRegistry()
	d, err := Parse(addr(ok), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(d, Options{Timeout: 200 * time.Millisecond, Registerer: reg})
	snaps, err := c.Fetch(ctx, []string{"Bearer s3cret"}, "team-a", 5, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 1 || snaps[0].Instance != "ing-a" || snaps[0].Watermark != 3 {
		t.Errorf("snapshots %+v", snaps)
	}
	if gotAuth != "Bearer s3cret" || gotTenant != "team-a" || gotStart != "5" {
		t.Errorf("ingester got Authorization %q, tenant %q, start %q", gotAuth, gotTenant, gotStart)
	}

	d, _ = Parse(strings.Join([]string{addr(ok), addr(failing), addr(hanging)}, ","), nil, nil)
	c = NewClient(d, Options{Timeout: 200 * time.Millisecond})
	_, err = c.Fetch(ctx, nil, "team-a", 5, 10)
	var ie *storage.IngesterError
	if !errors.As(err, &ie) {
		t.Fatalf("Fetch with ingesters failing: %v, want an IngesterError", err)
	}
	for _, s := range []*httptest.Server{failing, hanging} {
		if !strings.Contains(err.Error(), addr(s)) {
			t.Errorf("error %q does not name %s", err, addr(s))
		}
	}
	if strings.Contains(err.Error(), addr(ok)+" did not answer") {
		t.Errorf("error %q names the ingester that answered", err)
	}
	if n := testutil.ToFloat64(c.requests.WithLabelValues(addr(failing), "failure")); n != 1 {
		t.Errorf("failures of %s counted %v, want 1", addr(failing), n)
	}
	if n := testutil.ToFloat64(c.requests.WithLabelValues(addr(ok), "success")); n != 1 {
		t.Errorf("successes of %s counted %v, want 1", addr(ok), n)
	}
}
