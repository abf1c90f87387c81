package storage

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	gpprof "github.com/google/pprof/profile"

	"github.com/hearth-profiler/hearth/internal/labels"
)

func TestSpanRefOfLabels(t *testing.T) {
	trace := [16]byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	for _, c := range []struct {
		name string
		str  map[string][]string
		num  map[string][]int64
		want SpanRef
		kept []string // labels that stay labels
	}{
		{name: "OpenTelemetry hex", str: map[string][]string{
			"span_id": {"00f067aa0ba902b7"}, "local_root_span_id": {"00000000000000ff"},
			"trace_id": {"4bf92f3577b34da6a3ce929d0e0e4736"}, "span_name": {"GET /cart"}},
			want: SpanRef{Span: 0x00f067aa0ba902b7, Root: 0xff, Trace: trace}, kept: []string{"span_name"}},
		{name: "otel-profiling-go's old name", str: map[string][]string{"profile_id": {"00f067aa0ba902b7"}},
			want: SpanRef{Span: 0x00f067aa0ba902b7}},
		{name: "Datadog decimal strings", str: map[string][]string{"span id": {"12345"}, "local root span id": {"678"}, "trace endpoint": {"GET /"}},
			want: SpanRef{Span: 12345, Root: 678}, kept: []string{"trace endpoint"}},
		{name: "Datadog numeric", num: map[string][]int64{"span id": {12345}, "local root span id": {678}, "bytes": {64}},
			want: SpanRef{Span: 12345, Root: 678}, kept: []string{"bytes"}},
		{name: "not IDs", str: map[string][]string{"span_id": {"checkout"}, "trace_id": {"00f067aa0ba902b7"}},
			kept: []string{"span_id", "trace_id"}},
		{name: "zero IDs", str: map[string][]string{"span_id": {"0000000000000000"}, "trace_id": {"00000000000000000000000000000000"}},
			kept: []string{"span_id", "trace_id"}},
		{name: "two names of one span", str: map[string][]string{"span_id": {"00f067aa0ba902b7"}, "profile_id": {"00f067aa0ba902b7"}},
			want: SpanRef{Span: 0x00f067aa0ba902b7}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := spanRefOf(c.str, c.num)
			if r != c.want {
				t.Errorf("spanRefOf = %+v, want %+v", r, c.want)
			}
			var kept []string
			for k, vs := range c.str {
				if !r.takes(k, vs[0]) {
					kept = append(kept, k)
				}
			}
			for k, vs := range c.num {
				if !r.takesNum(k, vs[0]) {
					kept = append(kept, k)
				}
			}
			if d := cmp.Diff(c.kept, kept, cmpSorted); d != "" {
				t.Errorf("labels kept (-want +got):\n%s", d)
			}
		})
	}
	r := SpanRef{Span: 0x00f067aa0ba902b7, Trace: trace}
	if got, want := r.AddTo(labels.FromStrings("span_name", "x")).String(),
		`{span_id="00f067aa0ba902b7", span_name="x", trace_id="4bf92f3577b34da6a3ce929d0e0e4736"}`; got != want {
		t.Errorf("AddTo = %s, want %s", got, want)
	}
}

var cmpSorted = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

// testSpanRefs are requests as a service's profiles name them: four spans
// under each local root, the roots of two traces, and spans whose root is
// not known.
func testSpanRefs(n int) []SpanRef {
	refs := []SpanRef{{}}
	for i := range n {
		r := SpanRef{Span: uint64(i+1) * 0x9e3779b97f4a7c15}
		if i%5 != 4 {
			r.Root = uint64(i/4+1) * 0xc2b2ae3d27d4eb4f
			r.Trace = [16]byte{0: byte(i / 8), 15: 1}
		}
		refs = append(refs, r)
	}
	return refs
}

func TestSpansCodec(t *testing.T) {
	for _, n := range []int{1, 2, 100, 5000} {
		refs := testSpanRefs(n)
		raw, err := appendSpans(nil, refs)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeSpans(raw)
		if err != nil {
			t.Fatalf("%d spans: %v", n, err)
		}
		if d := cmp.Diff(refs, got); d != "" {
			t.Fatalf("%d spans round trip (-want +got):\n%s", n, d)
		}
		// A span costs its ID and a root step; a root its IDs once.
		if n == 5000 && len(raw) > n*8+n/4*24+n {
			t.Errorf("%d spans take %d bytes", n, len(raw))
		}
	}
	raw, _ := appendSpans(nil, testSpanRefs(10))
	raw[len(raw)/2] ^= 1
	if _, err := decodeSpans(raw); err == nil {
		t.Error("a damaged spans.bin decoded")
	}
	if _, err := appendSpans(nil, []SpanRef{{Span: 1}}); err == nil {
		t.Error("a table whose entry 0 is a span encoded")
	}
}

