package query

import (
	"context"
	"slices"
	"time"

	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/profile"
	"github.com/hearth-profiler/hearth/internal/storage"
)

// SeriesResult is a set of time series of profile totals.
type SeriesResult struct {
	Step   int64    `json:"stepMs"`
	Series []Series `json:"series"`
}

// Series is the total over time of one group of series.
type Series struct {
	Labels map[string]string `json:"labels"`
	// Points are [unix milliseconds, value] at the start of each step that
	// holds data.
	Points [][2]float64 `json:"points"`
	// Top is, for each point, the largest profile in its step: what
	// Pyroscope's API calls the point's exemplar.
	Top []ProfilePoint `json:"-"`
}

// ProfilePoint is one stored profile's total.
type ProfilePoint struct {
	Labels labels.Labels // the series' labels
	T      int64         // unix nanoseconds
	V      int64
}

// Key names the profile, for a later Request.Profiles.
func (p ProfilePoint) Key() storage.ProfileKey {
	return storage.ProfileKey{Series: storage.ProfileSeriesID(p.Labels), T: p.T}
}

// MaxSeriesPoints bounds points per series; a smaller step is refused.
const MaxSeriesPoints = 11000

// Series returns the selection's total per step, one series per distinct
// value combination of groupBy (one series in all when groupBy is empty).
// Amount types (CPU, allocations) are summed per step; level types (memory
// in use, goroutines) are averaged per step within each stored series, and
// those averages summed across series.
func (e *Engine) Series(ctx context.Context, r Request, step time.Duration, groupBy []string) (*SeriesResult, error) {
	return e.SeriesAggregated(ctx, r, step, groupBy, AggregateDefault)
}

// Aggregation is how Series merges the profiles of a stored series within
// one step.
type Aggregation int

const (
	// AggregateDefault sums amount types and averages level types.
	AggregateDefault Aggregation = iota
	// AggregateSum sums every type.
	AggregateSum
	// AggregateAverage averages every type.
	AggregateAverage
)

// SeriesAggregated is Series with the merge within a step chosen: what
// Pyroscope's API lets a client ask for.
func (e *Engine) SeriesAggregated(ctx context.Context, r Request, step time.Duration, groupBy []string, agg Aggregation) (*SeriesResult, error) {
	span := r.End.Sub(r.Start)
	if step <= 0 {
		step = max(span/1000, 10*time.Second)
		step = step.Round(time.Second)
	}
	startNs, stepNs := r.Start.UnixNano(), step.Nanoseconds()
	nb := int((span + step - 1) / step)
	return e.series(ctx, r, step, nb, groupBy, agg,
		func(t int64) int { return int((t - startNs) / stepNs) },
		func(b int) int64 { return startNs + int64(b)*stepNs })
}

// SeriesEnding is SeriesAggregated with Pyroscope's steps: points at
// r.Start, r.Start+step, ... up to r.End included, each of the profiles in
// (T-step, T]. As in Pyroscope, times count in whole milliseconds: the
// start, end and step are cut to them, and so is each profile's time, so
// the profiles read are those whose millisecond is in [r.Start, r.End].
func (e *Engine) SeriesEnding(ctx context.Context, r Request, step time.Duration, groupBy []string, agg Aggregation) (*SeriesResult, error) {
	step = step.Truncate(time.Millisecond)
	if step <= 0 {
		return nil, badRequest("step %s: want at least a millisecond", step)
	}
	r.Start, r.End = r.Start.Truncate(time.Millisecond), r.End.Truncate(time.Millisecond)
	first, stepNs := r.Start.UnixNano(), step.Nanoseconds()
	nb := int(r.End.Sub(r.Start)/step) + 1
	r.End = r.End.Add(time.Millisecond) // End's millisecond is included
	const ms = int64(time.Millisecond)
	return e.series(ctx, r, step, nb, groupBy, agg,
		func(t int64) int { return int((t/ms*ms - first + stepNs - 1) / stepNs) },
		func(b int) int64 { return first + int64(b)*stepNs })
}

