package query_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	gpprof "github.com/google/pprof/profile"

	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/limits"
	"github.com/hearth-profiler/hearth/internal/profiletest"
	"github.com/hearth-profiler/hearth/internal/query"
	"github.com/hearth-profiler/hearth/internal/storage"
)

// countingStorage counts the series that selects read, through the scan
// hook that the engine gives them.
type countingStorage struct {
	*storage.DB
	scanned int
}

func (c *countingStorage) SelectStacks(ctx context.Context, tenant string, p storage.SelectParams) ([]*storage.StackValues, error) {
	c.wrap(&p)
	return c.DB.SelectStacks(ctx, tenant, p)
}

func (c *countingStorage) SelectSeries(ctx context.Context, tenant string, p storage.SelectParams) ([]storage.SeriesPoints, error) {
	c.wrap(&p)
	return c.DB.SelectSeries(ctx, tenant, p)
}

func (c *countingStorage) wrap(p *storage.SelectParams) {
	if p.Scan == nil {
		return
	}
	inner := p.Scan
	p.Scan = func(ls labels.Labels, rows int64) error {
		c.scanned++
		return inner(ls, rows)
	}
}

// TestQueryLimits: a query over its series or sample-row limit fails with
// a *LimitError naming the limit and what it had reached, having read no
// series past the one that took it over; within its limits it answers as
// without them.
func TestQueryLimits(t *testing.T) {
	s := profiletest.OpenStore(t)
	const services = 10
	for i := range services {
		b := newBuilder("cpu", "nanoseconds").
			sample(nil, []string{"main", "a"}, 1).
			sample(nil, []string{"main", "b"}, 2).
			sample(nil, []string{"main", "c"}, 3) // 3 sample rows per series
		b.p.PeriodType = &gpprof.ValueType{Type: "cpu", Unit: "nanoseconds"}
		s.Push(t, fmt.Sprintf("svc%d.cpu", i), b.bytes(t), t0)
	}
	st := &countingStorage{DB: s.DB}
	eng := query.NewEngine(st)
	ctx := context.Background()
	limited := func(q string, lim query.Limits) query.Request {
		r := request(q)
		r.Limits = lim
		return r
	}
	const all = `cpu{}`

	for _, c := range []struct {
		name    string
		lim     query.Limits
		run     func(r query.Request) error
		want    query.LimitError
		scanned int // series read before it stopped
	}{
		{"flame graph, series", query.Limits{MaxSeries: 4}, func(r query.Request) error { _, err := eng.FlameGraph(ctx, r, 0); return err },
			query.LimitError{Limit: limits.QueryMaxSeries, Max: 4, Reached: 5}, 5},
		{"top, sample rows", query.Limits{MaxSamples: 7}, func(r query.Request) error { _, err := eng.Top(ctx, r, "", 0); return err },
			query.LimitError{Limit: limits.QueryMaxSamples, Max: 7, Reached: 9}, 3},
		{"pprof, series", query.Limits{MaxSeries: 1}, func(r query.Request) error { _, err := eng.Pprof(ctx, r); return err },
			query.LimitError{Limit: limits.QueryMaxSeries, Max: 1, Reached: 2}, 2},
		// A time series reads one total per profile.
		{"time series, profiles", query.Limits{MaxSamples: 5}, func(r query.Request) error { _, err := eng.Series(ctx, r, time.Minute, nil); return err },
			query.LimitError{Limit: limits.QueryMaxSamples, Max: 5, Reached: 6}, 6},
		// Both sides of a diff are one query: the same series count once,
		// their rows twice.
		{"diff, sample rows", query.Limits{MaxSeries: services, MaxSamples: 40}, func(r query.Request) error {
			_, err := eng.Diff(ctx, r, r, 0)
			return err
		}, query.LimitError{Limit: limits.QueryMaxSamples, Max: 40, Reached: 42}, services + 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			st.scanned = 0
			err := c.run(limited(all, c.lim))
			le, ok := errors.AsType[*query.LimitError](err)
			if !ok || *le != c.want {
				t.Fatalf("%v; want %+v", err, c.want)
			}
			if st.scanned != c.scanned {
				t.Errorf("read %d series before stopping, want %d", st.scanned, c.scanned)
			}
			if !strings.Contains(err.Error(), c.want.Limit+", "+limits.Flag(c.want.Limit)) {
				t.Errorf("%q does not name the limit and its flag", err)
			}
		})
	}

	within := query.Limits{MaxSeries: services, MaxSamples: 3 * services}
	got, err := eng.FlameGraph(ctx, limited(all, within), 0)
	if err != nil {
		t.Fatalf("at the limits: %v", err)
	}
	want, err := eng.FlameGraph(ctx, request(all), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Total != want.Total || got.Total != 6*services {
		t.Errorf("total at the limits = %d, without limits %d; want %d", got.Total, want.Total, 6*services)
	}
	// A narrower selector fits where the whole did not.
	if _, err := eng.FlameGraph(ctx, limited(`cpu{service_name="svc3"}`, query.Limits{MaxSeries: 1}), 0); err != nil {
		t.Errorf("one series under a limit of 1: %v", err)
	}
	// Listing series counts them too.
	_, err = eng.SeriesLabels(ctx, limited("", query.Limits{MaxSeries: 4}))
	if le, ok := errors.AsType[*query.LimitError](err); !ok || le.Reached != services {
		t.Errorf("series list over the limit: %v; want a limit error that reached %d", err, services)
	}
}
