package querier_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/hearth-profiler/hearth/internal/profiletest"
)

// podProfile is one profile of the exemplar tests: pod p's at offset
// off from t0, with value v split over two requests of one trace.
type podProfile struct {
	pod string
	off time.Duration
	v   int64
}

// The profiles: two pods of shop, every 10 s for a minute, each value
// different, so that every step has one largest profile.
var podProfiles = func() []podProfile {
	var out []podProfile
	for i := range 6 {
		out = append(out,
			podProfile{"p1", time.Duration(i) * 10 * time.Second, int64(10 + 20*i)},
			podProfile{"p2", time.Duration(i) * 10 * time.Second, int64(20 + 17*i)})
	}
	return out
}()

// spanOf is the request that took a podProfile's "work" samples: one per
// pod and 20 s.
func spanOf(p podProfile) string {
	return fmt.Sprintf("%s%014x", map[string]string{"p1": "a1", "p2": "a2"}[p.pod], int(p.off/(20*time.Second))+1)
}

func podClients(t *testing.T) map[string]querierv1connect.QuerierServiceClient {
	t.Helper()
	s := profiletest.OpenStore(t)
	for _, p := range podProfiles {
		// work is in a request; idle is not.
		s.Push(t, "shop.cpu{env=prod,pod="+p.pod+"}", cpuProfile(t,
			sampleSpec{"main;work", p.v - 3, span(spanOf(p), spanOf(p), trace1)},
			sampleSpec{"main;idle", 3, nil},
		), t0.Add(p.off))
	}
	return serve(t, s)
}

// TestExemplarsPointAtProfiles asks for a time series with exemplars and
// opens each exemplar's profile by its ID, as Grafana does when one is
// clicked.
func TestExemplarsPointAtProfiles(t *testing.T) {
	for name, c := range podClients(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			res, err := c.SelectSeries(ctx, connect.NewRequest(&querierv1.SelectSeriesRequest{ProfileTypeID: cpuType, LabelSelector: "{}",
				Start: t0.UnixMilli(), End: t0.Add(time.Minute).UnixMilli(), Step: 30, GroupBy: []string{"service_name"},
				ExemplarType: typesv1.ExemplarType_EXEMPLAR_TYPE_INDIVIDUAL}))
			if err != nil {
				t.Fatal(err)
			}
			// As Pyroscope's: points at start, +30 s and +60 s, each of
			// the profiles in the 30 s that end at it.
			if len(res.Msg.Series) != 1 || len(res.Msg.Series[0].Points) != 3 {
				t.Fatalf("series %v; want one of three points", res.Msg.Series)
			}
			var ids []string
			for i, pt := range res.Msg.Series[0].Points {
				edge := time.Duration(i) * 30 * time.Second
				if pt.Timestamp != t0.Add(edge).UnixMilli() {
					t.Errorf("point %d at %d; want %s", i, pt.Timestamp, edge)
				}
				// The step's largest profile, by what was sent.
				var want podProfile
				var sum int64
				for _, p := range podProfiles {
					if p.off > edge-30*time.Second && p.off <= edge {
						sum += p.v
						if p.v > want.v {
							want = p
						}
					}
				}
				if pt.Value != float64(sum) {
					t.Errorf("point %d: %g; want %d", i, pt.Value, sum)
				}
				if len(pt.Exemplars) != 1 {
					t.Fatalf("point %d: exemplars %v; want one", i, pt.Exemplars)
				}
				e := pt.Exemplars[0]
				wantLabels := []*typesv1.LabelPair{{Name: "env", Value: "prod"}, {Name: "pod", Value: want.pod}}
				if e.Value != want.v || e.Timestamp != t0.Add(want.off).UnixMilli() || e.ProfileId == "" ||
					!cmp.Equal(e.Labels, wantLabels, cmp.Comparer(func(a, b *typesv1.LabelPair) bool { return a.Name == b.Name && a.Value == b.Value })) {
					t.Errorf("point %d: exemplar %v; want %s's profile at %s of %d", i, e, want.pod, want.off, want.v)
				}
				// The ID opens that profile and nothing else.
				fg, err := c.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{ProfileTypeID: cpuType,
					LabelSelector: "{}", Start: start, End: end, ProfileIdSelector: []string{e.ProfileId}}))
				if err != nil {
					t.Fatal(err)
				}
				if got := flameOf(t, fg.Msg.Flamegraph); !cmp.Equal(got, map[string]int64{"main;work": want.v - 3, "main;idle": 3}) {
					t.Errorf("profile %s: %v", e.ProfileId, got)
				}
				ids = append(ids, e.ProfileId)
			}
			// Two IDs, and one that names no profile, merge the two.
			//lint:ignore SA1019 Grafana and profilecli call it: Hearth must answer it.
			p, err := c.SelectMergeProfile(ctx, connect.NewRequest(&querierv1.SelectMergeProfileRequest{ProfileTypeID: cpuType,
				LabelSelector: "{}", Start: start, End: end, ProfileIdSelector: append(ids, "00000000-0000-0000-0000-000000000001")}))
			if err != nil {
				t.Fatal(err)
			}
			var total int64
			for _, s := range p.Msg.Sample {
				total += s.Value[len(s.Value)-1]
			}
			var want int64
			for _, pt := range res.Msg.Series[0].Points {
				want += pt.Exemplars[0].Value
			}
			if total != want {
				t.Errorf("merged profiles by ID: total %d; want %d", total, want)
			}
		})
	}
}

