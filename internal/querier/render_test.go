package querier_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hearth-profiler/hearth/internal/profiletest"
	"github.com/hearth-profiler/hearth/internal/querier"
	"github.com/hearth-profiler/hearth/internal/query"
)

// legacyServer serves the render API over the test data of clients.
func legacyServer(t *testing.T) *httptest.Server {
	t.Helper()
	s := profiletest.OpenStore(t)
	s.Push(t, "shop.cpu{env=prod}", cpuProfile(t,
		sampleSpec{"main;handle;parse", 10, span(spanA, root1, trace1)},
		sampleSpec{"main;handle;render", 20, span(spanB, root1, trace1)},
		sampleSpec{"main;gc", 40, nil},
	), t0)
	s.Push(t, "shop.cpu{env=prod}", cpuProfile(t, sampleSpec{"main;gc", 5, nil}), t0.Add(30*time.Second))
	s.Push(t, "api.cpu{env=staging}", cpuProfile(t, sampleSpec{"main;serve", 7, nil}), t0.Add(20*time.Second))
	srv := httptest.NewServer(querier.NewLegacyHandler(query.NewEngine(s.DB), s.DB, querier.Options{Now: func() time.Time { return t0.Add(time.Minute) }}))
	t.Cleanup(srv.Close)
	return srv
}

type flamebearerJSON struct {
	Version     int `json:"version"`
	Flamebearer struct {
		Names    []string  `json:"names"`
		Levels   [][]int64 `json:"levels"`
		NumTicks int64     `json:"numTicks"`
		MaxSelf  int64     `json:"maxSelf"`
	} `json:"flamebearer"`
	Metadata struct {
		Format string `json:"format"`
		Units  string `json:"units"`
		Name   string `json:"name"`
	} `json:"metadata"`
	Timeline *struct {
		StartTime     int64    `json:"startTime"`
		Samples       []uint64 `json:"samples"`
		DurationDelta int64    `json:"durationDelta"`
	} `json:"timeline"`
	Groups map[string]struct {
		Samples []uint64 `json:"samples"`
	} `json:"groups"`
	LeftTicks  int64 `json:"leftTicks"`
	RightTicks int64 `json:"rightTicks"`
}

func getLegacy(t *testing.T, srv *httptest.Server, path string, q url.Values) (int, flamebearerJSON, string) {
	t.Helper()
	resp, err := http.Get(srv.URL + path + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var fb flamebearerJSON
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(raw, &fb); err != nil {
			t.Fatalf("%s: %v\n%s", path, err, raw)
		}
	}
	return resp.StatusCode, fb, string(raw)
}

func TestRender(t *testing.T) {
	srv := legacyServer(t)
	from, until := strconv.FormatInt(t0.Unix(), 10), strconv.FormatInt(t0.Add(time.Hour).UnixMilli(), 10)
	code, fb, raw := getLegacy(t, srv, "/pyroscope/render", url.Values{
		"query": {cpuType + `{service_name="shop"}`}, "from": {from}, "until": {until}, "format": {"json"}})
	if code != 200 {
		t.Fatalf("render: %d %s", code, raw)
	}
	if fb.Version != 1 || fb.Metadata.Format != "single" || fb.Metadata.Units != "samples" || fb.Metadata.Name != "cpu" {
		t.Errorf("version %d, metadata %+v", fb.Version, fb.Metadata)
	}
	if got := decodeFlame(t, fb.Flamebearer.Names, fb.Flamebearer.Levels, 4); !cmp.Equal(got, map[string]int64{"main;handle;parse": 10, "main;handle;render": 20, "main;gc": 45}) {
		t.Errorf("flame graph %v", got)
	}
	if fb.Flamebearer.NumTicks != 75 || fb.Flamebearer.MaxSelf != 45 {
		t.Errorf("numTicks %d, maxSelf %d", fb.Flamebearer.NumTicks, fb.Flamebearer.MaxSelf)
	}
	// An hour in 15 s steps from t0: 70 in the first, 5 in the third.
	tl := fb.Timeline
	if tl == nil || tl.StartTime != t0.Unix() || tl.DurationDelta != 15 || len(tl.Samples) != 240 || tl.Samples[0] != 70 || tl.Samples[2] != 5 {
		t.Errorf("timeline %+v", tl)
	}

	// Grouped by service, relative times.
	code, fb, raw = getLegacy(t, srv, "/pyroscope/render", url.Values{
		"query": {cpuType + "{}"}, "from": {"now-5m"}, "until": {"now"}, "groupBy": {"service_name"}})
	if code != 200 {
		t.Fatalf("render by service: %d %s", code, raw)
	}
	sum := func(s []uint64) (n uint64) {
		for _, v := range s {
			n += v
		}
		return n
	}
	if len(fb.Groups) != 2 || sum(fb.Groups["shop"].Samples) != 75 || sum(fb.Groups["api"].Samples) != 7 {
		t.Errorf("groups %+v", fb.Groups)
	}

	code, fb, raw = getLegacy(t, srv, "/pyroscope/render-diff", url.Values{
		"leftQuery": {cpuType + `{service_name="api"}`}, "leftFrom": {from}, "leftUntil": {until},
		"rightQuery": {cpuType + `{service_name="shop"}`}, "rightFrom": {from}, "rightUntil": {until}})
	if code != 200 {
		t.Fatalf("render-diff: %d %s", code, raw)
	}
	if fb.Metadata.Format != "double" || fb.LeftTicks != 7 || fb.RightTicks != 75 {
		t.Errorf("diff: format %s, ticks %d / %d", fb.Metadata.Format, fb.LeftTicks, fb.RightTicks)
	}
	for _, l := range fb.Flamebearer.Levels {
		if len(l)%7 != 0 {
			t.Fatalf("diff level of %d values", len(l))
		}
	}

	for _, c := range []struct {
		path string
		q    url.Values
		code int
		msg  string
	}{
		{"/pyroscope/render", url.Values{}, 400, "query is required"},
		{"/pyroscope/render", url.Values{"query": {"cpu{}"}}, 400, "profile type"},
		{"/pyroscope/render", url.Values{"query": {cpuType + "{service_name=}"}}, 400, "quoted string"},
		{"/pyroscope/render", url.Values{"query": {cpuType}, "from": {"yesterday"}}, 400, "from"},
		{"/pyroscope/render", url.Values{"query": {cpuType}, "from": {"now-1fortnight"}}, 400, "unit"},
		{"/pyroscope/render", url.Values{"query": {cpuType}, "format": {"dot"}}, 501, "format"},
		{"/pyroscope/render-diff", url.Values{"leftQuery": {cpuType}, "rightQuery": {"process_cpu:samples:count:cpu:nanoseconds"}}, 400, "one profile type"},
	} {
		code, _, raw := getLegacy(t, srv, c.path, c.q)
		var e struct{ Code, Message string }
		json.Unmarshal([]byte(raw), &e)
		if code != c.code || !strings.Contains(e.Message, c.msg) {
			t.Errorf("%s?%s: %d %s, want %d with %q", c.path, c.q.Encode(), code, raw, c.code, c.msg)
		}
	}
}
