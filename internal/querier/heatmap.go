package querier

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/storage"
)

// heatmapBuckets is how many value ranges a heatmap's y axis has, as in
// Pyroscope.
const heatmapBuckets = 20

// heatPoint is one profile, or what one request took of one profile: a
// dot of the heatmap before it is counted into cells.
type heatPoint struct {
	t       int64 // unix milliseconds
	v       int64
	profile string // profile ID, for individual heatmaps
	span    uint64
	trace   [16]byte
	labels  labels.Labels // the profile's series labels
}

// SelectHeatmap counts profiles (HEATMAP_QUERY_TYPE_INDIVIDUAL), or what
// each request took of each profile (HEATMAP_QUERY_TYPE_SPAN), into cells
// of time step by value range, one heatmap per group. It follows
// Pyroscope's: slot timestamps are the right edges of (start + k·step)
// steps, the y axis is 20 equal ranges between the smallest and largest
// value of all groups, and a cell's exemplar is its largest profile or
// request. Exemplars come in y order.
func (h *handler) SelectHeatmap(ctx context.Context, req *connect.Request[querierv1.SelectHeatmapRequest]) (*connect.Response[querierv1.SelectHeatmapResponse], error) {
	m := req.Msg
	if m.Step < 0.001 {
		return nil, invalid("step %g: want at least a millisecond, in seconds", m.Step)
	}
	if m.Limit != nil && *m.Limit < 0 {
		return nil, invalid("limit %d: want 0 (none) or more", *m.Limit)
	}
	if m.Start >= m.End {
		return nil, invalid("start (%d) must be before end (%d)", m.Start, m.End)
	}
	if m.ProfileTypeID == "" {
		return nil, invalid("profile_typeID: name the profile type")
	}
	var spans bool
	switch m.QueryType {
	case querierv1.HeatmapQueryType_HEATMAP_QUERY_TYPE_INDIVIDUAL:
	case querierv1.HeatmapQueryType_HEATMAP_QUERY_TYPE_SPAN:
		spans = true
	default:
		return nil, invalid("query_type %s: want individual or span", m.QueryType)
	}
	var exemplars bool
	switch m.ExemplarType {
	case typesv1.ExemplarType_EXEMPLAR_TYPE_UNSPECIFIED, typesv1.ExemplarType_EXEMPLAR_TYPE_NONE:
	case typesv1.ExemplarType_EXEMPLAR_TYPE_INDIVIDUAL:
		if spans {
			return nil, invalid("exemplar_type %s: individual exemplars need the individual query type", m.ExemplarType)
		}
		exemplars = true
	case typesv1.ExemplarType_EXEMPLAR_TYPE_SPAN:
		if !spans {
			return nil, invalid("exemplar_type %s: span exemplars need the span query type", m.ExemplarType)
		}
		exemplars = true
	default:
		return nil, invalid("exemplar_type %d: unknown", m.ExemplarType)
	}
	for _, g := range m.GroupBy {
		if !labels.ValidName(g) {
			return nil, invalid("group_by: invalid label name %q", g)
		}
	}
	stepMs := time.Duration(m.Step * float64(time.Second)).Milliseconds()
	// The first slot ends at start, so profiles up to a step before it
	// count.
	r, err := h.stackRequest(req.Header(), m.ProfileTypeID, m.LabelSelector, m.Start-stepMs, m.End, nil, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	sps, err := h.eng.Profiles(ctx, r, spans)
	if err != nil {
		return nil, connectError(err)
	}

	// Points by group, the groups in label order.
	groups := map[string][]heatPoint{}
	for _, sp := range sps {
		key := groupKey(sp.Labels, m.GroupBy)
		if !spans {
			for _, pt := range sp.Points {
				k := storage.ProfileKey{Series: storage.ProfileSeriesID(sp.Labels), T: pt.T}
				groups[key] = append(groups[key], heatPoint{t: time.Unix(0, pt.T).UnixMilli(), v: pt.V, profile: k.ID(), labels: sp.Labels})
			}
			continue
		}
		for _, s := range sp.Spans {
			if s.Span.Span == 0 {
				continue
			}
			groups[key] = append(groups[key], heatPoint{t: time.Unix(0, s.T).UnixMilli(), v: s.V, span: s.Span.Span, trace: s.Span.Trace, labels: sp.Labels})
		}
	}
	if spans {
		// A request's samples in one profile time, from series of one
		// group, are one dot.
		for key, pts := range groups {
			groups[key] = mergeSpanPoints(pts)
		}
	}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, pts := range groups {
		for _, p := range pts {
			lo, hi = min(lo, p.v), max(hi, p.v)
		}
	}
	out := &querierv1.SelectHeatmapResponse{}
	if lo > hi {
		return connect.NewResponse(out), nil
	}
	if lo == hi {
		hi = lo + 1
	}
	yMin := make([]int64, heatmapBuckets)
	width := float64(hi-lo) / heatmapBuckets
	for i := range yMin {
		yMin[i] = lo + int64(float64(i)*width)
	}
	for _, key := range slices.Sorted(maps.Keys(groups)) {
		pts := groups[key]
		out.Series = append(out.Series, &typesv1.HeatmapSeries{
			Labels: groupPairs(pts[0].labels, m.GroupBy),
			Slots:  heatSlots(pts, yMin, m.Start, m.End, stepMs, exemplars, m.GroupBy),
		})
	}
	if m.Limit != nil && *m.Limit > 0 && int64(len(out.Series)) > *m.Limit {
		count := func(s *typesv1.HeatmapSeries) (n int64) {
			for _, sl := range s.Slots {
				for _, c := range sl.Counts {
					n += int64(c)
				}
			}
			return n
		}
		slices.SortStableFunc(out.Series, func(a, b *typesv1.HeatmapSeries) int { return cmp.Compare(count(b), count(a)) })
		out.Series = out.Series[:*m.Limit]
	}
	return connect.NewResponse(out), nil
}

// heatSlots counts one group's points into cells.
func heatSlots(pts []heatPoint, yMin []int64, start, end, step int64, exemplars bool, shown []string) []*typesv1.HeatmapSlot {
	type cell struct {
		slot int64
		y    int
	}
	counts := map[cell]int32{}
	best := map[cell]*heatPoint{}
	for i := range pts {
		p := &pts[i]
		c := cell{slotEnd(p.t, start, end, step), yBucket(p.v, yMin)}
		counts[c]++
		if b := best[c]; b == nil || p.v > b.v {
			best[c] = p
		}
	}
	bySlot := map[int64]*typesv1.HeatmapSlot{}
	for c, n := range counts {
		sl := bySlot[c.slot]
		if sl == nil {
			sl = &typesv1.HeatmapSlot{Timestamp: c.slot, YMin: make([]float64, len(yMin)), Counts: make([]int32, len(yMin))}
			for i, y := range yMin {
				sl.YMin[i] = float64(y)
			}
			bySlot[c.slot] = sl
		}
		sl.Counts[c.y] = n
	}
	out := make([]*typesv1.HeatmapSlot, 0, len(bySlot))
	for _, t := range slices.Sorted(maps.Keys(bySlot)) {
		sl := bySlot[t]
		if exemplars {
			for y := range yMin {
				if p := best[cell{t, y}]; p != nil {
					sl.Exemplars = append(sl.Exemplars, heatExemplar(p, shown))
				}
			}
		}
		out = append(out, sl)
	}
	return out
}

// heatExemplar points at a dot's profile or request.
func heatExemplar(p *heatPoint, shown []string) *typesv1.Exemplar {
	e := &typesv1.Exemplar{Timestamp: p.t, ProfileId: p.profile, Value: p.v, Labels: exemplarLabels(p.labels, shown)}
	if p.span != 0 {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], p.span)
		e.SpanId = hex.EncodeToString(b[:])
	}
	if p.trace != ([16]byte{}) {
		e.TraceId = hex.EncodeToString(p.trace[:])
	}
	return e
}

