package querier_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"
	gpprof "github.com/google/pprof/profile"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"google.golang.org/protobuf/proto"

	"github.com/hearth-profiler/hearth/internal/profiletest"
)

// lineProfile is a CPU profile whose frames are "function:line", root
// first, each sample labelled with a span.
func lineProfile(t *testing.T, stacks map[string]int64) []byte {
	t.Helper()
	p := &gpprof.Profile{
		SampleType: []*gpprof.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &gpprof.ValueType{Type: "cpu", Unit: "nanoseconds"}, Period: 1,
	}
	fns := map[string]*gpprof.Function{}
	locs := map[string]*gpprof.Location{}
	for stack, v := range stacks {
		s := &gpprof.Sample{Value: []int64{v}, Label: map[string][]string{"span_id": {spanA}}}
		frames := strings.Split(stack, ";")
		for i := len(frames) - 1; i >= 0; i-- {
			l := locs[frames[i]]
			if l == nil {
				var name string
				var line int64
				fmt.Sscanf(strings.Replace(frames[i], ":", " ", 1), "%s %d", &name, &line)
				fn := fns[name]
				if fn == nil {
					fn = &gpprof.Function{ID: uint64(len(p.Function) + 1), Name: name, Filename: "x.go"}
					p.Function = append(p.Function, fn)
					fns[name] = fn
				}
				l = &gpprof.Location{ID: uint64(len(p.Location) + 1), Line: []gpprof.Line{{Function: fn, Line: line}}}
				p.Location = append(p.Location, l)
				locs[frames[i]] = l
			}
			s.Location = append(s.Location, l)
		}
		p.Sample = append(p.Sample, s)
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readPprof reads a pprof message back as values per stack of
// "function:line" frames, leaf first, and checks it has no labels.
func readPprof(t *testing.T, msg proto.Message) map[string]int64 {
	t.Helper()
	raw, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := gpprof.ParseData(raw)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, s := range p.Sample {
		if len(s.Label) > 0 || len(s.NumLabel) > 0 {
			t.Errorf("sample labels kept: %v %v", s.Label, s.NumLabel)
		}
		var fr []string
		for _, l := range s.Location {
			fr = append(fr, fmt.Sprintf("%s:%d", l.Line[0].Function.Name, l.Line[0].Line))
		}
		out[strings.Join(fr, ";")] += s.Value[0]
	}
	return out
}

// TestGoPGO asks for merged profiles trimmed for Go's PGO, as
// `profilecli query go-pgo` does.
func TestGoPGO(t *testing.T) {
	s := profiletest.OpenStore(t)
	s.Push(t, "shop.cpu", lineProfile(t, map[string]int64{
		"main:10;handle:20;parse:30":  10,
		"main:10;handle:20;parse:31":  5,
		"main:10;handle:21;render:40": 7,
		"main:11;handle:20;parse:30":  2,
	}), t0)
	for name, c := range serve(t, s) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			for _, x := range []struct {
				keep      uint32
				aggregate bool
				want      map[string]int64 // leaf first
			}{
				{2, false, map[string]int64{"parse:30;handle:20": 12, "parse:31;handle:20": 5, "render:40;handle:21": 7}},
				{2, true, map[string]int64{"parse:0;handle:20": 17, "render:0;handle:21": 7}},
				{1, true, map[string]int64{"parse:0": 17, "render:0": 7}},
				{0, false, map[string]int64{"parse:30;handle:20;main:10": 10, "parse:31;handle:20;main:10": 5,
					"render:40;handle:21;main:10": 7, "parse:30;handle:20;main:11": 2}},
			} {
				sel := &typesv1.StackTraceSelector{GoPgo: &typesv1.GoPGO{KeepLocations: x.keep, AggregateCallees: x.aggregate}}
				//lint:ignore SA1019 profilecli's go-pgo command calls it: Hearth must answer it.
				p, err := c.SelectMergeProfile(ctx, connect.NewRequest(&querierv1.SelectMergeProfileRequest{ProfileTypeID: cpuType,
					LabelSelector: "{}", Start: start, End: end, StackTraceSelector: sel}))
				if err != nil {
					t.Fatal(err)
				}
				if got := readPprof(t, p.Msg); !cmp.Equal(got, x.want) {
					t.Errorf("keep %d, aggregate %v: SelectMergeProfile %v; want %v", x.keep, x.aggregate, got, x.want)
				}
				st, err := c.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{ProfileTypeID: cpuType,
					LabelSelector: "{}", Start: start, End: end, StackTraceSelector: sel, Format: querierv1.ProfileFormat_PROFILE_FORMAT_PPROF}))
				if err != nil {
					t.Fatal(err)
				}
				if got := readPprof(t, st.Msg.Pprof.GetProfile()); !cmp.Equal(got, x.want) {
					t.Errorf("keep %d, aggregate %v: SelectMergeStacktraces %v; want %v", x.keep, x.aggregate, got, x.want)
				}
			}
			_, err := c.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{ProfileTypeID: cpuType,
				LabelSelector: "{}", Start: start, End: end, StackTraceSelector: &typesv1.StackTraceSelector{GoPgo: &typesv1.GoPGO{KeepLocations: 2}}}))
			if connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Errorf("go_pgo with a flame graph: %v; want invalid_argument", err)
			}
		})
	}
}

