package api

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/hearth-profiler/hearth/internal/events/calc"
	"github.com/hearth-profiler/hearth/internal/events/traceql"
)

// TraceQL metrics, as far as Hearth's group-by calculations answer them:
// a span filter, then one function, then optionally by(fields):
//
//	{ resource.service.name = "shop" } | rate() by (span.http.route)
//
// rate() is spans per second, count_over_time() spans per step,
// durations are in seconds,
// quantile_over_time(F, q...) the quantiles Hearth's percentiles name
// (p50, p90, p99, p999 and the other whole ones), min_, max_, avg_ and
// sum_over_time(F), and histogram_over_time(F) the counts per duration
// bucket, each series labelled __bucket with its upper bound in seconds.
// Series come in Tempo's query_range answer: labels as OTLP key-values,
// samples of (timestampMs, value).

var (
	reMetricsFn = regexp.MustCompile(`^\s*([a-z_]+)\s*\(([^)]*)\)\s*(?:by\s*\(([^)]*)\))?\s*$`)
)

// maxMetricsSteps bounds the steps of one answer.
const maxMetricsSteps = 11000

// splitPipeline cuts a TraceQL query after its span filter's closing
// brace, outside strings.
func splitPipeline(q string) (filter, rest string, err error) {
	depth := 0
	for i := 0; i < len(q); i++ {
		switch c := q[i]; c {
		case '"', '`':
			j := i + 1
			for j < len(q) && q[j] != c {
				if c == '"' && q[j] == '\\' {
					j++
				}
				j++
			}
			i = j
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return q[:i+1], q[i+1:], nil
			}
		}
	}
	return "", "", fmt.Errorf("want a span filter { ... } and a function: { } | rate()")
}

// metricsQuery is a TraceQL metrics query as Hearth's calculations.
type metricsQuery struct {
	filter    *traceql.Filter
	fn        string
	calcs     []string  // calc names, one per series kind
	quantiles []float64 // per calc, for quantile_over_time
	by        []string
}

func parseMetricsQuery(q string) (*metricsQuery, error) {
	fsrc, rest, err := splitPipeline(q)
	if err != nil {
		return nil, err
	}
	f, err := traceql.Parse(fsrc)
	if err != nil {
		return nil, err
	}
	pipe, ok := strings.CutPrefix(strings.TrimSpace(rest), "|")
	if !ok {
		return nil, fmt.Errorf("after the span filter, want | and a function such as rate(), not %q", strings.TrimSpace(rest))
	}
	m := reMetricsFn.FindStringSubmatch(pipe)
	if m == nil {
		return nil, fmt.Errorf("%q: want one function, optionally followed by by(fields); Hearth does not chain them", strings.TrimSpace(pipe))
	}
	mq := &metricsQuery{filter: f, fn: m[1]}
	args := splitArgs(m[2])
	one := func() (string, error) {
		if len(args) != 1 {
			return "", fmt.Errorf("%s takes one field, e.g. %s(duration)", mq.fn, mq.fn)
		}
		return args[0], nil
	}
	switch mq.fn {
	case "rate", "count_over_time":
		if len(args) != 0 {
			return nil, fmt.Errorf("%s() takes no arguments", mq.fn)
		}
		mq.calcs = []string{"count"}
	case "min_over_time", "max_over_time", "avg_over_time", "sum_over_time":
		field, err := one()
		if err != nil {
			return nil, err
		}
		mq.calcs = []string{strings.TrimSuffix(mq.fn, "_over_time") + "(" + field + ")"}
	case "histogram_over_time":
		field, err := one()
		if err != nil {
			return nil, err
		}
		mq.calcs = []string{"heatmap(" + field + ")"}
	case "quantile_over_time":
		if len(args) < 2 {
			return nil, fmt.Errorf("quantile_over_time takes a field and quantiles, e.g. quantile_over_time(duration, 0.9, 0.99)")
		}
		for _, s := range args[1:] {
			q, err := strconv.ParseFloat(s, 64)
			if err != nil || q <= 0 || q >= 1 {
				return nil, fmt.Errorf("quantile %q: want a number between 0 and 1", s)
			}
			name, ok := percentileName(q)
			if !ok {
				return nil, fmt.Errorf("quantile %s: Hearth computes the whole percentiles (0.5, 0.9, 0.95, 0.99) and 0.999, 0.9999", s)
			}
			mq.calcs = append(mq.calcs, name+"("+args[0]+")")
			mq.quantiles = append(mq.quantiles, q)
		}
	default:
		return nil, fmt.Errorf("%s: Hearth answers rate, count_over_time, quantile_over_time, histogram_over_time and min_, max_, avg_, sum_over_time", mq.fn)
	}
	if m[3] != "" {
		mq.by = splitArgs(m[3])
	}
	return mq, nil
}