func FuzzDecodeSpans(f *testing.F) {
	raw, err := appendSpans(nil, testSpanRefs(20))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add(bodyOf(f, raw, spansMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeSpans(b)
		refs, err := decodeSpans(envelope(t, spansMagic, spansVersion, b))
		if err != nil {
			return
		}
		if refs[0] != (SpanRef{}) {
			t.Fatalf("entry 0 is %+v", refs[0])
		}
		again, err := appendSpans(nil, refs)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		refs2, err := decodeSpans(again)
		if err != nil {
			t.Fatalf("decode re-encoded: %v", err)
		}
		if d := cmp.Diff(refs, refs2); d != "" {
			t.Fatalf("round trip (-first +second):\n%s", d)
		}
	})
}

// spanProfile is synthProfile with a request per sample, named as one of
// the profilers that write them does (by style), and one sample whose
// span_id is no ID.
func spanProfile(i int, refs []SpanRef) *gpprof.Profile {
	p := synthProfile(i, false)
	for k, s := range p.Sample {
		r := refs[1+(i*len(p.Sample)+k)%(len(refs)-1)]
		switch (i + k) % 4 {
		case 0, 1: // OpenTelemetry
			s.Label = map[string][]string{}
			for _, name := range []string{SpanIDLabel, LocalRootSpanIDLabel, TraceIDLabel} {
				if v := r.Get(name); v != "" {
					s.Label[name] = []string{v}
				}
			}
			s.Label["span_name"] = []string{fmt.Sprintf("op%d", k%2)}
		case 2: // Datadog
			s.NumLabel = map[string][]int64{"span id": {int64(r.Span)}}
			if r.Root != 0 {
				s.NumLabel["local root span id"] = []int64{int64(r.Root)}
			}
			s.Label = map[string][]string{"trace endpoint": {"GET /"}}
		case 3:
			if k == 0 {
				s.Label = map[string][]string{SpanIDLabel: {"checkout"}}
			}
		}
	}
	return p
}

