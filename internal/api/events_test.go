package api

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/events"
	"github.com/hearth-profiler/hearth/internal/events/calc"
	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/query"
	"github.com/hearth-profiler/hearth/internal/storage"
)

// eventsAPI serves an API over a store holding, for tenant "shop", one
// trace of a checkout (a server span, two client spans below it, a log
// inside one) and 100 requests of the cart route, and returns its URL.
func eventsAPI(t *testing.T, flush bool) (string, events.TraceID, time.Time) {
	t.Helper()
	db, err := storage.Open(t.TempDir(), nil, storage.Options{Decode: ingest.Replay})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	t0 := time.Now().Add(-10 * time.Minute).Truncate(time.Millisecond)
	tid, _ := events.ParseTraceID("4bf92f3577b34da6a3ce929d0e0e4736")
	span := func(id byte) events.SpanID { return events.SpanID{0, 0, 0, 0, 0, 0, 0, id} }
	evs := []events.Event{
		{Start: t0.UnixNano(), Duration: int64(900 * time.Millisecond), TraceID: tid, SpanID: span(1), Service: "shop",
			Name: "POST /checkout", Kind: events.KindServer, Status: events.StatusError, StatusMessage: "card declined",
			Attrs: []events.Attr{{Key: "span.http.route", Value: events.String("/checkout")}, {Key: "span.user.id", Value: events.String("u-81")}}},
		{Start: t0.Add(10 * time.Millisecond).UnixNano(), Duration: int64(300 * time.Millisecond), TraceID: tid, SpanID: span(2), ParentID: span(1),
			Service: "shop", Name: "SELECT orders", Kind: events.KindClient},
		{Start: t0.Add(400 * time.Millisecond).UnixNano(), Duration: int64(400 * time.Millisecond), TraceID: tid, SpanID: span(3), ParentID: span(1),
			Service: "payments", Name: "charge", Kind: events.KindClient, Status: events.StatusError},
		{Start: t0.Add(500 * time.Millisecond).UnixNano(), TraceID: tid, ParentID: span(3), Service: "payments", Name: "log",
			Attrs: []events.Attr{{Key: "span.body", Value: events.String("declined by issuer")}}},
	}
	for i := range 100 {
		evs = append(evs, events.Event{Start: t0.Add(time.Duration(i) * time.Second).UnixNano(), Duration: int64(i) * int64(time.Millisecond),
			Service: "shop", Name: "GET /cart", Kind: events.KindServer,
			Attrs: []events.Attr{{Key: "span.http.route", Value: events.String("/cart")}, {Key: "span.user.id", Value: events.String(fmt.Sprintf("u-%d", i%7))}}})
	}
	if err := db.AppendEvents(context.Background(), "shop", evs); err != nil {
		t.Fatal(err)
	}
	if flush {
		if err := db.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	a := New(ingest.New(db, ingest.DefaultProfileLimits(), nil), query.NewEngine(db), Options{Events: db}, nil)
	mux := http.NewServeMux()
	a.Register(mux)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts.URL, tid, t0
}

func getJSON(t *testing.T, u string, into any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("X-Scope-OrgID", "shop")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r struct {
		Data  json.RawMessage `json:"data"`
		Error string          `json:"error"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%s: %d %s", u, resp.StatusCode, raw)
	}
	if resp.StatusCode != 200 {
		if s, ok := into.(*string); ok {
			*s = r.Error
		}
		return resp.StatusCode
	}
	if err := json.Unmarshal(r.Data, into); err != nil {
		t.Fatalf("%s: %v in %s", u, err, r.Data)
	}
	return resp.StatusCode
}

func TestEventsAPI(t *testing.T) {
	for _, flush := range []bool{false, true} {
		t.Run(fmt.Sprintf("flushed=%v", flush), func(t *testing.T) {
			base, tid, t0 := eventsAPI(t, flush)
			// Search: the newest matching events first, with counts.
			var sr EventSearchResult
			q := url.Values{"q": {`{ span.http.route = "/cart" && duration >= 90ms }`}, "from": {"-1h"}, "limit": {"3"}}
			if code := getJSON(t, base+"/api/v1/events/search?"+q.Encode(), &sr); code != 200 {
				t.Fatalf("search: %d", code)
			}
			if sr.Matched != 10 || len(sr.Events) != 3 || sr.Events[0].DurationNanos != int64(99*time.Millisecond) ||
				sr.Events[2].DurationNanos != int64(97*time.Millisecond) || sr.Scanned < 104 {
				t.Errorf("search: %+v", sr)
			}
			if v := sr.Events[0].Attributes["span.http.route"]; v != "/cart" {
				t.Errorf("search: attributes %v", sr.Events[0].Attributes)
			}
			// A trace as a tree.
			var tr TraceResult
			if code := getJSON(t, base+"/api/v1/events/trace/"+tid.String(), &tr); code != 200 {
				t.Fatalf("trace: %d", code)
			}
			var shape []string
			for _, s := range tr.Spans {
				shape = append(shape, fmt.Sprintf("%s%s", strings.Repeat(" ", *s.Depth), s.Name))
			}
			if got, want := strings.Join(shape, "|"), "POST /checkout| SELECT orders| charge|  log"; got != want {
				t.Errorf("trace tree %q, want %q", got, want)
			}
			if tr.Errors != 2 || tr.DurationNanos != int64(900*time.Millisecond) || !tr.Start.Equal(t0) ||
				strings.Join(tr.Services, ",") != "payments,shop" {
				t.Errorf("trace summary: %d errors, %v, %v, %v", tr.Errors, tr.DurationNanos, tr.Start, tr.Services)
			}
			var msg string
			if code := getJSON(t, base+"/api/v1/events/trace/0af7651916cd43dd8448eb211c80319c", &msg); code != 404 || !strings.Contains(msg, "no events") {
				t.Errorf("absent trace: %d %q", code, msg)
			}
			if code := getJSON(t, base+"/api/v1/events/trace/xyz", &msg); code != 400 || !strings.Contains(msg, "not hex") {
				t.Errorf("bad trace ID: %d %q", code, msg)
			}
			// Attributes and values, for completion.
			var ar EventAttributesResult
			getJSON(t, base+"/api/v1/events/attributes?from=-1h", &ar)
			var keys []string
			for _, at := range ar.Attributes {
				keys = append(keys, at.Key+":"+at.Type)
			}
			if got := strings.Join(keys, ","); got != "span.body:string,span.http.route:string,span.user.id:string" {
				t.Errorf("attributes: %s", got)
			}
			var vr EventValuesResult
			getJSON(t, base+"/api/v1/events/attribute/span.http.route/values?from=-1h", &vr)
			if len(vr.Values) != 2 || vr.Values[0].Value != "/cart" || vr.Values[0].Count != 100 || vr.Values[1].Count != 1 {
				t.Errorf("values of span.http.route: %+v", vr)
			}
			getJSON(t, base+"/api/v1/events/attribute/resource.service.name/values?from=-1h&q="+url.QueryEscape(`{ status = error }`), &vr)
			if len(vr.Values) != 2 || vr.Distinct != 2 {
				t.Errorf("services of errors: %+v", vr)
			}
			// Group by route: count and p99, ordered by count.
			var res calc.Result
			q = url.Values{"q": {`{ resource.service.name = "shop" }`}, "from": {"-1h"}, "by": {"span.http.route"},
				"calc": {"count,p99(duration),max(duration)"}, "limit": {"5"}}
			if code := getJSON(t, base+"/api/v1/events/query?"+q.Encode(), &res); code != 200 {
				t.Fatalf("query: %d", code)
			}
			// The client span has no route: a group of its own, null.
			if len(res.Groups) != 3 || res.Groups[0].By["span.http.route"] != "/cart" || res.Groups[2].By["span.http.route"] != nil || res.Groups[0].Values["count"] != 100 ||
				res.Groups[0].Values["max(duration)"] != calc.Number(99*time.Millisecond) || res.Matched != 102 {
				t.Errorf("query: %+v", res)
			}
			q.Set("having", "count > 1000")
			getJSON(t, base+"/api/v1/events/query?"+q.Encode(), &res)
			if len(res.Groups) != 0 {
				t.Errorf("having count > 1000 kept %d groups", len(res.Groups))
			}
			q.Set("calc", "p98x")
			if code := getJSON(t, base+"/api/v1/events/query?"+q.Encode(), &msg); code != 400 || !strings.Contains(msg, "p98x") {
				t.Errorf("bad calc: %d %q", code, msg)
			}
			// Compare: the slow box of the cart route against its other
			// requests; user u-3 is not what sets them apart, duration is
			// what defines them.
			var cmpRes calc.Comparison
			q = url.Values{"q": {`{ span.http.route = "/cart" }`}, "from": {"-1h"}, "box_min_duration": {"80ms"}}
			if code := getJSON(t, base+"/api/v1/events/compare?"+q.Encode(), &cmpRes); code != 200 {
				t.Fatalf("compare: %d", code)
			}
			if cmpRes.SelectionCount != 20 || cmpRes.BaselineCount != 80 {
				t.Errorf("compare: %d selected, %d baseline", cmpRes.SelectionCount, cmpRes.BaselineCount)
			}
			// span.body is a key of the range, but none of the cart's
			// requests has it: it is not listed.
			for _, at := range cmpRes.Attributes {
				if at.Attribute == "span.body" {
					t.Errorf("compare lists span.body, which no compared event has")
				}
			}
			if code := getJSON(t, base+"/api/v1/events/compare?from=-1h", &msg); code != 400 || !strings.Contains(msg, "needs a selection") {
				t.Errorf("compare without a selection: %d %q", code, msg)
			}
			// A bad filter names its line and column.
			if code := getJSON(t, base+"/api/v1/events/search?q="+url.QueryEscape(`{ duration > "x" }`), &msg); code != 400 || !strings.Contains(msg, "1:") {
				t.Errorf("bad filter: %d %q", code, msg)
			}
			if code := getJSON(t, base+"/api/v1/events/attribute/http.route/values", &msg); code != 400 || !strings.Contains(msg, "not a field") {
				t.Errorf("bad field: %d %q", code, msg)
			}
		})
	}
}

// TestSpanSelectionLooksBack: a profile query's span filter finds the
// spans that started before the query's range, whose samples may fall in
// it, up to SpanFilterLookback before.
func TestSpanSelectionLooksBack(t *testing.T) {
	db, err := storage.Open(t.TempDir(), nil, storage.Options{Decode: ingest.Replay})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now().Truncate(time.Second)
	span := func(id byte) events.SpanID { return events.SpanID{0, 0, 0, 0, 0, 0, 0, id} }
	evs := []events.Event{
		{Start: now.Add(-5 * time.Minute).UnixNano(), Duration: int64(10 * time.Minute), SpanID: span(1), Service: "shop", Name: "export"},
		{Start: now.Add(-2 * SpanFilterLookback).UnixNano(), Duration: int64(time.Second), SpanID: span(2), Service: "shop", Name: "export"},
		{Start: now.Add(-time.Minute).UnixNano(), Duration: int64(time.Second), SpanID: span(3), Service: "shop", Name: "export"},
	}
	if err := db.AppendEvents(context.Background(), "shop", evs); err != nil {
		t.Fatal(err)
	}
	a := New(ingest.New(db, ingest.DefaultProfileLimits(), nil), query.NewEngine(db), Options{Events: db}, nil)
	sel, err := a.spanSelection(context.Background(), eventRequest{tenant: "shop", from: now.Add(-2 * time.Minute), until: now}, `{ name = "export" }`)
	if err != nil {
		t.Fatal(err)
	}
	has := func(id events.SpanID) bool { return sel.IDs.Has(binary.BigEndian.Uint64(id[:])) }
	before, tooOld, inside := has(span(1)), has(span(2)), has(span(3))
	if sel.Spans != 2 || !before || tooOld || !inside {
		t.Errorf("spans %d: started 5 min before the range %v, two lookbacks before %v, inside %v; want 2: true, false, true", sel.Spans, before, tooOld, inside)
	}
}
