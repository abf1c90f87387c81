package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"reflect"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	gpprof "github.com/google/pprof/profile"
	"github.com/hearth-profiler/hearth/internal/testfiles"
)

// referencePprof is what decodePprofProto promises to return: google/pprof's
// ParseUncompressed, then CheckValid, as ParseData does for protobufs.
func referencePprof(data []byte) (p *gpprof.Profile, err error) {
	defer func() {
		// A panic in google/pprof is its bug, not ours; report it as a
		// refusal so the comparison still checks that we do not panic.
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("google/pprof panicked: %v", r)
		}
	}()
	p, err = gpprof.ParseUncompressed(data)
	if err != nil {
		return nil, err
	}
	if err := p.CheckValid(); err != nil {
		return nil, err
	}
	return p, nil
}

// diffPprof compares data decoded both ways; it returns "" when both refuse
// it or both give equal profiles.
func diffPprof(data []byte) string {
	want, werr := referencePprof(data)
	got, gerr := decodePprofProto(data)
	switch {
	case werr != nil && gerr != nil:
		return ""
	case werr != nil:
		return fmt.Sprintf("google/pprof refuses it (%v), decodePprofProto accepts it", werr)
	case gerr != nil:
		return fmt.Sprintf("google/pprof accepts it, decodePprofProto refuses it: %v", gerr)
	}
	if d := diffProfiles(want, got); d != "" {
		return d
	}
	if w, g := want.String(), got.String(); w != g {
		return fmt.Sprintf("String() differs:\n%s\nvs\n%s", w, g)
	}
	return ""
}

// diffProfiles compares two profiles field by field, nil against empty
// included, and checks that got links its messages as want does. It is a
// hand-written cmp.Diff: go-cmp takes a quarter second per real profile,
// following every pointer again from every sample, which starves the fuzzer.
// google/pprof leaves every unexported field zero after decoding, so the
// structs compare with == once their pointers are compared.
func diffProfiles(want, got *gpprof.Profile) string {
	if d := cmp.Diff(want.SampleType, got.SampleType, cmpopts.IgnoreUnexported(gpprof.ValueType{})); d != "" {
		return "SampleType differs:\n" + d
	}
	if d := cmp.Diff(want.PeriodType, got.PeriodType, cmpopts.IgnoreUnexported(gpprof.ValueType{})); d != "" {
		return "PeriodType differs:\n" + d
	}
	type top struct {
		DefaultSampleType, DocURL, DropFrames, KeepFrames string
		Comments                                          []string
		TimeNanos, DurationNanos, Period                  int64
		NSample, NMapping, NLocation, NFunction           int
		NilSample, NilMapping, NilLocation, NilFunction   bool
	}
	topOf := func(p *gpprof.Profile) top {
		return top{p.DefaultSampleType, p.DocURL, p.DropFrames, p.KeepFrames, p.Comments,
			p.TimeNanos, p.DurationNanos, p.Period,
			len(p.Sample), len(p.Mapping), len(p.Location), len(p.Function),
			p.Sample == nil, p.Mapping == nil, p.Location == nil, p.Function == nil}
	}
	if d := cmp.Diff(topOf(want), topOf(got)); d != "" {
		return "profile differs:\n" + d
	}
	for i := range want.Mapping {
		if *want.Mapping[i] != *got.Mapping[i] {
			return fmt.Sprintf("mapping %d: got %+v, want %+v", i, *got.Mapping[i], *want.Mapping[i])
		}
	}
	for i := range want.Function {
		if *want.Function[i] != *got.Function[i] {
			return fmt.Sprintf("function %d: got %+v, want %+v", i, *got.Function[i], *want.Function[i])
		}
	}
	wm, wf, wl := indexProfile(want)
	gm, gf, gl := indexProfile(got)
	for i, w := range want.Location {
		g := got.Location[i]
		if w.ID != g.ID || w.Address != g.Address || w.IsFolded != g.IsFolded || at(wm, w.Mapping) != at(gm, g.Mapping) ||
			(w.Line == nil) != (g.Line == nil) || len(w.Line) != len(g.Line) {
			return fmt.Sprintf("location %d: got %+v, want %+v", i, *g, *w)
		}
		for k := range w.Line {
			wl, gl := w.Line[k], g.Line[k]
			if wl.Line != gl.Line || wl.Column != gl.Column || at(wf, wl.Function) != at(gf, gl.Function) {
				return fmt.Sprintf("location %d line %d: got %+v, want %+v", i, k, gl, wl)
			}
		}
	}
	for i, w := range want.Sample {
		g := got.Sample[i]
		if (w.Location == nil) != (g.Location == nil) || len(w.Location) != len(g.Location) {
			return fmt.Sprintf("sample %d: got locations %v, want %v", i, g.Location, w.Location)
		}
		for k := range w.Location {
			if at(wl, w.Location[k]) != at(gl, g.Location[k]) {
				return fmt.Sprintf("sample %d frame %d: got location %d, want %d", i, k, at(gl, g.Location[k]), at(wl, w.Location[k]))
			}
		}
		if !reflect.DeepEqual(w.Value, g.Value) || !reflect.DeepEqual(w.Label, g.Label) ||
			!reflect.DeepEqual(w.NumLabel, g.NumLabel) || !reflect.DeepEqual(w.NumUnit, g.NumUnit) {
			return fmt.Sprintf("sample %d: got %v %v %v %v, want %v %v %v %v", i,
				g.Value, g.Label, g.NumLabel, g.NumUnit, w.Value, w.Label, w.NumLabel, w.NumUnit)
		}
	}
	return ""
}