// TestSpansAnswerEqual queries requests from a head, from blocks cut from
// it and from their compaction: each must answer as the head did.
func TestSpansAnswerEqual(t *testing.T) {
	refs := testSpanRefs(60)
	load := func(db *DB, from, to int) {
		for i := from; i < to; i++ {
			appendPayload(t, db, "anonymous", testPayload{
				Labels: map[string]string{"service_name": "svc"},
				Types:  []string{"", cpuType}, Time: t0 + int64(i)*10*sec,
				Profile: encodeProfile(t, spanProfile(i, refs)),
			})
		}
	}
	all := func(name string, ms ...*labels.Matcher) querySpec {
		return querySpec{name: name, start: t0 - sec, end: t0 + 100*10*sec, matchers: ms}
	}
	eq := func(name, value string) *labels.Matcher { return labels.MustNewMatcher(labels.MatchEqual, name, value) }
	pick := all("pick-roots")
	pick.spans = func(r SpanRef) bool { return r.Root == refs[5].Root || r.Span == refs[30].Span }
	// Profiles by ID: two of the head's, one of each later part, and one
	// that does not exist.
	svc := ProfileSeriesID(labels.FromStrings(labels.ProfileType, cpuType, "service_name", "svc"))
	byID := all("profiles")
	byID.profiles = NewProfileSet(ProfileKey{svc, t0 + 3*10*sec}, ProfileKey{svc, t0 + 4*10*sec},
		ProfileKey{svc, t0 + 15*10*sec}, ProfileKey{svc, t0 + 25*10*sec}, ProfileKey{svc, t0 + 25*10*sec + 1},
		ProfileKey{svc + 1, t0 + 5*10*sec})
	byIDSpan := all("profiles-span")
	byIDSpan.profiles = byID.profiles
	byIDSpan.spans = func(r SpanRef) bool { return r.Span%2 == 0 }
	qs := []querySpec{
		all("all"),
		all("span", eq(SpanIDLabel, refs[7].Get(SpanIDLabel))),
		all("root", eq(LocalRootSpanIDLabel, refs[9].Get(LocalRootSpanIDLabel))),
		all("trace", eq(TraceIDLabel, refs[17].Get(TraceIDLabel))),
		all("no-span", eq(SpanIDLabel, "")),
		all("not-an-id", eq(SpanIDLabel, "checkout")),
		all("re", labels.MustNewMatcher(labels.MatchRegexp, SpanIDLabel, "[0-7].*"), eq("span_name", "op1")),
		pick,
		byID,
		byIDSpan,
	}
	ref := openDB(t, t.TempDir(), testOptions())
	defer ref.Close()
	load(ref, 0, 30)
	want := map[string]map[string]answers{"anonymous": collect(t, ref, "anonymous", qs)}
	for _, name := range []string{"span", "root", "trace", "not-an-id", "pick-roots"} {
		if len(want["anonymous"][name].Stacks) == 0 {
			t.Fatalf("%s selects nothing", name)
		}
	}
	if a, b := want["anonymous"]["all"].Stacks, want["anonymous"]["no-span"].Stacks; len(b) == 0 || len(b) >= len(a) {
		t.Fatalf("samples without a request: %d stacks of %d", len(b), len(a))
	}
	if got := want["anonymous"]["profiles"].Series; len(got) != 1 || len(got[labels.FromStrings(labels.ProfileType, cpuType, "service_name", "svc").String()]) != 4 {
		t.Fatalf("profiles by ID: %v; want the four that exist", got)
	}
	if len(want["anonymous"]["profiles"].Stacks) == 0 || len(want["anonymous"]["profiles-span"].Stacks) == 0 {
		t.Fatalf("profiles by ID select no samples")
	}
	if sp := want["anonymous"]["all"].SpanPoints; len(sp) == 0 {
		t.Fatalf("SelectSeries kept no requests apart")
	}
	if vs := want["anonymous"]["all"].Values[SpanIDLabel]; len(vs) != 61 || !slices.Contains(vs, "checkout") {
		t.Fatalf("span_id values: %d %v; want the 60 spans and checkout", len(vs), vs)
	}

	dir := t.TempDir()
	opts := testOptions()
	opts.CompactionRanges = []time.Duration{4 * time.Minute}
	db := openDB(t, dir, opts)
	defer func() { db.Close() }()
	for _, r := range [][2]int{{0, 10}, {10, 20}} {
		load(db, r[0], r[1])
		if err := db.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	load(db, 20, 30)
	for _, step := range []string{"two blocks and a head", "three blocks", "compacted", "reopened"} {
		switch step {
		case "three blocks":
			if err := db.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		case "compacted":
			if err := db.Compact(context.Background()); err != nil {
				t.Fatal(err)
			}
			// A span named both with and without its trace is two
			// entries, as in the head.
			n := int64(len(ref.lookupTenant("anonymous").head.spans.refs) - 1)
			if tn := db.lookupTenant("anonymous"); len(tn.blocks) != 1 || tn.blocks[0].meta.Stats.Spans != n {
				t.Fatalf("after compaction: %d blocks, first with %d spans; want 1 with %d", len(tn.blocks), tn.blocks[0].meta.Stats.Spans, n)
			}
		case "reopened":
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db = openDB(t, dir, opts)
		}
		got := map[string]map[string]answers{"anonymous": collect(t, db, "anonymous", qs)}
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("%s: answers differ from the head's (-head +%s):\n%s", step, step, d)
		}
		checkSummed(t, db, qs)
	}
}

// checkSummed checks that a select that keeps nothing apart, as a flame
// graph's, sums per stack what one that keeps everything apart holds.
func checkSummed(t *testing.T, db *DB, qs []querySpec) {
	t.Helper()
	for _, q := range qs {
		p := SelectParams{Start: q.start, End: q.end, Matchers: q.matchers, Keep: q.keep, Spans: q.spans}
		flat, err := db.SelectStacks(context.Background(), "anonymous", p)
		if err != nil {
			t.Fatal(err)
		}
		p.Apart = ApartSets | ApartSpans
		apart, err := db.SelectStacks(context.Background(), "anonymous", p)
		if err != nil {
			t.Fatal(err)
		}
		want, got := map[string]int64{}, map[string]int64{}
		for _, sv := range apart {
			for node, v := range sv.Values {
				want[stackKey(sv.Syms, uint32(node))] += v
			}
			for k, v := range sv.Labeled {
				want[stackKey(sv.Syms, k.Stack)] += v
			}
		}
		for _, sv := range flat {
			if len(sv.Labeled) != 0 {
				t.Fatalf("%s: %d samples kept apart when nothing was asked", q.name, len(sv.Labeled))
			}
			for node, v := range sv.Values {
				got[stackKey(sv.Syms, uint32(node))] += v
			}
		}
		for k, v := range want {
			if v == 0 {
				delete(want, k)
			}
		}
		for k, v := range got {
			if v == 0 {
				delete(got, k)
			}
		}
		if d := cmp.Diff(want, got); d != "" || len(want) == 0 && q.name == "all" {
			t.Fatalf("%s: summed per stack (-apart +summed):\n%s", q.name, d)
		}
	}
}
