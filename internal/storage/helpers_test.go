package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	gpprof "github.com/google/pprof/profile"

	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/profile"
	"github.com/hearth-profiler/hearth/internal/testfiles"
)

// testPayload is what tests log: a pprof profile with its series labels.
type testPayload struct {
	Labels     map[string]string
	Types      []string // full profile type per sample type; "" drops it
	Cumulative []bool
	Time       int64
	Profile    []byte
}

func decodeTestPayload(b []byte) ([]*Input, error) {
	var tp testPayload
	if err := json.Unmarshal(b, &tp); err != nil {
		return nil, err
	}
	p, err := gpprof.ParseData(tp.Profile)
	if err != nil {
		return nil, err
	}
	p.TimeNanos = tp.Time
	in := &Input{Profile: p, Cumulative: tp.Cumulative, NumericSampleLabel: func(k string) bool { return k == "span_id" }}
	var ls []labels.Label
	for k, v := range tp.Labels {
		ls = append(ls, labels.Label{Name: k, Value: v})
	}
	in.Labels = labels.New(ls...)
	for _, ts := range tp.Types {
		var typ profile.Type
		if ts != "" {
			if typ, err = profile.ParseType(ts); err != nil {
				return nil, err
			}
		}
		in.Types = append(in.Types, typ)
	}
	return []*Input{in}, nil
}

func testOptions() Options {
	o := DefaultOptions()
	o.Decode = decodeTestPayload
	o.Retention = 0
	return o
}