// indexProfile numbers a profile's messages by their place in its lists;
// nil gets -1.
func indexProfile(p *gpprof.Profile) (map[*gpprof.Mapping]int, map[*gpprof.Function]int, map[*gpprof.Location]int) {
	ms, fs, ls := map[*gpprof.Mapping]int{nil: -1}, map[*gpprof.Function]int{nil: -1}, map[*gpprof.Location]int{nil: -1}
	for i, m := range p.Mapping {
		ms[m] = i
	}
	for i, f := range p.Function {
		fs[f] = i
	}
	for i, l := range p.Location {
		ls[l] = i
	}
	return ms, fs, ls
}

// at returns m[k], or -2 when k is not in m.
func at[K comparable](m map[K]int, k K) int {
	if i, ok := m[k]; ok {
		return i
	}
	return -2
}

func gunzipBytes(tb testing.TB, data []byte) []byte {
	tb.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		tb.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// readProtoFiles returns the gunzipped profiles of files.
func readProtoFiles(tb testing.TB, files []string) map[string][]byte {
	tb.Helper()
	out := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out[f] = gunzipBytes(tb, data)
	}
	return out
}

// legacyAsProto converts the legacy-format profiles of testdata/pprof to
// protobufs.
func legacyAsProto(tb testing.TB) map[string][]byte {
	tb.Helper()
	out := map[string][]byte{}
	for _, f := range testfiles.Pprof(tb) {
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		p, err := gpprof.ParseData(data)
		if err != nil {
			tb.Fatalf("parse %s: %v", f, err)
		}
		var buf bytes.Buffer
		if err := p.WriteUncompressed(&buf); err != nil {
			tb.Fatal(err)
		}
		out[f] = buf.Bytes()
	}
	return out
}

var (
	runtimeProfilesOnce sync.Once
	runtimeProfiles     map[string][]byte
)

