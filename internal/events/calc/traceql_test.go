package calc

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/events/traceql"
)

// A TraceQL filter is what the CLI and the API hand Run and Compare.
var _ Filter = (*traceql.Filter)(nil)

func parseFilter(t *testing.T, src string) *traceql.Filter {
	t.Helper()
	f, err := traceql.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestWithTraceQL(t *testing.T) {
	evs := slowRegionEvents(20000, 1000)
	scan, asked := fakeScan(evs, 4096)
	ctx := context.Background()
	from, until := t0, t0.Add(24*time.Hour)

	eu := parseFilter(t, `{ resource.cloud.region = "eu-west-3" && duration > 800ms }`)
	res, err := Run(ctx, scan, eu, mustSpec(t, Spec{By: "span.customer.id", Calc: "count,p99(duration)", Limit: 1}), from, until)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	for _, e := range evs {
		if attr(e, "resource.cloud.region").Str == "eu-west-3" && e.Duration > int64(800*time.Millisecond) {
			want++
		}
	}
	if res.Matched != want || res.Groups[0].By["span.customer.id"] != "c-42" {
		t.Errorf("matched %d (want %d), top group %v", res.Matched, want, res.Groups[0].By)
	}
	if cols := (*asked)[0]; !slices.Contains(cols.Attrs, "resource.cloud.region") || !slices.Contains(cols.Attrs, "span.customer.id") {
		t.Errorf("asked for %+v", cols)
	}

	// compare: the filter's fields are the defining ones, found from
	// what it reads.
	cmpRes, err := Compare(ctx, scan, nil, CompareQuery{Selection: parseFilter(t, `{ duration > 800ms && kind = server }`)}, from, until)
	if err != nil {
		t.Fatal(err)
	}
	if top := names(cmpRes.Attributes); top[0] != "resource.cloud.region" {
		t.Errorf("ranking %v", top)
	}
	if d := names(cmpRes.Defining); !slices.Equal(d, []string{"duration", "kind"}) {
		t.Errorf("defining %v, want [duration kind]", d)
	}
	// An unscoped attribute defines both its keys.
	cmpRes, err = Compare(ctx, scan, nil, CompareQuery{Selection: parseFilter(t, `{ .cloud.region = "eu-west-3" }`)}, from, until)
	if err != nil {
		t.Fatal(err)
	}
	if d := names(cmpRes.Defining); !slices.Contains(d, "resource.cloud.region") {
		t.Errorf("defining %v", d)
	}
	if top := names(cmpRes.Attributes); top[0] != "duration" {
		t.Errorf("selecting the region, ranking %v: duration should lead", top)
	}
}
