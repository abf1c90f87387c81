package querier_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"
	gpprof "github.com/google/pprof/profile"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/hearth-profiler/hearth/internal/profiletest"
	"github.com/hearth-profiler/hearth/internal/querier"
	"github.com/hearth-profiler/hearth/internal/query"
)

const cpuType = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// IDs of the test's requests, as profilers label samples with them.
const (
	spanA  = "00f067aa0ba902b7"
	spanB  = "00f067aa0ba902b8"
	spanC  = "1111111111111111"
	root1  = "00000000000000a1"
	root2  = "00000000000000a2"
	trace1 = "4bf92f3577b34da6a3ce929d0e0e4736"
	trace2 = "5bf92f3577b34da6a3ce929d0e0e4736"
)

type sampleSpec struct {
	stack  string // root first, ";"-joined
	value  int64  // nanoseconds of CPU
	labels map[string]string
}

// cpuProfile builds a CPU profile of the given samples.
func cpuProfile(t *testing.T, samples ...sampleSpec) []byte {
	t.Helper()
	p := &gpprof.Profile{
		SampleType: []*gpprof.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &gpprof.ValueType{Type: "cpu", Unit: "nanoseconds"}, Period: 1,
	}
	locs := map[string]*gpprof.Location{}
	for _, s := range samples {
		frames := strings.Split(s.stack, ";")
		smp := &gpprof.Sample{Value: []int64{1, s.value}}
		for i := len(frames) - 1; i >= 0; i-- {
			l := locs[frames[i]]
			if l == nil {
				fn := &gpprof.Function{ID: uint64(len(p.Function) + 1), Name: frames[i]}
				p.Function = append(p.Function, fn)
				l = &gpprof.Location{ID: uint64(len(p.Location) + 1), Line: []gpprof.Line{{Function: fn}}}
				p.Location = append(p.Location, l)
				locs[frames[i]] = l
			}
			smp.Location = append(smp.Location, l)
		}
		for k, v := range s.labels {
			if smp.Label == nil {
				smp.Label = map[string][]string{}
			}
			smp.Label[k] = []string{v}
		}
		p.Sample = append(p.Sample, smp)
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func span(id, root, trace string) map[string]string {
	return map[string]string{"span_id": id, "local_root_span_id": root, "trace_id": trace}
}

// clients serves the test data and returns a client per protocol that
// Pyroscope's clients speak.
func clients(t *testing.T) map[string]querierv1connect.QuerierServiceClient {
	t.Helper()
	s := profiletest.OpenStore(t)
	s.Push(t, "shop.cpu{env=prod}", cpuProfile(t,
		sampleSpec{"main;handle;parse", 10, span(spanA, root1, trace1)},
		sampleSpec{"main;handle;render", 20, span(spanB, root1, trace1)},
		sampleSpec{"main;gc", 40, nil},
		sampleSpec{"main;handle;parse", 5, span(spanC, root2, trace2)},
	), t0)
	s.Push(t, "api.cpu{env=staging}", cpuProfile(t, sampleSpec{"main;serve", 7, nil}), t0.Add(20*time.Second))
	return serve(t, s)
}

// serve returns a client per protocol of the service over s.
func serve(t *testing.T, s *profiletest.Store) map[string]querierv1connect.QuerierServiceClient {
	t.Helper()
	path, h := querier.NewHandler(query.NewEngine(s.DB), s.DB, querier.Options{Now: func() time.Time { return t0.Add(time.Minute) }})
	mux := http.NewServeMux()
	mux.Handle(path, h)
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	h2 := &http.Client{Transport: &http.Transport{Protocols: new(http.Protocols)}}
	h2.Transport.(*http.Transport).Protocols.SetUnencryptedHTTP2(true)
	return map[string]querierv1connect.QuerierServiceClient{
		"connect-proto": querierv1connect.NewQuerierServiceClient(srv.Client(), srv.URL),
		"connect-json":  querierv1connect.NewQuerierServiceClient(srv.Client(), srv.URL, connect.WithProtoJSON()),
		"grpc":          querierv1connect.NewQuerierServiceClient(h2, srv.URL, connect.WithGRPC()),
	}
}

var (
	start = t0.Add(-time.Minute).UnixMilli()
	end   = t0.Add(time.Minute).UnixMilli()
)

// decodeFlame reads Pyroscope's flame graph format back into self values
// per stack, finding each node's parent by where it lies, as Grafana's
// flame graph does, and checks that every node's total is its self plus
// its children's.
func decodeFlame(t *testing.T, names []string, levels [][]int64, width int) map[string]int64 {
	t.Helper()
	type node struct {
		x, total, self int64
		stack          string
		kids           int64
	}
	var rows [][]*node
	for li, vals := range levels {
		if len(vals)%width != 0 {
			t.Fatalf("level %d has %d values, not tuples of %d", li, len(vals), width)
		}
		var row []*node
		var end int64
		for i := 0; i < len(vals); i += width {
			n := &node{x: end + vals[i], total: vals[i+1], self: vals[i+2]}
			end = n.x + n.total
			name := names[vals[i+width-1]]
			if li == 0 {
				if name != "total" || n.x != 0 {
					t.Fatalf("root is %q at %d", name, n.x)
				}
			} else {
				var parent *node
				for _, p := range rows[li-1] {
					if p.x <= n.x && n.x+n.total <= p.x+p.total {
						parent = p
					}
				}
				if parent == nil {
					t.Fatalf("level %d node %s at %d+%d lies under no parent", li, name, n.x, n.total)
				}
				if n.x < parent.x+parent.self {
					t.Fatalf("node %s at %d overlaps its parent's self", name, n.x)
				}
				parent.kids += n.total
				n.stack = strings.TrimPrefix(parent.stack+";"+name, ";")
			}
			row = append(row, n)
		}
		rows = append(rows, row)
	}
	out := map[string]int64{}
	for _, row := range rows {
		for _, n := range row {
			if n.self+n.kids != n.total {
				t.Fatalf("%s: self %d + children %d != total %d", n.stack, n.self, n.kids, n.total)
			}
			if n.self != 0 {
				out[n.stack] += n.self
			}
		}
	}
	return out
}

func flameOf(t *testing.T, fg *querierv1.FlameGraph) map[string]int64 {
	t.Helper()
	if fg == nil {
		t.Fatal("no flame graph")
	}
	levels := make([][]int64, len(fg.Levels))
	for i, l := range fg.Levels {
		levels[i] = l.Values
	}
	return decodeFlame(t, fg.Names, levels, 4)
}

func TestSelectMergeStacktraces(t *testing.T) {
	for name, c := range clients(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			get := func(req *querierv1.SelectMergeStacktracesRequest) map[string]int64 {
				t.Helper()
				res, err := c.SelectMergeStacktraces(ctx, connect.NewRequest(req))
				if err != nil {
					t.Fatal(err)
				}
				got := flameOf(t, res.Msg.Flamegraph)
				var sum int64
				for _, v := range got {
					sum += v
				}
				if sum != res.Msg.Flamegraph.Total {
					t.Errorf("self values sum to %d, total says %d", sum, res.Msg.Flamegraph.Total)
				}
				return got
			}
			shop := func() *querierv1.SelectMergeStacktracesRequest {
				return &querierv1.SelectMergeStacktracesRequest{ProfileTypeID: cpuType,
					LabelSelector: `{service_name="shop"}`, Start: start, End: end}
			}
			for _, c := range []struct {
				name string
				req  func() *querierv1.SelectMergeStacktracesRequest
				want map[string]int64
			}{
				{"all of shop", shop, map[string]int64{"main;handle;parse": 15, "main;handle;render": 20, "main;gc": 40}},
				{"every service", func() *querierv1.SelectMergeStacktracesRequest {
					r := shop()
					r.LabelSelector = "{}"
					return r
				}, map[string]int64{"main;handle;parse": 15, "main;handle;render": 20, "main;gc": 40, "main;serve": 7}},
				{"a span", func() *querierv1.SelectMergeStacktracesRequest {
					r := shop()
					r.SpanSelector = []string{spanB}
					return r
				}, map[string]int64{"main;handle;render": 20}},
				{"a local root: its spans' samples", func() *querierv1.SelectMergeStacktracesRequest {
					r := shop()
					r.SpanSelector = []string{root1, "0123456789abcdef"}
					return r
				}, map[string]int64{"main;handle;parse": 10, "main;handle;render": 20}},
				{"a trace", func() *querierv1.SelectMergeStacktracesRequest {
					r := shop()
					r.TraceIdSelector = []string{trace2}
					return r
				}, map[string]int64{"main;handle;parse": 5}},
				{"a call site", func() *querierv1.SelectMergeStacktracesRequest {
					r := shop()
					r.StackTraceSelector = &typesv1.StackTraceSelector{CallSite: []*typesv1.Location{{Name: "main"}, {Name: "handle"}}}
					return r
				}, map[string]int64{"main;handle;parse": 15, "main;handle;render": 20}},
				{"max_nodes folds the smallest into other", func() *querierv1.SelectMergeStacktracesRequest {
					r := shop()
					r.MaxNodes = proto.Int64(4)
					return r
				}, map[string]int64{"main;handle;other": 15, "main;handle;render": 20, "main;gc": 40}},
				{"a span of no sample", func() *querierv1.SelectMergeStacktracesRequest {
					r := shop()
					r.SpanSelector = []string{"0123456789abcdef"}
					return r
				}, map[string]int64{}},
			} {
				if got := get(c.req()); !cmp.Equal(got, c.want) {
					t.Errorf("%s: %v, want %v", c.name, got, c.want)
				}
			}
			res, err := c.SelectMergeStacktraces(ctx, connect.NewRequest(shop()))
			if err != nil {
				t.Fatal(err)
			}
			fg := res.Msg.Flamegraph
			if fg.Names[0] != "total" || fg.Total != 75 || fg.MaxSelf != 40 {
				t.Errorf("names[0] %q, total %d, max_self %d; want total, 75, 40", fg.Names[0], fg.Total, fg.MaxSelf)
			}
			// Children in name order, a node's self before them: main's
			// children gc (40) then handle, whose children parse and
			// render start where gc ends.
			if got := fg.Levels[3].Values; !cmp.Equal(got, []int64{40, 15, 15, idx(fg.Names, "parse"), 0, 20, 20, idx(fg.Names, "render")}) {
				t.Errorf("level 3 %v", got)
			}

			//lint:ignore SA1019 Grafana 11 calls it: Hearth must answer it.
			span, err := c.SelectMergeSpanProfile(ctx, connect.NewRequest(&querierv1.SelectMergeSpanProfileRequest{
				ProfileTypeID: cpuType, LabelSelector: "{}", SpanSelector: []string{spanA, spanC}, Start: start, End: end}))
			if err != nil {
				t.Fatal(err)
			}
			if got := flameOf(t, span.Msg.Flamegraph); !cmp.Equal(got, map[string]int64{"main;handle;parse": 15}) {
				t.Errorf("SelectMergeSpanProfile: %v", got)
			}
		})
	}
}