// TestSelectHeatmap checks heatmaps of profiles and of requests against
// counts made here from what was sent.
func TestSelectHeatmap(t *testing.T) {
	for name, c := range podClients(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			// Slots end at start + k·20 s: profiles at 0 s are in the
			// slot ending at 0 s, those at 10 and 20 s in the one ending
			// at 20 s, and so on.
			slotOf := func(off time.Duration) int64 {
				return t0.Add((off + 20*time.Second - 1) / (20 * time.Second) * 20 * time.Second).UnixMilli()
			}
			res, err := c.SelectHeatmap(ctx, connect.NewRequest(&querierv1.SelectHeatmapRequest{ProfileTypeID: cpuType, LabelSelector: "{}",
				Start: t0.UnixMilli(), End: t0.Add(time.Minute).UnixMilli(), Step: 20, GroupBy: []string{"pod"},
				QueryType: querierv1.HeatmapQueryType_HEATMAP_QUERY_TYPE_INDIVIDUAL, ExemplarType: typesv1.ExemplarType_EXEMPLAR_TYPE_INDIVIDUAL}))
			if err != nil {
				t.Fatal(err)
			}
			lo, hi := int64(10), int64(110) // smallest and largest value sent
			bucket := func(v int64) int { return min(int((v-lo)*20/(hi-lo)), 19) }
			want := map[string]int32{}
			for _, p := range podProfiles {
				want[fmt.Sprintf("pod=%s %d y%d", p.pod, slotOf(p.off), bucket(p.v))]++
			}
			got := map[string]int32{}
			for _, s := range res.Msg.Series {
				if len(s.Labels) != 1 || s.Labels[0].Name != "pod" {
					t.Fatalf("series labels %v; want the pod", s.Labels)
				}
				for _, sl := range s.Slots {
					if len(sl.YMin) != 20 || sl.YMin[0] != float64(lo) || sl.YMin[19] != float64(lo+19*(hi-lo)/20) {
						t.Fatalf("y ranges %v", sl.YMin)
					}
					var cells int
					for y, n := range sl.Counts {
						if n > 0 {
							got[fmt.Sprintf("pod=%s %d y%d", s.Labels[0].Value, sl.Timestamp, y)] = n
							cells++
						}
					}
					// One exemplar per cell, each a profile that opens.
					if len(sl.Exemplars) != cells {
						t.Errorf("slot %d: %d exemplars for %d cells", sl.Timestamp, len(sl.Exemplars), cells)
					}
					for _, e := range sl.Exemplars {
						fg, err := c.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{ProfileTypeID: cpuType,
							LabelSelector: "{}", Start: start, End: end, ProfileIdSelector: []string{e.ProfileId}}))
						if err != nil || fg.Msg.Flamegraph.Total != e.Value {
							t.Errorf("exemplar %v: flame graph total %v, %v", e, fg, err)
						}
					}
				}
			}
			if !cmp.Equal(got, want) {
				t.Errorf("cells (-want +got):\n%s", cmp.Diff(want, got))
			}

			// Requests: each request's samples in each profile.
			res, err = c.SelectHeatmap(ctx, connect.NewRequest(&querierv1.SelectHeatmapRequest{ProfileTypeID: cpuType, LabelSelector: "{}",
				Start: t0.UnixMilli(), End: t0.Add(time.Minute).UnixMilli(), Step: 20,
				QueryType: querierv1.HeatmapQueryType_HEATMAP_QUERY_TYPE_SPAN, ExemplarType: typesv1.ExemplarType_EXEMPLAR_TYPE_SPAN}))
			if err != nil {
				t.Fatal(err)
			}
			lo, hi = 7, 107 // the work samples' values
			want = map[string]int32{}
			spans := map[string]bool{}
			for _, p := range podProfiles {
				want[fmt.Sprintf("%d y%d", slotOf(p.off), bucket(p.v-3))]++
				spans[spanOf(p)] = true
			}
			got = map[string]int32{}
			if len(res.Msg.Series) != 1 || len(res.Msg.Series[0].Labels) != 0 {
				t.Fatalf("span heatmap: %d series; want one without labels", len(res.Msg.Series))
			}
			for _, sl := range res.Msg.Series[0].Slots {
				for y, n := range sl.Counts {
					if n > 0 {
						got[fmt.Sprintf("%d y%d", sl.Timestamp, y)] = n
					}
				}
				for _, e := range sl.Exemplars {
					if !spans[e.SpanId] || e.TraceId != trace1 || e.ProfileId != "" {
						t.Errorf("span exemplar %v", e)
					}
				}
			}
			if !cmp.Equal(got, want) {
				t.Errorf("span cells (-want +got):\n%s", cmp.Diff(want, got))
			}
		})
	}
}