// series sums the selection per group into nb points: bucket says which
// point a profile at t goes to (outside [0, nb): none), and at the time
// (unix nanoseconds) point b is shown.
func (e *Engine) series(ctx context.Context, r Request, step time.Duration, nb int, groupBy []string, agg Aggregation,
	bucket func(t int64) int, at func(b int) int64) (*SeriesResult, error) {
	p, _, err := r.params()
	if err != nil {
		return nil, err
	}
	if nb > MaxSeriesPoints {
		return nil, badRequest("step %s over %s gives more than %d points: use a larger step", step, r.End.Sub(r.Start), MaxSeriesPoints)
	}
	for _, g := range groupBy {
		if !labels.ValidName(g) {
			return nil, badRequest("group by: invalid label name %q", g)
		}
	}
	sps, err := e.st.SelectSeries(ctx, r.Tenant, p)
	if err != nil {
		return nil, err
	}
	type group struct {
		lbls   map[string]string
		sum    []float64
		filled []bool
		top    []ProfilePoint
	}
	groups := map[string]*group{}
	var order []string
	sums := make([]float64, nb)
	counts := make([]int, nb)
	for _, sp := range sps {
		typ, _ := profile.ParseType(sp.Labels.Get(labels.ProfileType))
		key := ""
		gl := map[string]string{}
		for _, g := range groupBy {
			v := sp.Labels.Get(g)
			gl[g] = v
			key += g + "\x00" + v + "\x00"
		}
		g := groups[key]
		if g == nil {
			g = &group{lbls: gl, sum: make([]float64, nb), filled: make([]bool, nb), top: make([]ProfilePoint, nb)}
			groups[key] = g
			order = append(order, key)
		}
		clear(sums)
		clear(counts)
		for _, pt := range sp.Points {
			b := bucket(pt.T)
			if pt.T < p.Start || b < 0 || b >= nb {
				continue
			}
			sums[b] += float64(pt.V)
			counts[b]++
			if top := &g.top[b]; top.Labels.Len() == 0 || pt.V > top.V {
				*top = ProfilePoint{Labels: sp.Labels, T: pt.T, V: pt.V}
			}
		}
		for b := range nb {
			if counts[b] == 0 {
				continue
			}
			v := sums[b]
			if agg == AggregateAverage || agg == AggregateDefault && typ.Gauge() {
				v /= float64(counts[b])
			}
			g.sum[b] += v
			g.filled[b] = true
		}
	}
	slices.Sort(order)
	res := &SeriesResult{Step: step.Milliseconds(), Series: []Series{}}
	for _, k := range order {
		g := groups[k]
		s := Series{Labels: g.lbls, Points: [][2]float64{}}
		for b := range nb {
			if g.filled[b] {
				s.Points = append(s.Points, [2]float64{float64(at(b) / 1e6), g.sum[b]})
				s.Top = append(s.Top, g.top[b])
			}
		}
		res.Series = append(res.Series, s)
	}
	return res, nil
}

// Profiles returns the selected profiles' totals, per series, after the
// request's stack and span filters; with spans, each profile's sums per
// request too (storage.SeriesPoints.Spans).
func (e *Engine) Profiles(ctx context.Context, r Request, spans bool) ([]storage.SeriesPoints, error) {
	p, _, err := r.params()
	if err != nil {
		return nil, err
	}
	if spans {
		p.Apart = storage.ApartSpans
	}
	return e.st.SelectSeries(ctx, r.Tenant, p)
}

// Analysis is how much data a selection covers, in memory and on disk.
type Analysis struct {
	Heads, Blocks storage.Scope
	// Series is how many distinct series the selection has, whichever
	// sources hold them.
	Series int
}

// Analyze says how much data a query over r's selection reads, without
// reading it.
func (e *Engine) Analyze(ctx context.Context, r Request) (*Analysis, error) {
	p, _, err := r.params()
	if err != nil {
		return nil, err
	}
	var a Analysis
	if a.Heads, a.Blocks, err = e.st.Analyze(ctx, r.Tenant, p); err != nil {
		return nil, err
	}
	ls, err := e.st.Series(ctx, r.Tenant, p.Start, p.End, p.Matchers)
	if err != nil {
		return nil, err
	}
	a.Series = len(ls)
	return &a, nil
}

// LabelNames lists label names present in the selection.
func (e *Engine) LabelNames(ctx context.Context, r Request) ([]string, error) {
	p, err := r.metaParams()
	if err != nil {
		return nil, err
	}
	return e.st.LabelNames(ctx, r.Tenant, p.Start, p.End, p.Matchers)
}

// LabelValues lists the values of one label in the selection.
func (e *Engine) LabelValues(ctx context.Context, r Request, name string) ([]string, error) {
	if name == "" {
		return nil, badRequest("label name is required")
	}
	p, err := r.metaParams()
	if err != nil {
		return nil, err
	}
	return e.st.LabelValues(ctx, r.Tenant, name, p.Start, p.End, p.Matchers)
}

// SeriesLabels lists the label sets of the selected series.
func (e *Engine) SeriesLabels(ctx context.Context, r Request) ([]map[string]string, error) {
	p, err := r.metaParams()
	if err != nil {
		return nil, err
	}
	ls, err := e.st.Series(ctx, r.Tenant, p.Start, p.End, p.Matchers)
	if err != nil {
		return nil, err
	}
	if err := r.Limits.checkSeries(len(ls)); err != nil {
		return nil, err
	}
	out := make([]map[string]string, len(ls))
	for i, l := range ls {
		out[i] = l.Map()
	}
	return out, nil
}

// ProfileTypes lists the profile types present in the selection.
func (e *Engine) ProfileTypes(ctx context.Context, r Request) ([]string, error) {
	return e.LabelValues(ctx, r, labels.ProfileType)
}

// metaParams is params for metadata calls, where the selector is optional.
func (r Request) metaParams() (p storage.SelectParams, err error) {
	if r.Query == "" {
		r.Query = "{}"
	}
	sp, _, err := r.params()
	return sp, err
}
