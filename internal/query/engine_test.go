package query_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	gpprof "github.com/google/pprof/profile"

	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/profiletest"
	"github.com/hearth-profiler/hearth/internal/query"
)

// builder makes small pprof profiles with named stacks.
type builder struct {
	p     *gpprof.Profile
	funcs map[string]*gpprof.Location
}

func newBuilder(types ...string) *builder {
	b := &builder{p: &gpprof.Profile{}, funcs: map[string]*gpprof.Location{}}
	for i := 0; i < len(types); i += 2 {
		b.p.SampleType = append(b.p.SampleType, &gpprof.ValueType{Type: types[i], Unit: types[i+1]})
	}
	return b
}

// sample adds a sample whose stack is given root first.
func (b *builder) sample(lbls map[string]string, stack []string, values ...int64) *builder {
	s := &gpprof.Sample{Value: values}
	for i := len(stack) - 1; i >= 0; i-- {
		l := b.funcs[stack[i]]
		if l == nil {
			fn := &gpprof.Function{ID: uint64(len(b.p.Function) + 1), Name: stack[i]}
			b.p.Function = append(b.p.Function, fn)
			l = &gpprof.Location{ID: uint64(len(b.p.Location) + 1), Line: []gpprof.Line{{Function: fn}}}
			b.p.Location = append(b.p.Location, l)
			b.funcs[stack[i]] = l
		}
		s.Location = append(s.Location, l)
	}
	for k, v := range lbls {
		if s.Label == nil {
			s.Label = map[string][]string{}
		}
		s.Label[k] = []string{v}
	}
	b.p.Sample = append(b.p.Sample, s)
	return b
}