// TestAnalyzeQuery checks the scope of a query in the head.
func TestAnalyzeQuery(t *testing.T) {
	for name, c := range podClients(t) {
		t.Run(name, func(t *testing.T) {
			res, err := c.AnalyzeQuery(context.Background(), connect.NewRequest(&querierv1.AnalyzeQueryRequest{
				Query: cpuType + `{pod="p1"}`, Start: t0.UnixMilli(), End: t0.Add(30 * time.Second).UnixMilli()}))
			if err != nil {
				t.Fatal(err)
			}
			m := res.Msg
			if len(m.QueryScopes) != 2 || m.QueryScopes[0].ComponentType != "Short term storage" || m.QueryScopes[1].ComponentType != "Long term storage" {
				t.Fatalf("scopes %v", m.QueryScopes)
			}
			// p1's profiles at 0, 10 and 20 s, each of two samples.
			if h := m.QueryScopes[0]; h.SeriesCount != 1 || h.ProfileCount != 3 || h.SampleCount != 6 || h.BlockCount != 1 {
				t.Errorf("head scope %v; want 1 series, 3 profiles, 6 samples", h)
			}
			if b := m.QueryScopes[1]; b.BlockCount != 0 || b.ProfileCount != 0 {
				t.Errorf("block scope %v; want none", b)
			}
			if m.QueryImpact.TotalQueriedSeries != 1 {
				t.Errorf("impact %v", m.QueryImpact)
			}
		})
	}
}

// TestHeatmapBadRequests checks the codes of requests that cannot be
// answered as asked.
func TestHeatmapBadRequests(t *testing.T) {
	c := podClients(t)["connect-proto"]
	ctx := context.Background()
	ok := func() *querierv1.SelectHeatmapRequest {
		return &querierv1.SelectHeatmapRequest{ProfileTypeID: cpuType, LabelSelector: "{}", Start: start, End: end, Step: 10,
			QueryType: querierv1.HeatmapQueryType_HEATMAP_QUERY_TYPE_SPAN}
	}
	neg := int64(-1)
	for _, x := range []struct {
		name string
		edit func(*querierv1.SelectHeatmapRequest)
		msg  string
	}{
		{"no step", func(r *querierv1.SelectHeatmapRequest) { r.Step = 0 }, "step"},
		{"start after end", func(r *querierv1.SelectHeatmapRequest) { r.Start, r.End = r.End, r.Start }, "start"},
		{"negative limit", func(r *querierv1.SelectHeatmapRequest) { r.Limit = &neg }, "limit"},
		{"no query type", func(r *querierv1.SelectHeatmapRequest) { r.QueryType = 0 }, "query_type"},
		{"exemplars of another type", func(r *querierv1.SelectHeatmapRequest) {
			r.ExemplarType = typesv1.ExemplarType_EXEMPLAR_TYPE_INDIVIDUAL
		}, "exemplar_type"},
		{"bad type", func(r *querierv1.SelectHeatmapRequest) { r.ProfileTypeID = "cpu" }, "profile_typeID"},
		{"bad group", func(r *querierv1.SelectHeatmapRequest) { r.GroupBy = []string{"a-b"} }, "group_by"},
	} {
		req := ok()
		x.edit(req)
		_, err := c.SelectHeatmap(ctx, connect.NewRequest(req))
		var ce *connect.Error
		if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument || !strings.Contains(ce.Message(), x.msg) {
			t.Errorf("%s: %v; want invalid_argument naming %s", x.name, err, x.msg)
		}
	}
	if _, err := c.SelectHeatmap(ctx, connect.NewRequest(ok())); err != nil {
		t.Errorf("the good request: %v", err)
	}
	_, err := c.SelectSeries(ctx, connect.NewRequest(&querierv1.SelectSeriesRequest{ProfileTypeID: cpuType, LabelSelector: "{}",
		Start: start, End: end, Step: 10, ExemplarType: typesv1.ExemplarType_EXEMPLAR_TYPE_SPAN}))
	if connect.CodeOf(err) != connect.CodeUnimplemented {
		t.Errorf("span exemplars of a series: %v; want unimplemented, as Pyroscope", err)
	}
}