// TestPprofMaxNodes asks for merged profiles cut to a number of nodes, as
// Profiles Drilldown's export and function details do.
func TestPprofMaxNodes(t *testing.T) {
	s := profiletest.OpenStore(t)
	// Function tree: root 34, main 34, d 21, a 13, b 10, c 3, e 1.
	s.Push(t, "shop.cpu", lineProfile(t, map[string]int64{
		"main:1;a:1;b:1": 10,
		"main:1;a:1;c:1": 3,
		"main:1;d:1":     20,
		"main:1;d:1;e:1": 1,
	}), t0)
	for name, c := range serve(t, s) {
		t.Run(name, func(t *testing.T) {
			for _, x := range []struct {
				max  int64
				want map[string]int64 // leaf first
			}{
				{4, map[string]int64{"other:0;a:1;main:1": 13, "d:1;main:1": 20, "other:0;d:1;main:1": 1}},
				{1, map[string]int64{"other:0;main:1": 34}},
				{7, map[string]int64{"b:1;a:1;main:1": 10, "c:1;a:1;main:1": 3, "d:1;main:1": 20, "e:1;d:1;main:1": 1}},
			} {
				//lint:ignore SA1019 Profiles Drilldown calls it: Hearth must answer it.
				p, err := c.SelectMergeProfile(context.Background(), connect.NewRequest(&querierv1.SelectMergeProfileRequest{ProfileTypeID: cpuType,
					LabelSelector: "{}", Start: start, End: end, MaxNodes: &x.max}))
				if err != nil {
					t.Fatal(err)
				}
				if got := readPprof(t, p.Msg); !cmp.Equal(got, x.want) {
					t.Errorf("max_nodes %d: %v; want %v", x.max, got, x.want)
				}
			}
		})
	}
}

// TestPprofMaxNodesInlined cuts a stack inside a location of two lines
// (b inlined into a): the outer function, a, is kept, and only b is cut.
func TestPprofMaxNodesInlined(t *testing.T) {
	fn := func(id uint64, name string) *gpprof.Function {
		return &gpprof.Function{ID: id, Name: name, Filename: "x.go"}
	}
	main, a, b, c := fn(1, "main"), fn(2, "a"), fn(3, "b"), fn(4, "c")
	lMain := &gpprof.Location{ID: 1, Address: 0x10, Line: []gpprof.Line{{Function: main, Line: 1}}}
	lAB := &gpprof.Location{ID: 2, Address: 0x20, Line: []gpprof.Line{{Function: b, Line: 9}, {Function: a, Line: 5}}}
	lA := &gpprof.Location{ID: 3, Address: 0x30, Line: []gpprof.Line{{Function: a, Line: 5}}}
	lC := &gpprof.Location{ID: 4, Address: 0x40, Line: []gpprof.Line{{Function: c, Line: 7}}}
	p := &gpprof.Profile{
		SampleType: []*gpprof.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &gpprof.ValueType{Type: "cpu", Unit: "nanoseconds"}, Period: 1,
		Sample: []*gpprof.Sample{
			{Location: []*gpprof.Location{lAB, lMain}, Value: []int64{10}},
			{Location: []*gpprof.Location{lC, lA, lMain}, Value: []int64{3}},
		},
		Location: []*gpprof.Location{lMain, lAB, lA, lC}, Function: []*gpprof.Function{main, a, b, c},
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	s := profiletest.OpenStore(t)
	s.Push(t, "shop.cpu", buf.Bytes(), t0)
	c0 := serve(t, s)["connect-proto"]
	// Function tree: root 13, main 13, a 13, b 10, c 3; three nodes keep
	// main and a.
	three := int64(3)
	//lint:ignore SA1019 Profiles Drilldown calls it: Hearth must answer it.
	res, err := c0.SelectMergeProfile(context.Background(), connect.NewRequest(&querierv1.SelectMergeProfileRequest{ProfileTypeID: cpuType,
		LabelSelector: "{}", Start: start, End: end, MaxNodes: &three}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := readPprof(t, res.Msg), map[string]int64{"other:0;a:5;main:1": 13}; !cmp.Equal(got, want) {
		t.Errorf("cut inside an inlined location: %v; want %v", got, want)
	}
}
