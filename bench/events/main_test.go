package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/bench/spans"
)

// fakePeer answers queries from an httptest server; the process measured
// is the test's own.
type fakePeer struct{ tenant string }

func (fakePeer) name() string                  { return "fake" }
func (fakePeer) start() (time.Duration, error) { return 0, nil }
func (fakePeer) stop() error                   { return nil }
func (fakePeer) kill()                         {}
func (fakePeer) pid() int                      { return os.Getpid() }
func (fakePeer) otlpAddr() string              { return "" }
func (fakePeer) dataDir() string               { return "" }
func (fakePeer) writeOut(spans.Stats, time.Duration, time.Duration) (writeOut, error) {
	return writeOut{}, nil
}
func (fakePeer) disk() (diskFigures, error)                    { return diskFigures{}, nil }
func (fakePeer) queries(queryRange, spans.TraceSample) []query { return nil }
func (p fakePeer) header() http.Header                         { return http.Header{"X-Scope-OrgID": {p.tenant}} }

func TestRunQuery(t *testing.T) {
	mux := http.NewServeMux()
	var tenants []string
	mux.HandleFunc("GET /api/v1/events/query", func(w http.ResponseWriter, r *http.Request) {
		tenants = append(tenants, r.Header.Get("X-Scope-OrgID"))
		fmt.Fprint(w, `{"status":"success","data":{"groups":[{"by":{"span.http.route":"/a"}},{"by":{"span.http.route":"/b/{id}"}}]}}`)
	})
	mux.HandleFunc("GET /api/v1/events/trace/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"status":"error","errorType":"not_found","error":"trace has no events"}`)
	})
	mux.HandleFunc("GET /api/search", func(w http.ResponseWriter, r *http.Request) {
		// Tempo writes span IDs in base64: 0102030405060708.
		fmt.Fprint(w, `{"traces":[{"spanID":"AQIDBAUGBwg="}]}`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := checker{routes: []string{"/a", "/b/{id}", "/c"}, spanIDs: []string{"0102030405060708", "1112131415161718"}}
	p := fakePeer{tenant: "bench"}

	qr := runQuery(p, query{Name: queryGroupBy, URL: srv.URL + "/api/v1/events/query?q=x"}, 2, c)
	if qr.Status != "measured" || len(qr.WarmMs) != 2 || qr.Check != "2 of 3 routes in the answer" || qr.Request != "/api/v1/events/query?q=x" {
		t.Errorf("group by: %+v", qr)
	}
	if strings.Join(tenants, ",") != "bench,bench,bench" {
		t.Errorf("tenants sent: %q", tenants)
	}
	// The router's 404: the endpoint is missing, not measured.
	qr = runQuery(p, query{Name: queryCompare, URL: srv.URL + "/api/v1/events/compare"}, 2, c)
	if !strings.HasPrefix(qr.Status, "not measured (endpoint missing") || qr.ColdMs != 0 {
		t.Errorf("missing endpoint: %+v", qr)
	}
	// The API's 404: the endpoint is there and the answer is wrong.
	qr = runQuery(p, query{Name: queryTrace, URL: srv.URL + "/api/v1/events/trace/01"}, 2, c)
	if !strings.HasPrefix(qr.Status, "error: 404") {
		t.Errorf("trace not found: %+v", qr)
	}
	if got := c.check(queryTrace, []byte(`{"trace":{"spanId":"AQIDBAUGBwg="}}`)); got != "1 of the trace's 2 spans in the answer" {
		t.Errorf("trace check: %q", got)
	}
	qr = runQuery(p, query{Name: querySearch, URL: srv.URL + "/api/search"}, 1, c)
	if qr.Check != "1 traces in the answer" {
		t.Errorf("search: %+v", qr)
	}
}
