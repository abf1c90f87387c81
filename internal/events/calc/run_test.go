package calc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/events"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mustSpec(t testing.TB, s Spec) Query {
	t.Helper()
	q, err := s.Query()
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func run(t testing.TB, evs []events.Event, filter Filter, q Query, from, until time.Time) *Result {
	t.Helper()
	scan, _ := fakeScan(evs, 37)
	res, err := Run(context.Background(), scan, filter, q, from, until)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func groupBy(res *Result, field string) map[any]Group {
	m := map[any]Group{}
	for _, g := range res.Groups {
		m[g.By[field]] = g
	}
	return m
}

// TestRunCalcs checks every calculation per group against the same
// computed directly from the events: exactly for count, sum, avg, min,
// max and count_distinct below its threshold; within the sketch's bound
// for percentiles.
func TestRunCalcs(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	routes := []string{"/cart", "/checkout", "/home", "/search"}
	var evs []events.Event
	for i := range 20000 {
		route := routes[rng.IntN(len(routes))]
		e := events.Event{
			Start:    t0.UnixNano() + int64(i)*int64(time.Millisecond),
			Duration: int64(math.Exp(rng.NormFloat64()+math.Log(5e6))) + 1,
			Attrs:    []events.Attr{{Key: "span.http.route", Value: events.String(route)}},
		}
		// span.size: an int, a float, a string (skipped by numeric
		// calculations) or absent.
		switch i % 4 {
		case 0:
			e.Attrs = append(e.Attrs, events.Attr{Key: "span.size", Value: events.Int(int64(rng.IntN(1000)))})
		case 1:
			e.Attrs = append(e.Attrs, events.Attr{Key: "span.size", Value: events.Float(rng.Float64() * 100)})
		case 2:
			e.Attrs = append(e.Attrs, events.Attr{Key: "span.size", Value: events.String("big")})
		}
		e.Attrs = append(e.Attrs, events.Attr{Key: "span.user.id", Value: events.String(fmt.Sprintf("u%d", rng.IntN(500)))})
		evs = append(evs, e)
	}
	q := mustSpec(t, Spec{
		By:   "span.http.route",
		Calc: "count,sum(duration),avg(duration),min(duration),max(duration),p50(duration),p90(duration),p99(duration),p999(duration),sum(span.size),avg(span.size),min(span.size),max(span.size),p75(span.size),count_distinct(span.user.id),count_distinct(span.size)",
	})
	res := run(t, evs, nil, q, t0, t0.Add(time.Hour))
	if res.Scanned != 20000 || res.Matched != 20000 || len(res.Groups) != 4 || res.GroupCount != 4 || res.Truncated {
		t.Fatalf("scanned %d matched %d groups %d/%d truncated %v", res.Scanned, res.Matched, len(res.Groups), res.GroupCount, res.Truncated)
	}
	got := groupBy(res, "span.http.route")
	for _, route := range routes {
		var durs, sizes []float64
		users, sizeVals := map[string]bool{}, map[string]bool{}
		for _, e := range evs {
			if attr(e, "span.http.route").Str != route {
				continue
			}
			durs = append(durs, float64(e.Duration))
			switch v := attr(e, "span.size"); v.Type {
			case events.TypeInt:
				sizes = append(sizes, float64(v.Int()))
			case events.TypeFloat:
				sizes = append(sizes, v.Float())
			}
			if v := attr(e, "span.size"); v.Type != events.TypeNone {
				sizeVals[v.Type.String()+v.Text()] = true
			}
			users[attr(e, "span.user.id").Str] = true
		}
		g, ok := got[route]
		if !ok {
			t.Fatalf("no group %s", route)
		}
		v := g.Values
		exact := map[string]float64{
			"count":                        float64(len(durs)),
			"sum(duration)":                sum(durs),
			"avg(duration)":                sum(durs) / float64(len(durs)),
			"min(duration)":                slices.Min(durs),
			"max(duration)":                slices.Max(durs),
			"sum(span.size)":               sum(sizes),
			"avg(span.size)":               sum(sizes) / float64(len(sizes)),
			"min(span.size)":               slices.Min(sizes),
			"max(span.size)":               slices.Max(sizes),
			"count_distinct(span.user.id)": float64(len(users)),
			"count_distinct(span.size)":    float64(len(sizeVals)),
		}
		for name, want := range exact {
			// Sums of floats depend on their order; everything else,
			// and sums of integers, must be exact.
			tol := 0.0
			if strings.Contains(name, "span.size") && (strings.HasPrefix(name, "sum") || strings.HasPrefix(name, "avg")) {
				tol = 1e-12 * math.Abs(want)
			}
			if math.Abs(float64(v[name])-want) > tol {
				t.Errorf("%s %s = %v, want %v", route, name, v[name], want)
			}
		}
		slices.Sort(durs)
		slices.Sort(sizes)
		for name, q := range map[string]float64{"p50(duration)": 0.5, "p90(duration)": 0.9, "p99(duration)": 0.99, "p999(duration)": 0.999} {
			want := exactQuantile(durs, q)
			if math.Abs(float64(v[name])-want) > SketchRelativeError*want {
				t.Errorf("%s %s = %v, exact %v", route, name, v[name], want)
			}
		}
		if want := exactQuantile(sizes, 0.75); math.Abs(float64(v["p75(span.size)"])-want) > SketchRelativeError*want {
			t.Errorf("%s p75(span.size) = %v, exact %v", route, v["p75(span.size)"], want)
		}
	}
	if res.Units["p99(duration)"] != "ns" || res.Units["sum(duration)"] != "ns" {
		t.Errorf("units %v", res.Units)
	}
	if _, ok := res.Units["count"]; ok {
		t.Errorf("count has a unit: %v", res.Units)
	}
	if _, ok := res.Units["avg(span.size)"]; ok {
		t.Errorf("an attribute has a unit: %v", res.Units)
	}
}

func sum(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s
}

func TestRunCountDistinctEstimated(t *testing.T) {
	var evs []events.Event
	const users = 60000
	for i := range 2 * users {
		evs = append(evs, events.Event{Start: t0.UnixNano() + int64(i), Attrs: []events.Attr{
			{Key: "span.user.id", Value: events.String(fmt.Sprintf("user-%d", i%users))},
			{Key: "span.n", Value: events.Int(int64(i % 1000))},
		}})
	}
	res := run(t, evs, nil, mustSpec(t, Spec{Calc: "count_distinct(span.user.id),count_distinct(span.n),count_distinct(resource.none)"}), t0, t0.Add(time.Hour))
	v := res.Groups[0].Values
	if e := math.Abs(float64(v["count_distinct(span.user.id)"])-users) / users; e > 4*DistinctRelativeError {
		t.Errorf("count_distinct(span.user.id) = %v of %d: off by %.2f%%", v["count_distinct(span.user.id)"], users, 100*e)
	}
	if v["count_distinct(span.n)"] != 1000 {
		t.Errorf("count_distinct(span.n) = %v, want exactly 1000", v["count_distinct(span.n)"])
	}
	if v["count_distinct(resource.none)"] != 0 {
		t.Errorf("count_distinct of an absent field = %v", v["count_distinct(resource.none)"])
	}
}

// TestRunSteps puts events on and around step edges: a step is
// [start, start+step), aligned on multiples of the step since the epoch,
// and the range is [from, until).
func TestRunSteps(t *testing.T) {
	step := time.Minute
	from := t0.Add(30 * time.Second) // mid-step: the first step starts at t0
	until := t0.Add(3 * time.Minute)
	at := func(d time.Duration) events.Event {
		return events.Event{Start: t0.Add(d).UnixNano(), Duration: int64(d)}
	}
	evs := []events.Event{
		at(29*time.Second + 999*time.Millisecond), // before from: out
		at(30 * time.Second),                      // from: in step 0
		at(time.Minute - 1),                       // step 0
		at(time.Minute),                           // step 1
		at(time.Minute + 1),                       // step 1
		at(2*time.Minute + 59*time.Second),        // step 2
		at(3 * time.Minute),                       // until: out
	}
	res := run(t, evs, nil, mustSpec(t, Spec{Calc: "count,max(duration)", Step: step}), from, until)
	if res.Scanned != 5 || res.Matched != 5 {
		t.Errorf("scanned %d, matched %d; want 5, 5", res.Scanned, res.Matched)
	}
	if res.StepMs != 60000 {
		t.Errorf("step_ms %v", res.StepMs)
	}
	g := res.Groups[0]
	if len(res.Times) != 3 || len(g.Series["count"]) != 3 || len(g.Series["max(duration)"]) != 3 {
		t.Fatalf("times %v, series %v", res.Times, g.Series)
	}
	wantCounts := []Number{2, 2, 1}
	for i, tm := range res.Times {
		if want := float64(t0.Add(time.Duration(i) * step).UnixMilli()); tm != want {
			t.Errorf("step %d at %v, want %v", i, tm, want)
		}
		if g.Series["count"][i] != wantCounts[i] {
			t.Errorf("step %d count %v, want %v", i, g.Series["count"][i], wantCounts[i])
		}
	}
	if g.Series["max(duration)"][1] != Number(time.Minute+1) {
		t.Errorf("step 1 max %v", g.Series["max(duration)"][1])
	}
	if g.Values["count"] != 5 {
		t.Errorf("total count %v", g.Values["count"])
	}

	// An empty step has count 0 and no other value (null in JSON).
	res = run(t, evs[3:5], nil, mustSpec(t, Spec{Calc: "count,avg(duration)", Step: step}), t0, until)
	sr := res.Groups[0].Series
	if sr["count"][0] != 0 || !math.IsNaN(float64(sr["avg(duration)"][0])) {
		t.Errorf("empty step: %v", sr)
	}
	b, _ := json.Marshal(sr)
	if !strings.Contains(string(b), `"avg(duration)":[null,60000000000.5,null]`) {
		t.Errorf("empty step as JSON: %s", b)
	}
}

func TestRunOrderLimitHaving(t *testing.T) {
	// Route i has i+1 events of duration (i+1) ms, for routes 0..9;
	// route 10 has events with no duration-like attribute.
	var evs []events.Event
	for i := range 10 {
		for j := 0; j <= i; j++ {
			evs = append(evs, events.Event{
				Start:    t0.UnixNano(),
				Duration: int64(10-i) * int64(time.Millisecond),
				Attrs: []events.Attr{
					{Key: "span.route", Value: events.String(fmt.Sprintf("r%d", i))},
					{Key: "span.n", Value: events.Int(int64(i))},
				},
			})
		}
	}
	evs = append(evs, events.Event{Start: t0.UnixNano(), Attrs: []events.Attr{{Key: "span.route", Value: events.String("none")}}})
	routes := func(res *Result) []string {
		var out []string
		for _, g := range res.Groups {
			out = append(out, g.By["span.route"].(string))
		}
		return out
	}
	tests := []struct {
		spec  Spec
		want  []string
		count int
	}{
		// Default: the first calculation, descending.
		{Spec{By: "span.route", Calc: "count", Limit: 3}, []string{"r9", "r8", "r7"}, 11},
		{Spec{By: "span.route", Calc: "count", Order: "count asc", Limit: 3}, []string{"none", "r0", "r1"}, 11},
		// Order by a calculation not shown; groups without a value last.
		{Spec{By: "span.route", Calc: "count", Order: "avg(span.n) asc", Limit: 11}, []string{"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "none"}, 11},
		{Spec{By: "span.route", Calc: "count", Order: "avg(span.n) desc", Limit: 2}, []string{"r9", "r8"}, 11},
		{Spec{By: "span.route", Calc: "p99(duration)", Having: "count > 5"}, []string{"r5", "r6", "r7", "r8", "r9"}, 5},
		{Spec{By: "span.route", Calc: "count", Having: "p99(duration) >= 5ms && p99(duration) < 8ms", Order: "count asc"}, []string{"r3", "r4", "r5"}, 3},
		{Spec{By: "span.route", Calc: "count", Having: "avg(span.n) != 3", Limit: 100}, []string{"r9", "r8", "r7", "r6", "r5", "r4", "r2", "r1", "r0"}, 9},
	}
	for _, tt := range tests {
		res := run(t, evs, nil, mustSpec(t, tt.spec), t0, t0.Add(time.Hour))
		if got := routes(res); !slices.Equal(got, tt.want) || res.GroupCount != tt.count {
			t.Errorf("%+v: %v (of %d), want %v (of %d)", tt.spec, got, res.GroupCount, tt.want, tt.count)
		}
		for _, g := range res.Groups {
			if len(g.Values) != len(res.Calcs) {
				t.Errorf("%+v: values %v shows more than the calculations %v", tt.spec, g.Values, res.Calcs)
			}
		}
	}
}

func TestRunDefaultLimit(t *testing.T) {
	var evs []events.Event
	for i := range 150 {
		evs = append(evs, events.Event{Start: t0.UnixNano(), Attrs: []events.Attr{{Key: "span.i", Value: events.Int(int64(i))}}})
	}
	res := run(t, evs, nil, mustSpec(t, Spec{By: "span.i"}), t0, t0.Add(time.Hour))
	if len(res.Groups) != DefaultLimit || res.GroupCount != 150 {
		t.Errorf("%d groups listed of %d; want %d of 150", len(res.Groups), res.GroupCount, DefaultLimit)
	}
	// Equal counts rank by value, the same every time.
	if res.Groups[0].By["span.i"] != int64(0) || res.Groups[1].By["span.i"] != int64(1) {
		t.Errorf("ties ranked %v, %v", res.Groups[0].By, res.Groups[1].By)
	}
}

// TestRunMaxGroups groups by a value unique per event: the query keeps
// MaxGroups groups, counts the rest as ungrouped, and says so.
func TestRunMaxGroups(t *testing.T) {
	var evs []events.Event
	for i := range 1000 {
		evs = append(evs, events.Event{Start: t0.UnixNano() + int64(i), Duration: int64(i), Attrs: []events.Attr{
			{Key: "span.user.id", Value: events.String(fmt.Sprintf("u%04d", i))},
			{Key: "span.route", Value: events.String(fmt.Sprintf("r%d", i%3))},
		}})
	}
	q := mustSpec(t, Spec{By: "span.user.id", Calc: "count,p99(duration)", Limit: 1000})
	q.MaxGroups = 50
	res := run(t, evs, nil, q, t0, t0.Add(time.Hour))
	if !res.Truncated || len(res.Groups) != 50 || res.Ungrouped != 950 || res.Matched != 1000 {
		t.Errorf("truncated %v, %d groups, %d ungrouped of %d", res.Truncated, len(res.Groups), res.Ungrouped, res.Matched)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "more than 50 groups") {
		t.Errorf("warnings %q", res.Warnings)
	}
	var total Number
	for _, g := range res.Groups {
		total += g.Values["count"]
	}
	if int64(total)+res.Ungrouped != res.Matched {
		t.Errorf("groups hold %v, ungrouped %d, matched %d", total, res.Ungrouped, res.Matched)
	}

	// Two fields: the cap counts combinations.
	q = mustSpec(t, Spec{By: "span.route,span.user.id", Limit: 1000})
	q.MaxGroups = 10
	res = run(t, evs, nil, q, t0, t0.Add(time.Hour))
	if len(res.Groups) != 10 || res.Ungrouped != 990 {
		t.Errorf("two fields: %d groups, %d ungrouped", len(res.Groups), res.Ungrouped)
	}

	// Steps share the cap: 10 groups of 1000 steps pass MaxCells... not
	// here, but the cells bound shrinks the groups a query may keep.
	q = mustSpec(t, Spec{By: "span.user.id", Step: time.Second, Limit: 1000})
	res = run(t, evs, nil, q, t0, t0.Add(10000*time.Second))
	if want := MaxCells / 10000; len(res.Groups) != want || !res.Truncated {
		t.Errorf("with 10000 steps: %d groups, want %d", len(res.Groups), want)
	}
}

func TestRunGroupByKinds(t *testing.T) {
	evs := []events.Event{
		{Start: t0.UnixNano(), Service: "shop", Name: "GET", Kind: events.KindServer, Status: events.StatusError,
			Attrs: []events.Attr{{Key: "span.region", Value: events.String("eu")}, {Key: "span.code", Value: events.Int(500)}}},
		{Start: t0.UnixNano(), Service: "shop", Name: "GET", Kind: events.KindServer, Status: events.StatusOK,
			Attrs: []events.Attr{{Key: "resource.region", Value: events.String("us")}, {Key: "span.code", Value: events.Int(200)}}},
		{Start: t0.UnixNano(), Service: "cart", Name: "SELECT", Kind: events.KindClient, Status: events.StatusOK,
			Attrs: []events.Attr{{Key: "span.region", Value: events.String("eu")}, {Key: "resource.region", Value: events.String("us")}, {Key: "span.code", Value: events.String("200")}}},
		{Start: t0.UnixNano(), Service: "cart", Name: "SELECT", Kind: events.KindClient, Status: events.StatusOK},
	}
	res := run(t, evs, nil, mustSpec(t, Spec{By: "service,kind,status,.region,span.code", Order: "count asc", Limit: 10}), t0, t0.Add(time.Hour))
	var got []string
	for _, g := range res.Groups {
		b, _ := json.Marshal(g.By)
		got = append(got, string(b))
	}
	slices.Sort(got)
	want := []string{
		`{".region":"eu","kind":"client","resource.service.name":"cart","span.code":"200","status":"ok"}`,
		`{".region":"eu","kind":"server","resource.service.name":"shop","span.code":500,"status":"error"}`,
		`{".region":"us","kind":"server","resource.service.name":"shop","span.code":200,"status":"ok"}`,
		`{".region":null,"kind":"client","resource.service.name":"cart","span.code":null,"status":"ok"}`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("groups:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !slices.Equal(res.By, []string{"resource.service.name", "kind", "status", ".region", "span.code"}) {
		t.Errorf("by %v", res.By)
	}
}

func TestRunHeatmap(t *testing.T) {
	durs := []time.Duration{0, time.Microsecond, time.Millisecond, time.Millisecond, 3 * time.Millisecond, time.Second}
	var evs []events.Event
	for i, d := range durs {
		evs = append(evs, events.Event{Start: t0.Add(time.Duration(i) * 10 * time.Second).UnixNano(), Duration: int64(d)})
	}
	res := run(t, evs, nil, mustSpec(t, Spec{Calc: "heatmap(duration),count", Step: 30 * time.Second}), t0, t0.Add(time.Minute))
	bk := res.Buckets["heatmap(duration)"]
	if len(bk) == 0 || bk[0] != (Bucket{}) {
		t.Fatalf("buckets %v: want the zero bucket first", bk)
	}
	where := func(counts []uint64) map[time.Duration]uint64 {
		m := map[time.Duration]uint64{}
		for _, d := range durs {
			for i, b := range bk {
				if (b.Lo == 0 && b.Hi == 0 && d == 0) || (float64(d) >= b.Lo && float64(d) < b.Hi) {
					m[d] = counts[i]
				}
			}
		}
		return m
	}
	g := res.Groups[0]
	all := where(g.Histograms["heatmap(duration)"])
	want := map[time.Duration]uint64{0: 1, time.Microsecond: 1, time.Millisecond: 2, 3 * time.Millisecond: 1, time.Second: 1}
	for d, c := range want {
		if all[d] != c {
			t.Errorf("bucket of %v holds %d, want %d (%v)", d, all[d], c, all)
		}
	}
	var total uint64
	for _, c := range g.Histograms["heatmap(duration)"] {
		total += c
	}
	if total != 6 {
		t.Errorf("histogram holds %d, want 6", total)
	}
	// Steps: [0, 30s) holds 0, 1µs, 1ms; [30s, 60s) holds 1ms, 3ms, 1s.
	hs := g.HistogramSeries["heatmap(duration)"]
	if len(hs) != 2 {
		t.Fatalf("%d steps of histograms, want 2", len(hs))
	}
	s0, s1 := where(hs[0]), where(hs[1])
	if s0[0] != 1 || s0[time.Microsecond] != 1 || s0[time.Millisecond] != 1 || s0[time.Second] != 0 ||
		s1[time.Millisecond] != 1 || s1[3*time.Millisecond] != 1 || s1[time.Second] != 1 || s1[0] != 0 {
		t.Errorf("steps: %v %v", s0, s1)
	}
	if len(hs[0]) != len(bk) || len(hs[1]) != len(bk) {
		t.Errorf("a step's histogram does not line up with the buckets")
	}
	if _, ok := g.Values["heatmap(duration)"]; ok {
		t.Error("a heatmap among the values")
	}
	// Each bucket is 2^(1/4) wide.
	for _, b := range bk[1:] {
		if r := b.Hi / b.Lo; math.Abs(r-math.Pow(2, 0.25)) > 1e-9 {
			t.Errorf("bucket %v: ratio %v", b, r)
		}
	}
}

func TestRunExamples(t *testing.T) {
	var evs []events.Event
	for i := range 20 {
		e := events.Event{Start: t0.UnixNano() + int64(i), Duration: int64(i % 7)}
		e.TraceID[15], e.SpanID[7] = byte(i), byte(i)
		e.Attrs = []events.Attr{{Key: "span.g", Value: events.Int(int64(i % 2))}}
		evs = append(evs, e)
	}
	q := mustSpec(t, Spec{By: "span.g", Examples: 3})
	res := run(t, evs, nil, q, t0, t0.Add(time.Hour))
	for _, g := range res.Groups {
		var got []string
		for _, e := range g.Examples {
			got = append(got, fmt.Sprintf("%s/%d", e.SpanID[14:], e.Duration))
		}
		// Group 0: i = 0,2,...,18, durations i%7; the slowest are 6
		// (i=6) then 5 (i=12) then 4 (i=4 and 18: the later first).
		// Group 1: 6 (i=13), then 5 twice (i=19, then i=5).
		want := map[int64][]string{0: {"06/6", "0c/5", "12/4"}, 1: {"0d/6", "13/5", "05/5"}}[g.By["span.g"].(int64)]
		if !slices.Equal(got, want) {
			t.Errorf("group %v examples %v, want %v", g.By, got, want)
		}
	}
	b, _ := json.Marshal(res.Groups[0].Examples[0])
	if !strings.Contains(string(b), `"trace_id":"00000000000000000000000000000006"`) || !strings.Contains(string(b), `"start":"2026-03-01T12:00:00.000000006Z"`) {
		t.Errorf("example JSON %s", b)
	}
	// Without asking, no examples and no ID columns read.
	scan, asked := fakeScan(evs, 7)
	res, err := Run(context.Background(), scan, nil, mustSpec(t, Spec{By: "span.g"}), t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if res.Groups[0].Examples != nil || (*asked)[0].Intrinsics&events.ColTraceID != 0 {
		t.Errorf("examples %v, columns %+v", res.Groups[0].Examples, (*asked)[0])
	}
}

func TestRunFilterAndColumns(t *testing.T) {
	var evs []events.Event
	for i := range 100 {
		evs = append(evs, events.Event{Start: t0.UnixNano() + int64(i), Duration: int64(i), Status: events.Status(i % 3),
			Attrs: []events.Attr{{Key: "span.route", Value: events.String(fmt.Sprint(i % 4))}, {Key: "span.other", Value: events.Int(1)}}})
	}
	errors := funcFilter{
		cols:  events.Columns{Intrinsics: events.ColStatus},
		match: func(e events.Event) bool { return e.Status == events.StatusError },
	}
	scan, asked := fakeScan(evs, 16)
	res, err := Run(context.Background(), scan, errors, mustSpec(t, Spec{By: "span.route", Calc: "count,avg(duration)"}), t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if res.Scanned != 100 || res.Matched != 33 {
		t.Errorf("scanned %d matched %d, want 100 and 33", res.Scanned, res.Matched)
	}
	cols := (*asked)[0]
	want := events.ColStatus | events.ColDuration // no step: start times are the scan's to cut by
	if cols.Intrinsics != want || !slices.Equal(cols.Attrs, []string{"span.route"}) || cols.AllAttrs {
		t.Errorf("asked for %+v, want intrinsics %b and span.route only", cols, want)
	}
	var n Number
	for _, g := range res.Groups {
		n += g.Values["count"]
	}
	if n != 33 {
		t.Errorf("groups hold %v events", n)
	}
}

func TestRunErrors(t *testing.T) {
	scan, _ := fakeScan(nil, 1)
	ctx := context.Background()
	var qe *QueryError
	if _, err := Run(ctx, scan, nil, Query{}, t0, t0); err == nil || !errors.As(err, &qe) || !strings.Contains(err.Error(), "empty time range") {
		t.Errorf("empty range: %v", err)
	}
	_, err := Run(ctx, scan, nil, Query{Step: time.Second}, t0, t0.Add(24*time.Hour))
	if err == nil || !errors.As(err, &qe) || !strings.Contains(err.Error(), "86400 steps, more than 11000") {
		t.Errorf("too many steps: %v", err)
	}
	boom := errors.New("disk on fire")
	failing := func(ctx context.Context, cols events.Columns, fn func(*events.Batch) error) error { return boom }
	if _, err := Run(ctx, failing, nil, Query{}, t0, t0.Add(time.Hour)); !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "scan events: ") {
		t.Errorf("scan error: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	scan, _ = fakeScan([]events.Event{{Start: t0.UnixNano()}}, 1)
	if _, err := Run(cctx, scan, nil, Query{}, t0, t0.Add(time.Hour)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	noStart := func(ctx context.Context, cols events.Columns, fn func(*events.Batch) error) error {
		return fn(&events.Batch{Len: 1})
	}
	if _, err := Run(ctx, noStart, nil, Query{Step: time.Minute}, t0, t0.Add(time.Hour)); err == nil || !strings.Contains(err.Error(), "without start times") {
		t.Errorf("no start column with a step: %v", err)
	}
	// Without a step, a batch without start times is in the range whole.
	res, err := Run(ctx, noStart, nil, Query{}, t0, t0.Add(time.Hour))
	if err != nil || res.Scanned != 1 || res.Matched != 1 {
		t.Errorf("no start column, no step: %+v, %v", res, err)
	}
}

func TestResultJSON(t *testing.T) {
	evs := []events.Event{
		{Start: t0.UnixNano(), Duration: 412_000_000, Attrs: []events.Attr{{Key: "span.http.route", Value: events.String("/cart")}}},
		{Start: t0.Add(time.Minute).UnixNano(), Duration: 1, Attrs: []events.Attr{{Key: "span.http.route", Value: events.String("/cart")}}},
	}
	res := run(t, evs, nil, mustSpec(t, Spec{By: "span.http.route", Calc: "count,max(duration),avg(span.none)", Step: time.Minute}), t0, t0.Add(2*time.Minute))
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"from":"2026-03-01T12:00:00Z","until":"2026-03-01T12:02:00Z","step_ms":60000,"times":[1772366400000,1772366460000],` +
		`"by":["span.http.route"],"calcs":["count","max(duration)","avg(span.none)"],"units":{"max(duration)":"ns"},` +
		`"groups":[{"by":{"span.http.route":"/cart"},"values":{"avg(span.none)":null,"count":2,"max(duration)":412000000},` +
		`"series":{"avg(span.none)":[null,null],"count":[1,1],"max(duration)":[412000000,1]}}],` +
		`"group_count":1,"scanned":2,"matched":2,"truncated":false,"ungrouped":0}`
	if string(b) != want {
		t.Errorf("JSON:\n%s\nwant:\n%s", b, want)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(float64(back.Groups[0].Values["avg(span.none)"])) || back.Groups[0].Values["max(duration)"] != 412e6 {
		t.Errorf("read back: %v", back.Groups[0].Values)
	}
}

func TestNumberJSON(t *testing.T) {
	for n, want := range map[Number]string{0: "0", 1.5: "1.5", 1e21: "1e+21", 123456789: "123456789", 1e-7: "1e-07", Number(math.Inf(1)): "null"} {
		if b, _ := json.Marshal(n); string(b) != want {
			t.Errorf("%v as JSON: %s, want %s", float64(n), b, want)
		}
	}
}