func idx(names []string, name string) int64 {
	for i, n := range names {
		if n == name {
			return int64(i)
		}
	}
	return -1
}

func TestMetadata(t *testing.T) {
	for name, c := range clients(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			// Grafana's health check asks for 1 s to 4 s after the epoch.
			pt, err := c.ProfileTypes(ctx, connect.NewRequest(&querierv1.ProfileTypesRequest{Start: 1000, End: 4000}))
			if err != nil || len(pt.Msg.ProfileTypes) != 0 {
				t.Fatalf("health check: %v %v", pt, err)
			}
			pt, err = c.ProfileTypes(ctx, connect.NewRequest(&querierv1.ProfileTypesRequest{Start: start, End: end}))
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, p := range pt.Msg.ProfileTypes {
				ids = append(ids, p.ID)
				if p.ID == cpuType && (p.Name != "process_cpu" || p.SampleType != "cpu" || p.SampleUnit != "nanoseconds" || p.PeriodType != "cpu") {
					t.Errorf("profile type fields %+v", p)
				}
			}
			if !cmp.Equal(ids, []string{"process_cpu:cpu:nanoseconds:cpu:nanoseconds", "process_cpu:samples:count:cpu:nanoseconds"}) {
				t.Errorf("profile types %v", ids)
			}
			names, err := c.LabelNames(ctx, connect.NewRequest(&typesv1.LabelNamesRequest{Matchers: []string{`{service_name="api"}`}, Start: start, End: end}))
			if err != nil || !slices.Contains(names.Msg.Names, "env") || !slices.Contains(names.Msg.Names, "service_name") {
				t.Errorf("label names of api: %v %v", names, err)
			}
			// shop's samples name requests, which are not offered as
			// labels, but can still be listed and matched.
			names, err = c.LabelNames(ctx, connect.NewRequest(&typesv1.LabelNamesRequest{Matchers: []string{`{service_name="shop"}`}, Start: start, End: end}))
			if err != nil || !slices.Contains(names.Msg.Names, "env") || slices.Contains(names.Msg.Names, "span_id") ||
				slices.Contains(names.Msg.Names, "trace_id") || slices.Contains(names.Msg.Names, "local_root_span_id") {
				t.Errorf("label names of shop: %v %v; want env and no request IDs", names, err)
			}
			vals, err := c.LabelValues(ctx, connect.NewRequest(&typesv1.LabelValuesRequest{Name: "span_id",
				Matchers: []string{`{service_name="shop"}`}, Start: start, End: end}))
			if err != nil || !cmp.Equal(vals.Msg.Names, []string{spanA, spanB, spanC}) {
				t.Errorf("span_id values: %v %v", vals, err)
			}
			vals, err = c.LabelValues(ctx, connect.NewRequest(&typesv1.LabelValuesRequest{Name: "env",
				Matchers: []string{`{service_name="api"}`, `{service_name="shop"}`}, Start: start, End: end}))
			if err != nil || !cmp.Equal(vals.Msg.Names, []string{"prod", "staging"}) {
				t.Errorf("env values: %v %v", vals, err)
			}
			series, err := c.Series(ctx, connect.NewRequest(&querierv1.SeriesRequest{Matchers: []string{`{__profile_type__="` + cpuType + `"}`},
				LabelNames: []string{"service_name", "env"}, Start: start, End: end}))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ls := range series.Msg.LabelsSet {
				var kv []string
				for _, p := range ls.Labels {
					kv = append(kv, p.Name+"="+p.Value)
				}
				got = append(got, strings.Join(kv, ","))
			}
			if !cmp.Equal(got, []string{"env=prod,service_name=shop", "env=staging,service_name=api"}) {
				t.Errorf("series %v", got)
			}
			st, err := c.GetProfileStats(ctx, connect.NewRequest(&typesv1.GetProfileStatsRequest{}))
			if err != nil || !st.Msg.DataIngested || st.Msg.OldestProfileTime != t0.UnixMilli() || st.Msg.NewestProfileTime != t0.Add(20*time.Second).UnixMilli() {
				t.Errorf("profile stats %v %v", st, err)
			}
		})
	}
}