func splitArgs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// percentileName is the calculation a quantile is: 0.9 is p90, 0.999 p999.
func percentileName(q float64) (string, bool) {
	if p := q * 100; math.Abs(p-math.Round(p)) < 1e-9 {
		return "p" + strconv.Itoa(int(math.Round(p))), true
	}
	for _, n := range []struct {
		q    float64
		name string
	}{{0.999, "p999"}, {0.9999, "p9999"}} {
		if math.Abs(q-n.q) < 1e-12 {
			return n.name, true
		}
	}
	return "", false
}

// tempoTimestamp reads a metrics time: Unix seconds, or nanoseconds when
// the number is too large to be seconds, as Tempo takes both.
func tempoTimestamp(r *http.Request, name string, def time.Time) (time.Time, error) {
	s := r.FormValue(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, badRequest("%s %q: want Unix seconds or nanoseconds", name, s)
	}
	if n > 1e12 {
		return time.Unix(0, n), nil
	}
	return time.Unix(n, 0), nil
}

type metricsSeries struct {
	Labels     []json.RawMessage `json:"labels"`
	Samples    []sample          `json:"samples"`
	PromLabels string            `json:"promLabels"`
}

type sample struct {
	TimestampMs string  `json:"timestampMs"`
	Value       float64 `json:"value"`
}

// metricsRequest reads what both metrics routes take: the tenant, the
// query (q, or query, which Tempo reads first for Prometheus's sake) and
// its range, by default the hour before end.
func (a *API) metricsRequest(r *http.Request) (tenant string, mq *metricsQuery, start, end time.Time, err error) {
	if tenant, err = tenantOf(r); err != nil {
		return
	}
	src := r.FormValue("q")
	if src == "" {
		src = r.FormValue("query")
	}
	if mq, err = parseMetricsQuery(src); err != nil {
		err = badRequest("invalid TraceQL metrics query: %v", err)
		return
	}
	if end, err = tempoTimestamp(r, "end", a.now()); err != nil {
		return
	}
	if start, err = tempoTimestamp(r, "start", end.Add(-time.Hour)); err != nil {
		return
	}
	if !end.After(start) {
		err = badRequest("end must be after start")
	}
	return
}

// runMetrics computes mq over [start, end), per step, or over the whole
// range with step 0.
func (a *API) runMetrics(r *http.Request, tenant string, mq *metricsQuery, start, end time.Time, step time.Duration) (*calc.Result, error) {
	spec := calc.Spec{By: strings.Join(mq.by, ","), Calc: strings.Join(mq.calcs, ","), Step: step}
	cq, err := spec.Query()
	if err != nil {
		return nil, err
	}
	q := eventRequest{tenant: tenant, from: start, until: end, filter: mq.filter}
	return calc.Run(r.Context(), a.eventScanOf(q), calc.Filter(mq.filter), cq, start, end)
}

// eachSeries calls fn with each series of res, labelled as Tempo labels
// it, and its values: one per step of res.Times when res has a step,
// otherwise one over the whole range. A value is NaN where the series has
// none. Durations are in seconds and rates per second of interval, the
// step or the whole range. A histogram is a series per bucket, with its
// span counts and NaN for none; buckets that hold no span are left out.
func (mq *metricsQuery) eachSeries(res *calc.Result, interval time.Duration, fn func(labels [][2]any, vals []float64)) {
	n := max(len(res.Times), 1)
	if len(res.Groups) == 0 && len(mq.by) == 0 && (mq.fn == "rate" || mq.fn == "count_over_time") {
		// Tempo's count of nothing is 0, not no series: a panel shows 0.
		fn([][2]any{{"__name__", mq.fn}}, make([]float64, n))
		return
	}
	for _, g := range res.Groups {
		for ci, cname := range res.Calcs {
			labels := [][2]any{}
			for _, f := range res.By {
				labels = append(labels, [2]any{f, g.By[f]})
			}
			switch {
			case mq.fn == "quantile_over_time" && ci < len(mq.quantiles):
				labels = append(labels, [2]any{"p", mq.quantiles[ci]})
			case mq.fn != "histogram_over_time" && len(labels) == 0:
				// As Tempo (and Prometheus) name a series that has no
				// labels: by its function.
				labels = append(labels, [2]any{"__name__", mq.fn})
			}
			if bk, ok := res.Buckets[cname]; ok {
				hists := g.HistogramSeries[cname]
				if len(res.Times) == 0 {
					hists = [][]uint64{g.Histograms[cname]}
				}
				for bi, b := range bk {
					vals := make([]float64, n)
					some := false
					for ti := range vals {
						vals[ti] = math.NaN()
						if ti < len(hists) && bi < len(hists[ti]) && hists[ti][bi] > 0 {
							vals[ti], some = float64(hists[ti][bi]), true
						}
					}
					if some {
						fn(append(slices.Clone(labels), [2]any{"__bucket", b.Hi / 1e9}), vals)
					}
				}
				continue
			}
			vals := make([]float64, n)
			for ti := range vals {
				var v float64
				if len(res.Times) == 0 {
					v = float64(g.Values[cname])
				} else {
					v = float64(g.Series[cname][ti])
				}
				if math.IsInf(v, 0) {
					v = math.NaN()
				}
				if mq.fn == "rate" {
					v /= interval.Seconds()
				}
				if res.Units[cname] == "ns" {
					v /= 1e9 // Tempo's metrics give durations in seconds
				}
				vals[ti] = v
			}
			fn(labels, vals)
		}
	}
}

