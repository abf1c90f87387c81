package querier

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/hearth-profiler/hearth/internal/query"
	"github.com/hearth-profiler/hearth/internal/tenant"
)

// NewLegacyHandler serves Pyroscope's HTTP API from before Connect, which
// scripts and Profiles Drilldown still call: GET /pyroscope/render (a flame
// graph with its timeline, as flamebearer JSON) and GET
// /pyroscope/render-diff. Their answers are built from the same calls as
// the Connect service's.
func NewLegacyHandler(eng *query.Engine, bounds Bounds, opts Options) http.Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &handler{eng: eng, bounds: bounds, opts: opts}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /pyroscope/render", h.render)
	mux.HandleFunc("GET /pyroscope/render-diff", h.renderDiff)
	return mux
}

// LegacyPaths are the routes NewLegacyHandler serves.
var LegacyPaths = []string{"GET /pyroscope/render", "GET /pyroscope/render-diff"}

// flamebearer is Pyroscope's flamebearer profile JSON, version 1.
type flamebearer struct {
	Version     int                  `json:"version"`
	Flamebearer flamebearerGraph     `json:"flamebearer"`
	Metadata    flamebearerMeta      `json:"metadata"`
	Timeline    *timeline            `json:"timeline"`
	Groups      map[string]*timeline `json:"groups"`
	Heatmap     any                  `json:"heatmap"`
	LeftTicks   int64                `json:"leftTicks,omitempty"`
	RightTicks  int64                `json:"rightTicks,omitempty"`
}

type flamebearerGraph struct {
	Names    []string  `json:"names"`
	Levels   [][]int64 `json:"levels"`
	NumTicks int64     `json:"numTicks"`
	MaxSelf  int64     `json:"maxSelf"`
}

type flamebearerMeta struct {
	Format     string `json:"format"` // "single", or "double" for a diff
	SpyName    string `json:"spyName"`
	SampleRate int    `json:"sampleRate"`
	Units      string `json:"units"`
	Name       string `json:"name"`
}

// timeline is a series of values, one per step from StartTime (unix
// seconds), zero where there is no data.
type timeline struct {
	StartTime     int64            `json:"startTime"`
	Samples       []uint64         `json:"samples"`
	DurationDelta int64            `json:"durationDelta"`
	Watermarks    map[string]int64 `json:"watermarks"`
}

// legacyError writes err as Connect's JSON error, with its HTTP status.
func legacyError(w http.ResponseWriter, err error) {
	ce := new(connect.Error)
	if !errors.As(err, &ce) {
		ce = connect.NewError(connect.CodeInternal, err)
	}
	status := http.StatusInternalServerError
	switch ce.Code() {
	case connect.CodeInvalidArgument:
		status = http.StatusBadRequest
	case connect.CodeResourceExhausted:
		status = http.StatusTooManyRequests
	case connect.CodeUnimplemented:
		status = http.StatusNotImplemented
	case connect.CodeDeadlineExceeded:
		status = http.StatusGatewayTimeout
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"code": ce.Code().String(), "message": ce.Message()})
}

// legacySelection reads a render request's query, from, until and max
// nodes, under the given parameter names.
func (h *handler) legacySelection(r *http.Request, q, from, until string) (*querierv1.SelectMergeStacktracesRequest, *typesv1.ProfileType, error) {
	src := strings.TrimSpace(r.Form.Get(q))
	if src == "" {
		return nil, nil, invalid("%s is required, e.g. %s=process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name=\"api\"}", q, q)
	}
	typeID, sel := src, "{}"
	if i := strings.IndexByte(src, '{'); i >= 0 {
		typeID, sel = strings.TrimSpace(src[:i]), src[i:]
	}
	pt := profileType(typeID)
	if pt == nil || strings.Count(typeID, ":") != 4 {
		return nil, nil, invalid("%s must start with a profile type <name>:<sample type>:<sample unit>:<period type>:<period unit>, not %q", q, typeID)
	}
	now := h.opts.Now()
	start, err := parseAttime(r.Form.Get(from), now, now.Add(-defaultRange))
	if err != nil {
		return nil, nil, invalid("%s: %v", from, err)
	}
	end, err := parseAttime(r.Form.Get(until), now, now)
	if err != nil {
		return nil, nil, invalid("%s: %v", until, err)
	}
	req := &querierv1.SelectMergeStacktracesRequest{ProfileTypeID: typeID, LabelSelector: sel,
		Start: start.UnixMilli(), End: end.UnixMilli()}
	for _, name := range []string{"max-nodes", "maxNodes"} {
		if s := r.Form.Get(name); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, nil, invalid("%s %q: want a number", name, s)
			}
			req.MaxNodes = &n
		}
	}
	return req, pt, nil
}

// withTenant is msg as a Connect request from the HTTP request's tenant.
func withTenant[T any](r *http.Request, msg *T) *connect.Request[T] {
	req := connect.NewRequest(msg)
	req.Header().Set(tenant.Header, r.Header.Get(tenant.Header))
	return req
}