func openDB(t testing.TB, dir string, opts Options) *DB {
	t.Helper()
	db, err := Open(dir, nil, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return db
}

func appendPayload(t testing.TB, db *DB, tenant string, tp testPayload) {
	t.Helper()
	raw, err := json.Marshal(tp)
	if err != nil {
		t.Fatal(err)
	}
	ins, err := decodeTestPayload(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Append(context.Background(), tenant, raw, ins); err != nil {
		t.Fatalf("Append: %v", err)
	}
}

func encodeProfile(t testing.TB, p *gpprof.Profile) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const (
	cpuType   = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
	allocType = "memory:alloc_space:bytes:space:bytes"
)

// synthProfile builds a small profile over a fixed call graph. seed varies
// the values; spans adds span_id labels to some samples.
func synthProfile(seed int, spans bool) *gpprof.Profile {
	m := &gpprof.Mapping{ID: 1, Start: 0x400000, Limit: 0x800000, File: "/bin/app", BuildID: "abc", HasFunctions: true}
	var fns []*gpprof.Function
	var locs []*gpprof.Location
	for i, name := range []string{"main.main", "main.work", "main.parse", "runtime.mallocgc", "main.encode", "io.Copy"} {
		f := &gpprof.Function{ID: uint64(i + 1), Name: name, SystemName: name, Filename: "main.go"}
		fns = append(fns, f)
		locs = append(locs, &gpprof.Location{ID: uint64(i + 1), Mapping: m, Address: 0x401000 + uint64(i)*0x10,
			Line: []gpprof.Line{{Function: f, Line: int64(10 + i)}}})
	}
	// An inlined frame: one location with two lines.
	locs = append(locs, &gpprof.Location{ID: 7, Mapping: m, Address: 0x402000,
		Line: []gpprof.Line{{Function: fns[3], Line: 99}, {Function: fns[2], Line: 42}}})
	p := &gpprof.Profile{
		SampleType: []*gpprof.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &gpprof.ValueType{Type: "cpu", Unit: "nanoseconds"}, Period: 10_000_000,
		Mapping: []*gpprof.Mapping{m}, Function: fns, Location: locs,
	}
	stacks := [][]int{{1, 0}, {2, 1, 0}, {3, 1, 0}, {6, 1, 0}, {4, 1, 0}, {5, 4, 1, 0}, {3, 4, 1, 0}}
	for i, st := range stacks {
		var sl []*gpprof.Location
		for _, k := range st {
			sl = append(sl, locs[k])
		}
		n := int64((seed*7+i*3)%5 + 1)
		s := &gpprof.Sample{Location: sl, Value: []int64{n, n * 10_000_000}}
		if spans && i%2 == 1 {
			s.Label = map[string][]string{"span_name": {fmt.Sprintf("op%d", i%3)}}
			s.NumLabel = map[string][]int64{"span_id": {int64(100 + seed%3)}}
		}
		p.Sample = append(p.Sample, s)
	}
	return p
}

// corpus loads the real Go CPU profiles of the benchmark corpus.
func corpus(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	for _, f := range testfiles.CorpusCPU(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// answers is everything a query can tell about one tenant, in a form
// independent of symbol IDs and sources.
type answers struct {
	Stacks      map[string]int64
	Series      map[string][]Point
	SeriesNames []string
	LabelNames  []string
	Values      map[string][]string
	// SpanPoints are SelectSeries' sums per request, per series.
	SpanPoints map[string][]SpanPoint
}

// stackKey names a stack by content: frames root first with their lines.
func stackKey(s *Symbols, node uint32) string {
	var frames []string
	for n := node; n != 0; n = s.StackParent[n] {
		loc := s.StackLoc[n]
		l := s.Locations[loc]
		var names []string
		for _, ln := range s.LocationLines(loc) {
			f := s.Functions[ln.Function]
			names = append(names, fmt.Sprintf("%s:%d", s.Strings[f.Name], ln.Line))
		}
		frames = append(frames, fmt.Sprintf("%x[%s]", l.Address, strings.Join(names, ",")))
	}
	slices.Reverse(frames)
	return strings.Join(frames, ";")
}

func mergedStacks(svs []*StackValues) map[string]int64 {
	out := map[string]int64{}
	for _, sv := range svs {
		for node, v := range sv.Values {
			if v != 0 {
				out[sv.Type+" "+stackKey(sv.Syms, uint32(node))] += v
			}
		}
		for k, v := range sv.Labeled {
			if v != 0 {
				out[sv.Type+" "+stackKey(sv.Syms, k.Stack)+" "+sv.Spans[k.Span].AddTo(sv.Sets[k.Set]).String()] += v
			}
		}
	}
	return out
}

type querySpec struct {
	name     string
	start    int64
	end      int64
	matchers []*labels.Matcher
	keep     func(*Symbols) []bool
	spans    func(SpanRef) bool
	profiles *ProfileSet
}

// keepFunc keeps stacks with a frame of the named function.
func keepFunc(name string) func(*Symbols) []bool {
	return func(s *Symbols) []bool {
		keep := make([]bool, s.NumStacks())
		for i := 1; i < s.NumStacks(); i++ {
			keep[i] = keep[s.StackParent[i]]
			for _, l := range s.LocationLines(s.StackLoc[i]) {
				if s.Strings[s.Functions[l.Function].Name] == name {
					keep[i] = true
				}
			}
		}
		return keep
	}
}

func collect(t testing.TB, db *DB, tenant string, qs []querySpec) map[string]answers {
	t.Helper()
	ctx := context.Background()
	out := map[string]answers{}
	for _, q := range qs {
		p := SelectParams{Start: q.start, End: q.end, Matchers: q.matchers, Keep: q.keep, Spans: q.spans, Profiles: q.profiles, Apart: ApartSets | ApartSpans}
		svs, err := db.SelectStacks(ctx, tenant, p)
		if err != nil {
			t.Fatalf("%s: SelectStacks: %v", q.name, err)
		}
		sps, err := db.SelectSeries(ctx, tenant, p)
		if err != nil {
			t.Fatalf("%s: SelectSeries: %v", q.name, err)
		}
		a := answers{Stacks: mergedStacks(svs), Series: map[string][]Point{}, Values: map[string][]string{}, SpanPoints: map[string][]SpanPoint{}}
		for _, sp := range sps {
			if len(sp.Points) > 0 {
				a.Series[sp.Labels.String()] = sp.Points
			}
			if len(sp.Spans) > 0 {
				a.SpanPoints[sp.Labels.String()] = sp.Spans
			}
		}
		// Without requests kept apart, a select may read the profiles'
		// totals instead of their samples: the totals must agree.
		p.Apart = 0
		totals, err := db.SelectSeries(ctx, tenant, p)
		if err != nil {
			t.Fatalf("%s: SelectSeries without requests: %v", q.name, err)
		}
		for _, sp := range totals {
			if len(sp.Spans) > 0 {
				t.Fatalf("%s: SelectSeries kept requests apart unasked", q.name)
			}
			// Writes may go on between the two selects (as in
			// TestConcurrentMaintenance): every point of the first must
			// be in the second as it was.
			byT := map[int64]int64{}
			for _, pt := range sp.Points {
				byT[pt.T] = pt.V
			}
			for _, pt := range a.Series[sp.Labels.String()] {
				if v, ok := byT[pt.T]; !ok || v != pt.V {
					t.Fatalf("%s: %s at %d: total %d (found %v); with requests apart %d", q.name, sp.Labels, pt.T, v, ok, pt.V)
				}
			}
		}
		ls, err := db.Series(ctx, tenant, q.start, q.end, q.matchers)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			a.SeriesNames = append(a.SeriesNames, l.String())
		}
		if a.LabelNames, err = db.LabelNames(ctx, tenant, q.start, q.end, q.matchers); err != nil {
			t.Fatal(err)
		}
		for _, n := range append(slices.Clone(a.LabelNames), "span_name", "nope") {
			vs, err := db.LabelValues(ctx, tenant, n, q.start, q.end, q.matchers)
			if err != nil {
				t.Fatal(err)
			}
			a.Values[n] = vs
		}
		out[q.name] = a
	}
	return out
}

var t0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC).UnixNano()

const sec = int64(time.Second)

func timeAt(ns int64) time.Time { return time.Unix(0, ns).UTC() }

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cmpDiff(a, b any) string { return cmp.Diff(a, b) }