// slotEnd is the right edge of the step that holds t: steps are
// (start+(k-1)·step, start+k·step], and times outside [start, end] go to
// the first or last.
func slotEnd(t, start, end, step int64) int64 {
	up := func(x int64) int64 {
		off := start % step
		x -= off
		if x%step != 0 {
			x = (x/step + 1) * step
		}
		return x + off
	}
	t, end = up(t), up(end)
	return min(max(t, start), end)
}

// yBucket is the value range that holds v.
func yBucket(v int64, yMin []int64) int {
	i, found := slices.BinarySearch(yMin, v)
	if found {
		// Equal lower edges (a range narrower than 20) go to the last
		// range that starts at v.
		for i+1 < len(yMin) && yMin[i+1] == v {
			i++
		}
		return i
	}
	return max(i-1, 0)
}

// mergeSpanPoints sums the dots of one request at one time.
func mergeSpanPoints(pts []heatPoint) []heatPoint {
	slices.SortStableFunc(pts, func(a, b heatPoint) int {
		if c := cmp.Compare(a.t, b.t); c != 0 {
			return c
		}
		if c := cmp.Compare(a.span, b.span); c != 0 {
			return c
		}
		return strings.Compare(string(a.trace[:]), string(b.trace[:]))
	})
	out := pts[:0]
	for _, p := range pts {
		if n := len(out); n > 0 && out[n-1].t == p.t && out[n-1].span == p.span && out[n-1].trace == p.trace {
			out[n-1].v += p.v
			continue
		}
		out = append(out, p)
	}
	return out
}

// groupKey names the group of a series by its group-by values.
func groupKey(ls labels.Labels, by []string) string {
	var b strings.Builder
	for _, g := range by {
		b.WriteString(ls.Get(g))
		b.WriteByte(0)
	}
	return b.String()
}

// groupPairs are a group's labels: its group-by names that have values.
func groupPairs(ls labels.Labels, by []string) []*typesv1.LabelPair {
	var b labels.Builder
	for _, g := range by {
		if v := ls.Get(g); v != "" {
			b.Set(g, v)
		}
	}
	return labelPairs(b.Labels()).Labels
}
