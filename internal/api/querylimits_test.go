package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/limits"
	"github.com/hearth-profiler/hearth/internal/query"
	"github.com/hearth-profiler/hearth/internal/storage"
)

// limitedAPI serves an API whose tenants have the limits of tab, over a
// store holding five services' CPU profiles for tenants a and b.
func limitedAPI(t *testing.T, tab limits.Table) (*API, string, *limits.Refusals) {
	t.Helper()
	db, err := storage.Open(t.TempDir(), nil, storage.Options{Decode: ingest.Replay})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ing := ingest.New(db, ingest.DefaultProfileLimits(), nil)
	for _, tenant := range []string{"a", "b"} {
		for i := range 5 {
			err := ing.Ingest(context.Background(), tenant, &ingest.Request{Name: fmt.Sprintf("svc%d.cpu", i), Format: "folded",
				From: time.Now().Add(-time.Minute).UnixNano(), Profile: []byte("main;work 3\nmain;idle 1\n")})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	o := limits.NewOverrides(limits.Defaults())
	o.Set(tab)
	r := &limits.Refusals{}
	a := New(ing, query.NewEngine(db), Options{Limits: o, Refusals: r}, nil)
	mux := http.NewServeMux()
	a.Register(mux)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return a, ts.URL, r
}

// queryAs runs GET path?query=cpu{} as tenant and returns the status, the
// Retry-After header and the decoded answer.
func queryAs(t *testing.T, base, path, tenant string) (int, string, response) {
	t.Helper()
	q := url.Values{"query": {`cpu{}`}, "from": {"now-1h"}, "until": {"now"}}
	req, _ := http.NewRequest("GET", base+path+"?"+q.Encode(), nil)
	req.Header.Set("X-Scope-OrgID", tenant)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body response
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), body
}

// TestQueryLimitsHTTP: a query past its tenant's series, sample-row or
// time limit gets 422 naming the limit, on every query route, while the
// same query of a tenant with the defaults is answered; refusals are
// counted by tenant and limit.
func TestQueryLimitsHTTP(t *testing.T) {
	def := limits.Defaults()
	series, samples, slow := def, def, def
	series.QueryMaxSeries = 2
	samples.QueryMaxSamples = 5 // each profile has 2 sample rows
	slow.QueryTimeout = time.Nanosecond
	_, base, refusals := limitedAPI(t, limits.Table{Defaults: def, Tenants: map[string]limits.Limits{"a": series}})
	for _, path := range []string{"/api/v1/query/flamegraph", "/api/v1/query/top", "/api/v1/query/series", "/api/v1/query/pprof", "/api/v1/series"} {
		code, _, body := queryAs(t, base, path, "a")
		want := "more than 2 series (query_max_series, --limits.query-max-series): it was stopped at 3"
		if path == "/api/v1/series" {
			want = "more than 2 series (query_max_series, --limits.query-max-series): it was stopped at 5" // a list is counted whole
		}
		if code != http.StatusUnprocessableEntity || body.ErrorType != "limit" || !strings.Contains(body.Error, want) {
			t.Errorf("%s over the series limit: %d %s %q; want 422 limit naming it", path, code, body.ErrorType, body.Error)
		}
		if code, _, body := queryAs(t, base, path, "b"); code != 200 {
			t.Errorf("%s of tenant b: %d %s", path, code, body.Error)
		}
	}
	if n := refusals.Count("a", limits.QueryMaxSeries); n != 5 {
		t.Errorf("series refusals = %d, want 5", n)
	}

	_, base, refusals = limitedAPI(t, limits.Table{Defaults: def, Tenants: map[string]limits.Limits{"a": samples, "b": slow}})
	code, _, body := queryAs(t, base, "/api/v1/query/flamegraph", "a")
	if code != http.StatusUnprocessableEntity || !strings.Contains(body.Error, "more than 5 sample rows (query_max_samples, --limits.query-max-samples): it was stopped at 6") {
		t.Errorf("over the sample limit: %d %q", code, body.Error)
	}
	code, _, body = queryAs(t, base, "/api/v1/query/flamegraph", "b")
	if code != http.StatusUnprocessableEntity || body.ErrorType != "limit" || !strings.Contains(body.Error, "ran longer than 1ns (query_timeout, --limits.query-timeout)") {
		t.Errorf("over the time limit: %d %s %q", code, body.ErrorType, body.Error)
	}
	if refusals.Count("a", limits.QueryMaxSamples) != 1 || refusals.Count("b", limits.QueryTimeout) != 1 {
		t.Errorf("refusals = %v", refusals.All())
	}
}

// TestQueryConcurrencyHTTP: past its tenant's concurrency a query waits
// for a turn; one that gets none in time is refused with 429 and
// Retry-After, and one let in while it waits is answered. Other tenants
// are not held up.
func TestQueryConcurrencyHTTP(t *testing.T) {
	one := limits.Defaults()
	one.QueryConcurrency = 1
	a, base, refusals := limitedAPI(t, limits.Table{Defaults: one})
	a.queueWait = 200 * time.Millisecond
	// A query of tenant a that runs: its turn is taken here.
	release, err := a.gate.acquire(context.Background(), "a", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, retry, body := queryAs(t, base, "/api/v1/query/top", "a")
	if code != http.StatusTooManyRequests || retry != "1" || body.ErrorType != "busy" || !strings.Contains(body.Error, "query_concurrency, --limits.query-concurrency") {
		t.Errorf("over the concurrency: %d Retry-After %q %s %q; want 429, 1, busy, naming the limit", code, retry, body.ErrorType, body.Error)
	}
	if waited := time.Since(start); waited < a.queueWait {
		t.Errorf("refused after %s, before the wait of %s", waited, a.queueWait)
	}
	if code, _, body := queryAs(t, base, "/api/v1/query/top", "b"); code != 200 {
		t.Errorf("tenant b while a is at its limit: %d %s", code, body.Error)
	}
	a.queueWait = 10 * time.Second
	done := make(chan int)
	go func() {
		code, _, _ := queryAs(t, base, "/api/v1/query/top", "a")
		done <- code
	}()
	for { // until the query waits for its turn
		a.gate.mu.Lock()
		n := len(a.gate.tenants["a"].waiting)
		a.gate.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	release()
	if code := <-done; code != 200 {
		t.Errorf("a query let in while it waited: %d, want 200", code)
	}
	if n := refusals.Count("a", limits.QueryConcurrency); n != 1 {
		t.Errorf("concurrency refusals = %d, want 1", n)
	}
	a.gate.mu.Lock()
	defer a.gate.mu.Unlock()
	if len(a.gate.tenants) != 0 {
		t.Errorf("the gate still holds %d tenants with nothing running", len(a.gate.tenants))
	}
}

// TestQueryGateOrder: waiters are let in first come first served, and
// one whose context ends leaves the queue.
func TestQueryGateOrder(t *testing.T) {
	var g queryGate
	ctx := context.Background()
	first, err := g.acquire(ctx, "t", 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	order := make(chan int, 3)
	gone, cancel := context.WithCancel(ctx)
	for i := range 3 {
		c := ctx
		if i == 1 {
			c = gone
		}
		go func() {
			release, err := g.acquire(c, "t", 1, 5*time.Second)
			if err != nil {
				order <- -i
				return
			}
			order <- i
			release()
		}()
		// Queue in order: wait until this waiter is in the queue.
		for {
			g.mu.Lock()
			n := len(g.tenants["t"].waiting)
			g.mu.Unlock()
			if n == i+1 {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	cancel()
	if got := <-order; got != -1 {
		t.Fatalf("first to finish = %d, want the cancelled waiter (-1)", got)
	}
	first()
	if a, b := <-order, <-order; a != 0 || b != 2 {
		t.Errorf("let in %d then %d, want 0 then 2", a, b)
	}
}