func TestSelectSeriesAndProfile(t *testing.T) {
	for name, c := range clients(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			res, err := c.SelectSeries(ctx, connect.NewRequest(&querierv1.SelectSeriesRequest{ProfileTypeID: cpuType, LabelSelector: "{}",
				Start: t0.UnixMilli(), End: t0.Add(time.Minute).UnixMilli(), Step: 10, GroupBy: []string{"service_name"}}))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range res.Msg.Series {
				var b strings.Builder
				for _, l := range s.Labels {
					b.WriteString(l.Name + "=" + l.Value)
				}
				for _, p := range s.Points {
					b.WriteString(" " + time.UnixMilli(p.Timestamp).Sub(t0).String() + ":" + strconv.FormatFloat(p.Value, 'f', -1, 64))
				}
				got = append(got, b.String())
			}
			if !cmp.Equal(got, []string{"service_name=api 20s:7", "service_name=shop 0s:75"}) {
				t.Errorf("series %v", got)
			}
			lim := int64(1)
			res, err = c.SelectSeries(ctx, connect.NewRequest(&querierv1.SelectSeriesRequest{ProfileTypeID: cpuType, LabelSelector: "{}",
				Start: t0.UnixMilli(), End: t0.Add(time.Minute).UnixMilli(), Step: 60, GroupBy: []string{"service_name"}, Limit: &lim}))
			if err != nil || len(res.Msg.Series) != 1 || res.Msg.Series[0].Labels[0].Value != "shop" {
				t.Errorf("limit 1: %v %v", res, err)
			}

			//lint:ignore SA1019 Grafana and profilecli call it: Hearth must answer it.
			p, err := c.SelectMergeProfile(ctx, connect.NewRequest(&querierv1.SelectMergeProfileRequest{ProfileTypeID: cpuType,
				LabelSelector: `{service_name="shop"}`, Start: start, End: end, TraceIdSelector: []string{trace1}}))
			if err != nil {
				t.Fatal(err)
			}
			// The same through the RPC that Pyroscope has it become.
			st, err := c.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{ProfileTypeID: cpuType,
				LabelSelector: `{service_name="shop"}`, Start: start, End: end, TraceIdSelector: []string{trace1},
				Format: querierv1.ProfileFormat_PROFILE_FORMAT_PPROF}))
			if err != nil {
				t.Fatal(err)
			}
			for _, msg := range []proto.Message{p.Msg, st.Msg.Pprof.GetProfile()} {
				raw, err := proto.Marshal(msg)
				if err != nil {
					t.Fatal(err)
				}
				gp, err := gpprof.ParseData(raw)
				if err != nil {
					t.Fatal(err)
				}
				if got := profiletest.ProfileStacks(gp, 0); !cmp.Equal(got, profiletest.Stacks{"main;handle;parse": 10, "main;handle;render": 20}) {
					t.Errorf("merged pprof of trace 1: %v", got)
				}
				for _, s := range gp.Sample {
					if s.Label["trace_id"][0] != trace1 {
						t.Errorf("sample labels %v", s.Label)
					}
				}
			}

			d, err := c.Diff(ctx, connect.NewRequest(&querierv1.DiffRequest{
				Left:  &querierv1.SelectMergeStacktracesRequest{ProfileTypeID: cpuType, LabelSelector: `{service_name="shop"}`, Start: start, End: end, SpanSelector: []string{spanA}},
				Right: &querierv1.SelectMergeStacktracesRequest{ProfileTypeID: cpuType, LabelSelector: `{service_name="shop"}`, Start: start, End: end, SpanSelector: []string{root1}},
			}))
			if err != nil {
				t.Fatal(err)
			}
			fg := d.Msg.Flamegraph
			if fg.LeftTicks != 10 || fg.RightTicks != 30 || fg.Total != 40 {
				t.Errorf("diff ticks %d / %d, total %d; want 10 / 30, 40", fg.LeftTicks, fg.RightTicks, fg.Total)
			}
			left, right := make([][]int64, len(fg.Levels)), make([][]int64, len(fg.Levels))
			for i, l := range fg.Levels {
				for j := 0; j < len(l.Values); j += 7 {
					left[i] = append(left[i], l.Values[j], l.Values[j+1], l.Values[j+2], l.Values[j+6])
					right[i] = append(right[i], l.Values[j+3], l.Values[j+4], l.Values[j+5], l.Values[j+6])
				}
			}
			if got := decodeFlame(t, fg.Names, left, 4); !cmp.Equal(got, map[string]int64{"main;handle;parse": 10}) {
				t.Errorf("diff left %v", got)
			}
			if got := decodeFlame(t, fg.Names, right, 4); !cmp.Equal(got, map[string]int64{"main;handle;parse": 10, "main;handle;render": 20}) {
				t.Errorf("diff right %v", got)
			}
		})
	}
}

