package api

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	gpprof "github.com/google/pprof/profile"

	"github.com/hearth-profiler/hearth/internal/events"
	"github.com/hearth-profiler/hearth/internal/events/calc"
	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/query"
	"github.com/hearth-profiler/hearth/internal/storage"
)

// TestCompareRunning: compare's running= is its selection without a box;
// with a box, drawn on the heatmap of the spans that ran the function, it
// keeps both sides to those spans. The shop has 3 slow and 2 fast spans
// whose samples ran stock.scan, and 4 fast spans without samples.
func TestCompareRunning(t *testing.T) {
	db, err := storage.Open(t.TempDir(), nil, storage.Options{Decode: ingest.Replay})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t0 := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	var evs []events.Event
	fn := &gpprof.Function{ID: 1, Name: "stock.scan", SystemName: "stock.scan", Filename: "stock.go"}
	loc := &gpprof.Location{ID: 1, Address: 0x1000, Line: []gpprof.Line{{Function: fn, Line: 10}}}
	p := &gpprof.Profile{
		SampleType: []*gpprof.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &gpprof.ValueType{Type: "cpu", Unit: "nanoseconds"}, Period: 10_000_000,
		TimeNanos: t0.UnixNano(), DurationNanos: int64(10 * time.Second),
		Function: []*gpprof.Function{fn}, Location: []*gpprof.Location{loc},
	}
	for i := range 9 {
		id := events.SpanID{0, 0, 0, 0, 0, 0, 0x57, byte(i + 1)}
		d := 20 * time.Millisecond
		if i < 3 {
			d = 2 * time.Second
		}
		evs = append(evs, events.Event{Start: t0.Add(time.Duration(i) * time.Second).UnixNano(), Duration: int64(d),
			SpanID: id, Service: "shop", Name: "GET /item"})
		if i < 5 {
			p.Sample = append(p.Sample, &gpprof.Sample{Location: []*gpprof.Location{loc}, Value: []int64{1, 10_000_000},
				Label: map[string][]string{"span_id": {fmt.Sprintf("%x", id[:])}}})
		}
	}
	if err := db.AppendEvents(context.Background(), "shop", evs); err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	if err := p.Write(&raw); err != nil {
		t.Fatal(err)
	}
	ing := ingest.New(db, ingest.DefaultProfileLimits(), nil)
	if err := ing.Ingest(context.Background(), "shop", &ingest.Request{Name: "shop{}", Format: "pprof", Profile: raw.Bytes(),
		From: t0.UnixNano(), Until: t0.Add(10 * time.Second).UnixNano()}); err != nil {
		t.Fatal(err)
	}
	a := New(ing, query.NewEngine(db), Options{Events: db}, nil)
	mux := http.NewServeMux()
	a.Register(mux)
	ts := httptest.NewServer(mux)
	defer ts.Close()

	for _, c := range []struct {
		name       string
		params     url.Values
		sel, baseL int64
	}{
		{"a box", url.Values{"box_min_duration": {"1s"}}, 3, 6},
		{"running, no box", url.Values{"running": {"^stock\\.scan$"}}, 5, 4},
		{"running and a box", url.Values{"running": {"^stock\\.scan$"}, "box_min_duration": {"1s"}}, 3, 2},
		{"running, a selection, no box", url.Values{"running": {"^stock\\.scan$"}, "selection": {"{ duration > 1s }"}}, 3, 6},
	} {
		q := url.Values{"q": {`{ resource.service.name = "shop" }`}, "from": {"-1h"}}
		for k, v := range c.params {
			q[k] = v
		}
		var res calc.Comparison
		if code := getJSON(t, ts.URL+"/api/v1/events/compare?"+q.Encode(), &res); code != 200 {
			t.Fatalf("%s: %d", c.name, code)
		}
		if res.SelectionCount != c.sel || res.BaselineCount != c.baseL {
			t.Errorf("%s: %d selected, %d baseline; want %d, %d", c.name, res.SelectionCount, res.BaselineCount, c.sel, c.baseL)
		}
	}
}