// tempoMetrics answers /api/metrics/query_range: series of samples, one
// per step.
func (a *API) tempoMetrics(w http.ResponseWriter, r *http.Request) error {
	tenant, mq, start, end, err := a.metricsRequest(r)
	if err != nil {
		return err
	}
	step := max(end.Sub(start)/100, time.Second).Round(time.Second)
	if s := r.FormValue("step"); s != "" {
		if step, err = parseDuration(s); err != nil {
			if secs, perr := strconv.ParseFloat(s, 64); perr == nil && secs > 0 {
				step, err = time.Duration(secs*float64(time.Second)), nil
			} else {
				return badRequest("step %q: want a duration such as 60s", s)
			}
		}
	}
	if step <= 0 || end.Sub(start)/step > maxMetricsSteps {
		return badRequest("step %s over %s gives more than %d steps", step, end.Sub(start), maxMetricsSteps)
	}
	res, err := a.runMetrics(r, tenant, mq, start, end, step)
	if err != nil {
		return err
	}
	out := struct {
		Series  []metricsSeries `json:"series"`
		Metrics map[string]any  `json:"metrics"`
	}{Series: []metricsSeries{}, Metrics: map[string]any{"inspectedSpans": strconv.FormatInt(res.Scanned, 10)}}
	mq.eachSeries(res, step, func(labels [][2]any, vals []float64) {
		s := metricsSeries{}
		for ti, v := range vals {
			if !math.IsNaN(v) {
				s.Samples = append(s.Samples, sample{strconv.FormatInt(int64(res.Times[ti]), 10), v})
			}
		}
		s.Labels, s.PromLabels = seriesLabels(labels)
		out.Series = append(out.Series, s)
	})
	return writeTempoJSON(w, out)
}

// instantSeries is Tempo's InstantSeries: labels and one value. It has
// no promLabels: Tempo dropped the field (it is reserved in its
// tempo.proto), and Grafana decodes instant answers strictly, so a
// Grafana built against a newer Tempo would refuse an answer with it.
type instantSeries struct {
	Labels []json.RawMessage `json:"labels"`
	Value  float64           `json:"value"`
}

// tempoMetricsInstant answers /api/metrics/query, TraceQL metrics as one
// value per series over the whole range [start, end): what query_range
// gives with a single step from start to end, as Tempo computes it. A
// rate is per second of the range. Series without a value (an average
// of no span) are left out, as Tempo leaves them.
func (a *API) tempoMetricsInstant(w http.ResponseWriter, r *http.Request) error {
	tenant, mq, start, end, err := a.metricsRequest(r)
	if err != nil {
		return err
	}
	res, err := a.runMetrics(r, tenant, mq, start, end, 0)
	if err != nil {
		return err
	}
	out := struct {
		Series  []instantSeries `json:"series"`
		Metrics map[string]any  `json:"metrics"`
	}{Series: []instantSeries{}, Metrics: map[string]any{"inspectedSpans": strconv.FormatInt(res.Scanned, 10)}}
	mq.eachSeries(res, end.Sub(start), func(labels [][2]any, vals []float64) {
		if math.IsNaN(vals[0]) {
			return
		}
		s := instantSeries{Value: vals[0]}
		s.Labels, _ = seriesLabels(labels)
		out.Series = append(out.Series, s)
	})
	return writeTempoJSON(w, out)
}

// seriesLabels writes labels as OTLP key-values and as Prometheus text.
func seriesLabels(labels [][2]any) ([]json.RawMessage, string) {
	out := []json.RawMessage{}
	var prom []string
	for _, l := range labels {
		k := l[0].(string)
		kv := &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{}}
		switch v := l[1].(type) {
		case string:
			kv.Value.Value = &commonpb.AnyValue_StringValue{StringValue: v}
		case float64:
			kv.Value.Value = &commonpb.AnyValue_DoubleValue{DoubleValue: v}
		case bool:
			kv.Value.Value = &commonpb.AnyValue_BoolValue{BoolValue: v}
		case nil:
			kv.Value.Value = &commonpb.AnyValue_StringValue{StringValue: "nil"}
		default:
			kv.Value.Value = &commonpb.AnyValue_StringValue{StringValue: fmt.Sprint(v)}
		}
		b, _ := protojson.Marshal(kv)
		out = append(out, b)
		prom = append(prom, fmt.Sprintf("%s=%q", k, fmt.Sprint(l[1])))
	}
	return out, "{" + strings.Join(prom, ", ") + "}"
}