// TestBadRequests checks the codes Pyroscope answers bad requests with.
func TestBadRequests(t *testing.T) {
	for name, c := range clients(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			huge := int64(1 << 30)
			for _, x := range []struct {
				name string
				req  *querierv1.SelectMergeStacktracesRequest
				code connect.Code
				msg  string
			}{
				{"unknown type", &querierv1.SelectMergeStacktracesRequest{ProfileTypeID: "cpu:nanoseconds", LabelSelector: "{}"}, connect.CodeInvalidArgument, "profile_typeID"},
				{"bad selector", &querierv1.SelectMergeStacktracesRequest{ProfileTypeID: cpuType, LabelSelector: `{service_name=}`}, connect.CodeInvalidArgument, ""},
				{"start after end", &querierv1.SelectMergeStacktracesRequest{ProfileTypeID: cpuType, LabelSelector: "{}", Start: end, End: start}, connect.CodeInvalidArgument, "after end"},
				{"huge max_nodes", &querierv1.SelectMergeStacktracesRequest{ProfileTypeID: cpuType, LabelSelector: "{}", MaxNodes: &huge}, connect.CodeInvalidArgument, "max_nodes"},
				{"bad profile ID", &querierv1.SelectMergeStacktracesRequest{ProfileTypeID: cpuType, LabelSelector: "{}", ProfileIdSelector: []string{"7c9e6679-7425-40de-944b"}}, connect.CodeInvalidArgument, "profile_id_selector"},
				{"bad span ID", &querierv1.SelectMergeStacktracesRequest{ProfileTypeID: cpuType, LabelSelector: "{}", SpanSelector: []string{"xyz"}}, connect.CodeInvalidArgument, "span_selector"},
				{"bad trace ID", &querierv1.SelectMergeStacktracesRequest{ProfileTypeID: cpuType, LabelSelector: "{}", TraceIdSelector: []string{spanA}}, connect.CodeInvalidArgument, "trace_id_selector"},
				{"tree format", &querierv1.SelectMergeStacktracesRequest{ProfileTypeID: cpuType, LabelSelector: "{}", Format: querierv1.ProfileFormat_PROFILE_FORMAT_TREE}, connect.CodeUnimplemented, "format"},
				{"pprof huge max_nodes", &querierv1.SelectMergeStacktracesRequest{ProfileTypeID: cpuType, LabelSelector: "{}", Format: querierv1.ProfileFormat_PROFILE_FORMAT_PPROF, MaxNodes: &huge}, connect.CodeInvalidArgument, "max_nodes"},
			} {
				_, err := c.SelectMergeStacktraces(ctx, connect.NewRequest(x.req))
				var ce *connect.Error
				if !errors.As(err, &ce) || ce.Code() != x.code || !strings.Contains(ce.Message(), x.msg) || ce.Message() == "" {
					t.Errorf("%s: %v, want %s with %q", x.name, err, x.code, x.msg)
				}
			}
			_, err := c.LabelValues(ctx, connect.NewRequest(&typesv1.LabelValuesRequest{}))
			if connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Errorf("label values without a name: %v", err)
			}
		})
	}
}