func (h *handler) render(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		legacyError(w, invalid("%v", err))
		return
	}
	if f := r.Form.Get("format"); f != "" && f != "json" {
		legacyError(w, unimplemented("format %q: Hearth renders json", f))
		return
	}
	sel, pt, err := h.legacySelection(r, "query", "from", "until")
	if err != nil {
		legacyError(w, err)
		return
	}
	agg := typesv1.TimeSeriesAggregationType_TIME_SERIES_AGGREGATION_TYPE_SUM
	switch a := r.Form.Get("aggregation"); a {
	case "", "sum":
	case "avg":
		agg = typesv1.TimeSeriesAggregationType_TIME_SERIES_AGGREGATION_TYPE_AVERAGE
	default:
		legacyError(w, invalid("aggregation %q: want sum or avg", a))
		return
	}
	fg, err := h.SelectMergeStacktraces(r.Context(), withTenant(r, sel))
	if err != nil {
		legacyError(w, err)
		return
	}
	groupBy := r.Form["groupBy"]
	step := pointInterval(sel.Start, sel.End)
	series, err := h.SelectSeries(r.Context(), withTenant(r, &querierv1.SelectSeriesRequest{
		ProfileTypeID: sel.ProfileTypeID, LabelSelector: sel.LabelSelector, Start: sel.Start, End: sel.End,
		Step: step.Seconds(), GroupBy: groupBy, Aggregation: &agg}))
	if err != nil {
		legacyError(w, err)
		return
	}
	out := newFlamebearer(fg.Msg.Flamegraph.Names, fg.Msg.Flamegraph.Levels, fg.Msg.Flamegraph.Total, fg.Msg.Flamegraph.MaxSelf, pt, "single")
	var whole *typesv1.Series
	if s := series.Msg.Series; len(s) == 1 {
		whole = s[0]
	}
	out.Timeline = newTimeline(whole, sel.Start, sel.End, step)
	if len(groupBy) > 0 {
		out.Groups = map[string]*timeline{}
		for _, s := range series.Msg.Series {
			key := "*"
			for _, l := range s.Labels {
				if l.Name == groupBy[0] {
					key = l.Value
					break
				}
			}
			out.Groups[key] = newTimeline(s, sel.Start, sel.End, step)
		}
	}
	writeJSON(w, out)
}

func (h *handler) renderDiff(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		legacyError(w, invalid("%v", err))
		return
	}
	left, lt, err := h.legacySelection(r, "leftQuery", "leftFrom", "leftUntil")
	if err != nil {
		legacyError(w, err)
		return
	}
	right, rt, err := h.legacySelection(r, "rightQuery", "rightFrom", "rightUntil")
	if err != nil {
		legacyError(w, err)
		return
	}
	if lt.ID != rt.ID {
		legacyError(w, invalid("leftQuery is %s, rightQuery %s: a diff compares one profile type", lt.ID, rt.ID))
		return
	}
	d, err := h.Diff(r.Context(), withTenant(r, &querierv1.DiffRequest{Left: left, Right: right}))
	if err != nil {
		legacyError(w, err)
		return
	}
	fg := d.Msg.Flamegraph
	out := newFlamebearer(fg.Names, fg.Levels, fg.Total, fg.MaxSelf, lt, "double")
	out.LeftTicks, out.RightTicks = fg.LeftTicks, fg.RightTicks
	writeJSON(w, out)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// newFlamebearer wraps flame graph levels with the metadata Pyroscope
// gives them: CPU in "samples" at 100 Hz, object counts in "objects",
// other types in their sample unit.
func newFlamebearer(names []string, levels []*querierv1.Level, total, maxSelf int64, pt *typesv1.ProfileType, format string) *flamebearer {
	out := &flamebearer{Version: 1, Flamebearer: flamebearerGraph{Names: names, NumTicks: total, MaxSelf: maxSelf, Levels: make([][]int64, len(levels))},
		Metadata: flamebearerMeta{Format: format, SampleRate: 100, Units: pt.SampleUnit, Name: pt.SampleType}}
	for i, l := range levels {
		out.Flamebearer.Levels[i] = l.Values
		if out.Flamebearer.Levels[i] == nil {
			out.Flamebearer.Levels[i] = []int64{}
		}
	}
	switch pt.SampleType {
	case "inuse_objects", "alloc_objects", "goroutine", "samples":
		out.Metadata.Units = "objects"
	case "cpu":
		out.Metadata.Units = "samples"
	}
	return out
}

// newTimeline lays a series' points on the steps of [startMs, endMs),
// zero where it has none.
func newTimeline(s *typesv1.Series, startMs, endMs int64, step time.Duration) *timeline {
	sec := int64(step / time.Second)
	if sec <= 0 {
		sec = 1
	}
	// As Pyroscope's: the window's ends down to multiples of the step,
	// and each point in the slot it falls in.
	stepMs := sec * 1000
	startMs, endMs = startMs/stepMs*stepMs, endMs/stepMs*stepMs
	t := &timeline{StartTime: startMs / 1000, DurationDelta: sec, Samples: []uint64{}}
	if endMs <= startMs {
		return t
	}
	n := (endMs/1000 - t.StartTime) / sec
	t.Samples = make([]uint64, n)
	for _, p := range s.GetPoints() {
		if p.Timestamp < startMs || p.Timestamp >= endMs {
			continue
		}
		if i := (p.Timestamp/1000 - t.StartTime) / sec; i >= 0 && i < n {
			t.Samples[i] += uint64(max(p.Value, 0))
		}
	}
	return t
}

