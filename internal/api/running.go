package api

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/hearth-profiler/hearth/internal/events"
	"github.com/hearth-profiler/hearth/internal/events/calc"
	"github.com/hearth-profiler/hearth/internal/query"
)

// running is what an events query's running=FUNCTION found in the
// profiles of its range: the CPU time each span's own samples spent in
// (or under) the functions that FUNCTION, a regexp as focus= takes,
// matches.
type running struct {
	function string
	cpu      map[events.SpanID]int64
	// unattributed is the time in the functions of samples without a
	// span; unit is the profile's sample unit.
	unattributed int64
	unit         string
}

// runningOf reads running= and profile= of r for the events query q, or
// returns nil without running=. The profiles are those of profile=, by
// default cpu of the services q's filter names (all without one).
func (a *API) runningOf(ctx context.Context, r *http.Request, q eventRequest) (*running, error) {
	fn := strings.TrimSpace(r.FormValue("running"))
	if fn == "" {
		return nil, nil
	}
	sel := r.FormValue("profile")
	if strings.TrimSpace(sel) == "" {
		sel = "cpu{}"
		if svcs, ok := q.filter.Services(); ok && len(svcs) > 0 {
			quoted := make([]string, len(svcs))
			for i, s := range svcs {
				quoted[i] = regexp.QuoteMeta(s)
			}
			sel = fmt.Sprintf("cpu{service_name=~%q}", strings.Join(quoted, "|"))
		}
	}
	f, err := query.ParseStackFilter(fn, "", "")
	if err != nil {
		return nil, fmt.Errorf("running: %w", err)
	}
	l := a.opts.Limits.For(q.tenant)
	pr := query.Request{Tenant: q.tenant, Query: sel, Start: q.from, End: q.until, Filter: f,
		Limits: query.Limits{MaxSeries: l.QueryMaxSeries, MaxSamples: l.QueryMaxSamples}}
	sv, err := a.eng.SpanValues(ctx, pr)
	if err != nil {
		return nil, fmt.Errorf("running: %w", err)
	}
	run := &running{function: fn, cpu: make(map[events.SpanID]int64, len(sv.BySpan)), unattributed: sv.Unattributed, unit: sv.Unit}
	for id, v := range sv.BySpan {
		run.cpu[events.SpanID(id)] = v
	}
	return run, nil
}

// Columns is what the filter of the spans that ran the functions reads.
func (run *running) Columns() events.Columns {
	return events.Columns{Intrinsics: events.ColSpanID}
}

// Match selects the spans whose samples ran the functions.
func (run *running) Match(b *events.Batch, sel []bool) {
	for i := range sel {
		_, sel[i] = run.cpu[b.SpanID[i]]
	}
}

// scan wraps scan: batches get the cpu column (calc.CPUKey), each span's
// time in the functions.
func (run *running) scan(scan calc.Scan) calc.Scan {
	return func(ctx context.Context, cols events.Columns, fn func(*events.Batch) error) error {
		cols = cols.Merge(run.Columns())
		return scan(ctx, cols, func(b *events.Batch) error {
			c := &events.Column{}
			for i, id := range b.SpanID[:b.Len] {
				if v, ok := run.cpu[id]; ok {
					c.Set(b.Len, i, events.Int(v))
				}
			}
			if c.Types != nil {
				if b.Attrs == nil {
					b.Attrs = map[string]*events.Column{}
				}
				b.Attrs[calc.CPUKey] = c
			}
			return fn(b)
		})
	}
}

// warning says what the selection rests on.
func (run *running) warning() string {
	var total int64
	for _, v := range run.cpu {
		total += v
	}
	w := fmt.Sprintf("running %s: %d spans took %s in it", run.function, len(run.cpu), formatValue(total, run.unit))
	if run.unattributed > 0 {
		w += fmt.Sprintf("; %s of its samples carry no span", formatValue(run.unattributed, run.unit))
	}
	return w
}

func formatValue(v int64, unit string) string {
	if unit == "nanoseconds" {
		return time.Duration(v).String()
	}
	return fmt.Sprintf("%d %s", v, unit)
}

// andFilter selects what both a and b select.
type andFilter struct{ a, b calc.Filter }

func (f andFilter) Columns() events.Columns { return f.a.Columns().Merge(f.b.Columns()) }

func (f andFilter) Match(b *events.Batch, sel []bool) {
	f.a.Match(b, sel)
	other := make([]bool, len(sel))
	f.b.Match(b, other)
	for i := range sel {
		sel[i] = sel[i] && other[i]
	}
}