func (b *builder) bytes(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := b.p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func flame(t *testing.T, eng *query.Engine, q string) profiletest.Stacks {
	t.Helper()
	fg, err := eng.FlameGraph(context.Background(), request(q), 0)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return flameStacks(fg)
}

// TestPerSampleLabels checks that pprof labels stay on samples, select
// samples in a query, and never become series.
func TestPerSampleLabels(t *testing.T) {
	s := profiletest.OpenStore(t)
	p := newBuilder("samples", "count", "cpu", "nanoseconds").
		sample(map[string]string{"span_id": "a1", "span_name": "GET /x"}, []string{"main", "handle", "parse"}, 1, 10).
		sample(map[string]string{"span_id": "b2", "span_name": "GET /y"}, []string{"main", "handle", "render"}, 2, 20).
		sample(nil, []string{"main", "gc"}, 4, 40)
	p.p.PeriodType = &gpprof.ValueType{Type: "cpu", Unit: "nanoseconds"}
	s.Push(t, "svc.cpu{env=x}", p.bytes(t), t0)
	eng := query.NewEngine(s.DB)
	ctx := context.Background()

	if got, want := flame(t, eng, `cpu{span_id="a1"}`), (profiletest.Stacks{"main;handle;parse": 10}); !cmp.Equal(got, want) {
		t.Errorf("span_id=a1: %v, want %v", got, want)
	}
	if got, want := flame(t, eng, `cpu{span_name=~"GET .*"}`), (profiletest.Stacks{"main;handle;parse": 10, "main;handle;render": 20}); !cmp.Equal(got, want) {
		t.Errorf("span_name=~GET: %v, want %v", got, want)
	}
	if got, want := flame(t, eng, `cpu{span_id=""}`), (profiletest.Stacks{"main;gc": 40}); !cmp.Equal(got, want) {
		t.Errorf("span_id=\"\": %v, want %v", got, want)
	}
	if got := flame(t, eng, `cpu{service_name="svc"}`); len(got) != 3 {
		t.Errorf("all samples: %v", got)
	}
	vals, err := eng.LabelValues(ctx, request("{}"), "span_id")
	if err != nil || !cmp.Equal(vals, []string{"a1", "b2"}) {
		t.Errorf("span_id values %v (%v), want [a1 b2]", vals, err)
	}
	series, err := eng.SeriesLabels(ctx, request("{}"))
	if err != nil {
		t.Fatal(err)
	}
	if len(series) != 2 {
		t.Errorf("got %d series, want 2 (one per sample type): %v", len(series), series)
	}
	for _, ls := range series {
		if _, ok := ls["span_id"]; ok {
			t.Errorf("span_id became a series label: %v", ls)
		}
	}
	// The labels come back in the exported pprof.
	out, err := eng.Pprof(ctx, request(`cpu{span_id="b2"}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Sample) != 1 || out.Sample[0].Label["span_id"][0] != "b2" || out.Sample[0].Label["span_name"][0] != "GET /y" {
		t.Errorf("exported samples %v, want one labelled span_id=b2", out.Sample)
	}
}

// TestCumulativeDeltas checks that cumulative types are stored as growth
// per interval, and that a restart of the client starts a new baseline.
func TestCumulativeDeltas(t *testing.T) {
	s := profiletest.OpenStore(t)
	heap := func(a, b int64) []byte {
		bl := newBuilder("alloc_space", "bytes", "inuse_space", "bytes")
		bl.p.PeriodType = &gpprof.ValueType{Type: "space", Unit: "bytes"}
		bl.sample(nil, []string{"main", "alloc"}, a, 7)
		if b > 0 {
			bl.sample(nil, []string{"main", "other"}, b, 3)
		}
		return bl.bytes(t)
	}
	s.Push(t, "svc{}", heap(100, 0), t0)
	s.Push(t, "svc{}", heap(150, 30), t0.Add(10*time.Second))
	s.Push(t, "svc{}", heap(20, 5), t0.Add(20*time.Second)) // restarted: total fell
	eng := query.NewEngine(s.DB)
	ctx := context.Background()
	r := request(`alloc_space{service_name="svc"}`)
	ser, err := eng.Series(ctx, r, 10*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []float64
	for _, p := range ser.Series[0].Points {
		got = append(got, p[1])
	}
	if want := []float64{100, 80, 25}; !cmp.Equal(got, want) {
		t.Errorf("alloc_space per interval %v, want %v", got, want)
	}
	if got, want := flame(t, eng, `alloc_space{}`), (profiletest.Stacks{"main;alloc": 170, "main;other": 35}); !cmp.Equal(got, want) {
		t.Errorf("merged alloc_space %v, want %v", got, want)
	}
	// inuse_space is a gauge: stored as sent, averaged per step.
	ser, err = eng.Series(ctx, request(`inuse_space{}`), time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := ser.Series[0].Points[0][1]; got != (7.0+10+10)/3 {
		t.Errorf("inuse_space average %v, want 9", got)
	}

	// prev_profile: the Pyroscope API's way of sending a delta.
	s2 := profiletest.OpenStore(t)
	err = s2.Ing.Ingest(ctx, "anonymous", &ingest.Request{
		Name: "svc2{}", Format: "pprof", Profile: heap(150, 30), PrevProfile: heap(100, 0),
		From: t0.UnixNano(), SampleTypeConfig: []byte(`{"alloc_space":{"units":"bytes","cumulative":false}}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := flame(t, query.NewEngine(s2.DB), `alloc_space{}`), (profiletest.Stacks{"main;alloc": 50, "main;other": 30}); !cmp.Equal(got, want) {
		t.Errorf("profile - prev_profile: %v, want %v", got, want)
	}
}

// TestCallSite keeps the samples whose stacks begin with a call site,
// as Pyroscope's stack trace selector does.
func TestCallSite(t *testing.T) {
	s := profiletest.OpenStore(t)
	p := newBuilder("samples", "count", "cpu", "nanoseconds").
		sample(nil, []string{"main", "handle", "parse"}, 1, 10).
		sample(nil, []string{"main", "handle", "render"}, 2, 20).
		sample(nil, []string{"main", "handle"}, 3, 30).
		sample(nil, []string{"main", "gc", "handle"}, 4, 40)
	p.p.PeriodType = &gpprof.ValueType{Type: "cpu", Unit: "nanoseconds"}
	s.Push(t, "svc.cpu{env=x}", p.bytes(t), t0)
	eng := query.NewEngine(s.DB)
	for _, c := range []struct {
		site []string
		want profiletest.Stacks
	}{
		{[]string{"main", "handle"}, profiletest.Stacks{"main;handle;parse": 10, "main;handle;render": 20, "main;handle": 30}},
		{[]string{"main", "handle", "render"}, profiletest.Stacks{"main;handle;render": 20}},
		{[]string{"handle"}, profiletest.Stacks{}},
		{[]string{"main", "handle", "render", "deeper"}, profiletest.Stacks{}},
	} {
		r := request(`cpu{}`)
		r.Filter.CallSite = c.site
		fg, err := eng.FlameGraph(context.Background(), r, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := flameStacks(fg); !cmp.Equal(got, c.want, cmpopts.EquateEmpty()) {
			t.Errorf("call site %v: %v, want %v", c.site, got, c.want)
		}
	}
}

// TestCutAbove cuts a flame graph as Pyroscope does: every node at least
// as large as the max_nodes-th, the root not counted, ties kept.
func TestCutAbove(t *testing.T) {
	s := profiletest.OpenStore(t)
	p := newBuilder("samples", "count", "cpu", "nanoseconds").
		sample(nil, []string{"main", "a"}, 1, 30).
		sample(nil, []string{"main", "b"}, 1, 20).
		sample(nil, []string{"main", "c"}, 1, 20).
		sample(nil, []string{"main", "d"}, 1, 10)
	p.p.PeriodType = &gpprof.ValueType{Type: "cpu", Unit: "nanoseconds"}
	s.Push(t, "svc.cpu{env=x}", p.bytes(t), t0)
	eng := query.NewEngine(s.DB)
	for _, c := range []struct {
		max  int
		want profiletest.Stacks
	}{
		// main 80, a 30, then b and c tie at 20: both are kept.
		{3, profiletest.Stacks{"main;a": 30, "main;b": 20, "main;c": 20, "main;other": 10}},
		{2, profiletest.Stacks{"main;a": 30, "main;other": 50}},
		{5, profiletest.Stacks{"main;a": 30, "main;b": 20, "main;c": 20, "main;d": 10}},
	} {
		r := request(`cpu{}`)
		r.CutAbove = true
		fg, err := eng.FlameGraph(context.Background(), r, c.max)
		if err != nil {
			t.Fatal(err)
		}
		if got := flameStacks(fg); !cmp.Equal(got, c.want) {
			t.Errorf("max %d: %v, want %v", c.max, got, c.want)
		}
	}
}