// TestNewerSelectorFieldsRefused sends a stack trace selector with a
// field Hearth's copy of Pyroscope's API lacks, as Grafana's newest data
// source sends its frame filter (field 3): it must be refused, not
// ignored.
func TestNewerSelectorFieldsRefused(t *testing.T) {
	c := clients(t)["connect-proto"]
	sel := &typesv1.StackTraceSelector{}
	// frame_filter { include_function_names: "main" }
	inner := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "main")
	sel.ProtoReflect().SetUnknown(protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), inner))
	_, err := c.SelectMergeStacktraces(context.Background(), connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
		ProfileTypeID: cpuType, LabelSelector: "{}", Start: start, End: end, StackTraceSelector: sel}))
	if connect.CodeOf(err) != connect.CodeUnimplemented || !strings.Contains(err.Error(), "stack_trace_selector: field 3") {
		t.Errorf("selector with an unknown field: %v; want unimplemented naming field 3", err)
	}
}

// TestSeriesMilliseconds checks that SelectSeries counts time in whole
// milliseconds, as Pyroscope does: a profile taken 0.4 ms into the end's
// millisecond is in the range, and a step a few hundred nanoseconds past
// the range (profilecli's `query top` computes its step so) is cut to
// the millisecond.
func TestSeriesMilliseconds(t *testing.T) {
	s := profiletest.OpenStore(t)
	at := t0.Add(20*time.Second + 400*time.Microsecond)
	s.Push(t, "shop.cpu", cpuProfile(t, sampleSpec{"main;work", 5, nil}), at)
	c := serve(t, s)["connect-proto"]
	for _, x := range []struct {
		name       string
		start, end time.Time
		step       float64
	}{
		{"end in the profile's millisecond", t0.Add(10 * time.Second), t0.Add(20 * time.Second), 10},
		{"one step of the range, and a little", t0.Add(-40 * time.Minute), t0.Add(20 * time.Minute), 3600.0000006},
	} {
		res, err := c.SelectSeries(context.Background(), connect.NewRequest(&querierv1.SelectSeriesRequest{ProfileTypeID: cpuType,
			LabelSelector: "{}", Start: x.start.UnixMilli(), End: x.end.UnixMilli(), Step: x.step}))
		if err != nil {
			t.Fatal(err)
		}
		var sum float64
		for _, s := range res.Msg.Series {
			for _, p := range s.Points {
				sum += p.Value
			}
		}
		if sum != 5 {
			t.Errorf("%s: %v; want the profile's 5", x.name, res.Msg.Series)
		}
	}
}