// makeRuntimeProfiles records this process's profiles with runtime/pprof,
// with some labelled CPU work, contention and blocking to fill them.
func makeRuntimeProfiles(tb testing.TB) map[string][]byte {
	tb.Helper()
	runtimeProfilesOnce.Do(func() {
		runtime.SetMutexProfileFraction(1)
		runtime.SetBlockProfileRate(1)
		defer runtime.SetMutexProfileFraction(0)
		defer runtime.SetBlockProfileRate(0)
		out := map[string][]byte{}
		var cpu bytes.Buffer
		cpuErr := pprof.StartCPUProfile(&cpu)
		var mu sync.Mutex
		var wg sync.WaitGroup
		sink := make([][]byte, 0, 1024)
		for g := range 4 {
			wg.Add(1)
			labels := pprof.Labels("worker", fmt.Sprint(g), "phase", "spin")
			go pprof.Do(context.Background(), labels, func(context.Context) {
				defer wg.Done()
				deadline := time.Now().Add(150 * time.Millisecond)
				x := 0
				for time.Now().Before(deadline) {
					mu.Lock()
					for i := range 10000 {
						x += i * g
					}
					sink = append(sink[:len(sink)%1000], make([]byte, 64+x%512))
					mu.Unlock()
				}
			})
		}
		ch := make(chan int)
		go func() { time.Sleep(10 * time.Millisecond); ch <- 1 }()
		<-ch
		wg.Wait()
		if cpuErr == nil {
			pprof.StopCPUProfile()
			out["cpu"] = cpu.Bytes()
		}
		runtime.GC()
		for _, name := range []string{"heap", "allocs", "goroutine", "mutex", "block", "threadcreate"} {
			var buf bytes.Buffer
			if err := pprof.Lookup(name).WriteTo(&buf, 0); err != nil {
				panic(err)
			}
			out[name] = buf.Bytes()
		}
		runtimeProfiles = out
	})
	out := map[string][]byte{}
	for name, data := range runtimeProfiles {
		out["runtime/"+name] = gunzipBytes(tb, data)
	}
	return out
}

// realProfiles returns every real profile the tests compare on.
func realProfiles(tb testing.TB) map[string][]byte {
	tb.Helper()
	all := map[string][]byte{}
	for _, m := range []map[string][]byte{
		readProtoFiles(tb, testfiles.Glob(tb, "bench/corpus/*.pb.gz")),
		legacyAsProto(tb),
		makeRuntimeProfiles(tb),
	} {
		for k, v := range m {
			all[k] = v
		}
	}
	return all
}