// pointInterval is the step of a timeline over [fromMs, untilMs): about
// 1,500 points, at least 15 s, rounded to a step a person would choose.
func pointInterval(fromMs, untilMs int64) time.Duration {
	d := time.Duration(untilMs-fromMs) * time.Millisecond / 1500
	if d < 15*time.Second {
		return 15 * time.Second
	}
	for _, s := range niceSteps {
		if d <= s.upTo {
			return s.step
		}
	}
	return 365 * 24 * time.Hour
}

// niceSteps round an interval up to the step below each bound.
var niceSteps = []struct{ upTo, step time.Duration }{
	{17500 * time.Millisecond, 15 * time.Second},
	{25 * time.Second, 20 * time.Second},
	{45 * time.Second, 30 * time.Second},
	{90 * time.Second, time.Minute},
	{210 * time.Second, 2 * time.Minute},
	{450 * time.Second, 5 * time.Minute},
	{750 * time.Second, 10 * time.Minute},
	{1050 * time.Second, 15 * time.Minute},
	{1500 * time.Second, 20 * time.Minute},
	{2700 * time.Second, 30 * time.Minute},
	{5400 * time.Second, time.Hour},
	{9000 * time.Second, 2 * time.Hour},
	{16200 * time.Second, 3 * time.Hour},
	{32400 * time.Second, 6 * time.Hour},
	{86400 * time.Second, 12 * time.Hour},
	{604800 * time.Second, 24 * time.Hour},
	{1814400 * time.Second, 7 * 24 * time.Hour},
	{3628800 * time.Second, 30 * 24 * time.Hour},
}

var (
	reDigits = regexp.MustCompile(`^\d+$`)
	reOffset = regexp.MustCompile(`^([+-])((?:\d+[a-zA-Z]+)+)$`)
	rePart   = regexp.MustCompile(`(\d+)([a-zA-Z]+)`)
)

// parseAttime reads a time as Pyroscope's render API takes it: "now",
// "now-1h" (units s, m or min, h, d, w, M or mon, y; several may follow
// each other: now-1h30m), a date YYYYMMDD, or a Unix time in seconds,
// milliseconds (13 digits), microseconds (16) or nanoseconds (19). ""
// is def.
func parseAttime(s string, now, def time.Time) (time.Time, error) {
	s = strings.NewReplacer("_", "", ",", "", " ", "").Replace(strings.TrimSpace(s))
	if s == "" {
		return def, nil
	}
	if reDigits.MatchString(s) {
		if len(s) == 8 {
			if t, err := time.Parse("20060102", s); err == nil {
				return t, nil
			}
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is out of range", s)
		}
		switch len(s) {
		case 13:
			return time.UnixMilli(v), nil
		case 16:
			return time.UnixMicro(v), nil
		case 19:
			return time.Unix(0, v), nil
		}
		return time.Unix(v, 0), nil
	}
	rest, ok := strings.CutPrefix(s, "now")
	if !ok {
		return time.Time{}, fmt.Errorf("%q: want now, now-1h, YYYYMMDD or a Unix time", s)
	}
	if rest == "" {
		return now, nil
	}
	m := reOffset.FindStringSubmatch(rest)
	if m == nil {
		return time.Time{}, fmt.Errorf("%q: want an offset such as now-1h", s)
	}
	var d time.Duration
	for _, p := range rePart.FindAllStringSubmatch(m[2], -1) {
		n, err := strconv.ParseInt(p[1], 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q: %v", s, err)
		}
		u, ok := attimeUnit(p[2])
		if !ok {
			return time.Time{}, fmt.Errorf("%q: unknown unit %q", s, p[2])
		}
		d += time.Duration(n) * u
	}
	if m[1] == "-" {
		d = -d
	}
	return now.Add(d), nil
}

func attimeUnit(u string) (time.Duration, bool) {
	switch {
	case strings.HasPrefix(u, "s"):
		return time.Second, true
	case strings.HasPrefix(u, "mon"), strings.HasPrefix(u, "M"):
		return 30 * 24 * time.Hour, true
	case strings.HasPrefix(u, "m"):
		return time.Minute, true
	case strings.HasPrefix(u, "h"):
		return time.Hour, true
	case strings.HasPrefix(u, "d"):
		return 24 * time.Hour, true
	case strings.HasPrefix(u, "w"):
		return 7 * 24 * time.Hour, true
	case strings.HasPrefix(u, "y"):
		return 365 * 24 * time.Hour, true
	}
	return 0, false
}