func TestDecodePprofRealProfiles(t *testing.T) {
	for name, data := range realProfiles(t) {
		if d := diffPprof(data); d != "" {
			t.Errorf("%s: %s", name, d)
		}
		if _, err := decodePprofProto(data); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestDecodePprofTruncated decodes every prefix of real profiles: each must
// be refused, or accepted equal to google/pprof's, without a panic.
func TestDecodePprofTruncated(t *testing.T) {
	cpu := testfiles.Path(t, "bench/corpus/cpu-01.pb.gz")
	inputs := map[string][]byte{"labels": labelledProfile(t), "cpu": readProtoFiles(t, []string{cpu})[cpu]}
	if g := makeRuntimeProfiles(t)["runtime/goroutine"]; g != nil {
		inputs["goroutine"] = g
	}
	if testing.Short() {
		// Every prefix of a real CPU profile is most of the time of
		// this package's tests, ten times more under -race.
		delete(inputs, "cpu")
	}
	for name, data := range inputs {
		for n := range len(data) {
			if d := diffPprof(data[:n]); d != "" {
				t.Fatalf("%s cut to %d of %d bytes: %s", name, n, len(data), d)
			}
		}
	}
}

// labelledProfile is a profile with string and numeric labels, units,
// comments, inlined lines and every mapping flag.
func labelledProfile(tb testing.TB) []byte {
	tb.Helper()
	m1 := &gpprof.Mapping{ID: 1, Start: 0x400000, Limit: 0x500000, Offset: 0x1000, File: "/bin/app", BuildID: "abc",
		HasFunctions: true, HasFilenames: true, HasLineNumbers: true, HasInlineFrames: true}
	m2 := &gpprof.Mapping{ID: 2, Start: 0xffff0000, Limit: 0xffffffff, File: "[kernel.kallsyms]_stext"}
	f1 := &gpprof.Function{ID: 1, Name: "main.main", SystemName: "main.main", Filename: "main.go", StartLine: 10}
	f2 := &gpprof.Function{ID: 2, Name: "main.inlined", Filename: "main.go", StartLine: 20}
	f3 := &gpprof.Function{ID: 3, Name: "kernel_fn"}
	l1 := &gpprof.Location{ID: 1, Mapping: m1, Address: 0x401000, Line: []gpprof.Line{{Function: f2, Line: 22, Column: 3}, {Function: f1, Line: 12}}}
	l2 := &gpprof.Location{ID: 2, Mapping: m2, Address: 0xffff1000, Line: []gpprof.Line{{Function: f3}}, IsFolded: true}
	l3 := &gpprof.Location{ID: 3, Address: 0x1234}
	p := &gpprof.Profile{
		SampleType:        []*gpprof.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}, {Type: "alloc_space", Unit: "bytes"}},
		DefaultSampleType: "cpu",
		Sample: []*gpprof.Sample{
			{Location: []*gpprof.Location{l2, l1}, Value: []int64{1, 10000000, -5},
				Label: map[string][]string{"span_id": {"s1"}, "multi": {"a", "b"}}},
			{Location: []*gpprof.Location{l3, l1}, Value: []int64{2, 20000000, 0},
				NumLabel: map[string][]int64{"bytes": {1024}, "thread": {7, 8}, "request": {1, 2}},
				NumUnit:  map[string][]string{"bytes": {"bytes"}, "request": {"bytes", "bytes"}}},
			{Location: []*gpprof.Location{l1}, Value: []int64{3, 1 << 40, 1}},
			{Location: nil, Value: []int64{0, 0, 0}},
		},
		Mapping:       []*gpprof.Mapping{m1, m2},
		Location:      []*gpprof.Location{l1, l2, l3},
		Function:      []*gpprof.Function{f1, f2, f3},
		Comments:      []string{"first comment", "second"},
		DocURL:        "https://example.com/doc",
		DropFrames:    "runtime\\..*",
		KeepFrames:    "main\\..*",
		TimeNanos:     1_700_000_000_000_000_000,
		DurationNanos: 10_000_000_000,
		PeriodType:    &gpprof.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:        10000000,
	}
	var buf bytes.Buffer
	if err := p.WriteUncompressed(&buf); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// pb builds protobuf bytes by hand.
type pb []byte

func (b pb) varint(x uint64) pb {
	for x >= 0x80 {
		b = append(b, byte(x)|0x80)
		x >>= 7
	}
	return append(b, byte(x))
}

func (b pb) uint(field int, x uint64) pb { return b.varint(uint64(field) << 3).varint(x) }

func (b pb) bytes(field int, x []byte) pb {
	return append(b.varint(uint64(field)<<3|2).varint(uint64(len(x))), x...)
}

func (b pb) str(field int, s string) pb { return b.bytes(field, []byte(s)) }

func (b pb) msg(field int, m pb) pb { return b.bytes(field, m) }

func (b pb) raw(x ...byte) pb { return append(b, x...) }

// strings appends the string table "", "cpu", "nanoseconds", "main", "a.go".
func (b pb) strings() pb {
	for _, s := range []string{"", "cpu", "nanoseconds", "main", "a.go"} {
		b = b.str(6, s)
	}
	return b
}

// minimal is a valid one-sample profile built from its parts, so that each
// case can change one.
func minimal(sample, location, function pb) pb {
	var b pb
	b = b.msg(1, pb{}.uint(1, 1).uint(2, 2))
	b = b.msg(2, sample)
	b = b.msg(4, location)
	b = b.msg(5, function)
	return b.strings()
}

var (
	goodSample   = pb{}.uint(1, 1).uint(2, 7)
	goodLocation = pb{}.uint(1, 1).uint(3, 0x1000).msg(4, pb{}.uint(1, 1).uint(2, 5))
	goodFunction = pb{}.uint(1, 1).uint(2, 3).uint(4, 4)
)

func TestDecodePprofHandMade(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      pb
		wantErr string // "" for success
	}{
		{"minimal", minimal(goodSample, goodLocation, goodFunction), ""},
		{"empty", pb{}, "profile is empty"},
		{"no string table", pb{}.msg(1, pb{}.uint(1, 0)), "string table is empty"},
		{"only strings", pb{}.strings(), ""},
		{"string 0 not empty", pb{}.str(6, "x"), "string table entry 0"},
		{"packed location ids and values", minimal(pb{}.bytes(1, []byte{1}).bytes(2, []byte{7}), goodLocation, goodFunction), ""},
		{"empty packed fields", minimal(pb{}.bytes(1, nil).bytes(2, nil).uint(2, 7), goodLocation, goodFunction), ""},
		{"sample without locations", minimal(pb{}.uint(2, 7), goodLocation, goodFunction), ""},
		{"function name index out of range", minimal(goodSample, goodLocation, pb{}.uint(1, 1).uint(2, 99)), "string index 99 out of range"},
		{"negative string index", minimal(goodSample, goodLocation, pb{}.uint(1, 1).uint(2, 1<<64-1)), "string index -1 out of range"},
		{"bad index overwritten", minimal(goodSample, goodLocation, pb{}.uint(1, 1).uint(2, 99).uint(2, 3)), ""},
		{"unknown location id", minimal(pb{}.uint(1, 9).uint(2, 7), goodLocation, goodFunction), "location id 9 not found"},
		{"location id 0 in sample", minimal(pb{}.uint(1, 0).uint(2, 7), goodLocation, goodFunction), "location id 0 not found"},
		{"unknown function id", minimal(goodSample, pb{}.uint(1, 1).msg(4, pb{}.uint(1, 5)), goodFunction), "function id 5 not found"},
		{"line without function", minimal(goodSample, pb{}.uint(1, 1).msg(4, pb{}.uint(2, 5)), goodFunction), "function id 0 not found"},
		{"unknown mapping id", minimal(goodSample, goodLocation.uint(2, 3), goodFunction), ""},
		{"location id 0", minimal(pb{}.uint(2, 7), pb{}.uint(3, 1), goodFunction), "id 0 is reserved"},
		{"duplicate function id", minimal(goodSample, goodLocation, goodFunction).msg(5, goodFunction), "repeats"},
		{"sparse ids", minimal(pb{}.uint(1, 1000).uint(2, 7), pb{}.uint(1, 1000).msg(4, pb{}.uint(1, 77)), pb{}.uint(1, 77).uint(2, 3)), ""},
		{"too many values", minimal(goodSample.uint(2, 8), goodLocation, goodFunction), "2 values for 1 sample types"},
		{"samples without sample types", pb{}.msg(2, pb{}).strings(), "no sample types"},
		{"wire type 3", minimal(goodSample, goodLocation, goodFunction).raw(0x7b), "unknown wire type 3"},
		{"wire type 7 in a message", minimal(goodSample.raw(0x27), goodLocation, goodFunction), "unknown wire type"},
		{"sample as varint", pb{}.uint(2, 1).strings(), "wire type 0"},
		{"location id as fixed64", minimal(pb{}.raw(0x09, 1, 0, 0, 0, 0, 0, 0, 0).uint(2, 7), goodLocation, goodFunction), "wire type 1"},
		{"unknown fields", minimal(goodSample.raw(0x25, 1, 2, 3, 4).raw(0x21, 1, 2, 3, 4, 5, 6, 7, 8).str(9, "x"), goodLocation, goodFunction).uint(99, 5).raw(0, 0), ""},
		{"truncated fixed32", minimal(goodSample, goodLocation, goodFunction).raw(0x7d, 1, 2), "fixed32"},
		{"overlong varint", minimal(goodSample, goodLocation, goodFunction).raw(0x48, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), "bad varint"},
		{"10-byte varint", minimal(goodSample, goodLocation, goodFunction).raw(0x48, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), ""},
		{"truncated varint", minimal(goodSample, goodLocation, goodFunction).raw(0x50, 0x80), "bad varint"},
		{"bad varint in packed ids", minimal(pb{}.bytes(1, []byte{0x81}).uint(2, 7), goodLocation, goodFunction), "bad varint in packed field"},
		{"length past end", minimal(goodSample, goodLocation, goodFunction).raw(0x12, 0x05, 0), "runs past the end"},
		{"time_nanos twice", minimal(goodSample, goodLocation, goodFunction).uint(9, 5).uint(9, 6), "concatenated"},
		{"time_nanos zero then set", minimal(goodSample, goodLocation, goodFunction).uint(9, 0).uint(9, 6), ""},
		{"period_type replaced", minimal(goodSample, goodLocation, goodFunction).msg(11, pb{}.uint(1, 99)).msg(11, pb{}.uint(2, 2)), ""},
		{"period_type bad index", minimal(goodSample, goodLocation, goodFunction).msg(11, pb{}.uint(1, 99)), "string index 99"},
		{"comments packed and not", minimal(goodSample, goodLocation, goodFunction).bytes(13, []byte{1, 3}).uint(13, 4), ""},
		{"comment bad index", minimal(goodSample, goodLocation, goodFunction).uint(13, 40), "comment 0"},
		{"drop_frames bad index", minimal(goodSample, goodLocation, goodFunction).uint(7, 40), "drop_frames"},
		{"doc_url", minimal(goodSample, goodLocation, goodFunction).uint(15, 3), ""},
		{"labels", minimal(goodSample.
			msg(3, pb{}.uint(1, 3).uint(2, 4)).             // string label
			msg(3, pb{}.uint(1, 1).uint(3, 10)).            // num label, no unit
			msg(3, pb{}.uint(1, 1).uint(3, 11).uint(4, 2)). // num label, unit
			msg(3, pb{}.uint(1, 4).uint(4, 2)).             // unit only
			msg(3, pb{}.uint(1, 3).uint(2, 1).uint(4, 99)). // str wins; unit not read
			msg(3, pb{}.uint(1, 2)),                        // empty label
			goodLocation, goodFunction), ""},
		{"label key bad index", minimal(goodSample.msg(3, pb{}.uint(1, 50)), goodLocation, goodFunction), "label key"},
		{"label unit bad index", minimal(goodSample.msg(3, pb{}.uint(1, 1).uint(3, 1).uint(4, 50)), goodLocation, goodFunction), "num_unit"},
		{"mapping bool as length", minimal(goodSample, goodLocation, goodFunction).msg(3, pb{}.uint(1, 1).bytes(7, nil)), "has_functions"},
		{"mapping id 0", minimal(goodSample, goodLocation, goodFunction).msg(3, pb{}.uint(2, 1)), "mapping 0: id 0 is reserved"},
		{"kernel mapping", minimal(goodSample, goodLocation.uint(2, 1), goodFunction).msg(3, pb{}.uint(1, 1).uint(5, 5)).str(6, "[kernel.kallsyms]_text"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := diffPprof(tc.in); d != "" {
				t.Fatalf("input %x: %s", []byte(tc.in), d)
			}
			_, err := decodePprofProto(tc.in)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("input %x: got error %v, want none", []byte(tc.in), err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("input %x: got no error, want %q", []byte(tc.in), tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("input %x: got error %q, want it to contain %q", []byte(tc.in), err, tc.wantErr)
			}
		})
	}
}

// TestDecodePprofSlicesDetached checks that appending to one sample's
// slices leaves the next sample's alone.
func TestDecodePprofSlicesDetached(t *testing.T) {
	p, err := decodePprofProto(labelledProfile(t))
	if err != nil {
		t.Fatal(err)
	}
	next := fmt.Sprint(p.Sample[1].Value, len(p.Sample[1].Location), p.Sample[1].Location[0].ID)
	s := p.Sample[0]
	s.Value = append(s.Value, 99)
	s.Location = append(s.Location, p.Location[2])
	p.Location[0].Line = append(p.Location[0].Line, gpprof.Line{})
	if got := fmt.Sprint(p.Sample[1].Value, len(p.Sample[1].Location), p.Sample[1].Location[0].ID); got != next {
		t.Errorf("sample 1 after appending to sample 0: got %s, want %s", got, next)
	}
	if got := p.Location[1].Line[0].Function.Name; got != "kernel_fn" {
		t.Errorf("location 1 after appending to location 0: got function %q, want kernel_fn", got)
	}
}

// FuzzDecodePprof checks decodePprofProto against google/pprof: it must
// never panic, refuse what google/pprof refuses, and otherwise decode the
// same profile. Run it with
// go test -run=^$ -fuzz=FuzzDecodePprof -fuzztime=180s ./internal/ingest
func FuzzDecodePprof(f *testing.F) {
	f.Add([]byte(labelledProfile(f)))
	f.Add([]byte(minimal(goodSample, goodLocation, goodFunction)))
	f.Add([]byte(minimal(goodSample.msg(3, pb{}.uint(1, 1).uint(3, 11).uint(4, 2)), goodLocation.uint(2, 1), goodFunction).msg(3, pb{}.uint(1, 1).uint(5, 3))))
	for _, data := range readProtoFiles(f, []string{testfiles.Path(f, "bench/corpus/cpu-01.pb.gz"), testfiles.Path(f, "bench/corpus/heap-00.pb.gz")}) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if d := diffPprof(data); d != "" {
			t.Fatal(d)
		}
	})
}
