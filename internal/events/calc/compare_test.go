package calc

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/events"
)

// slowFilter selects events slower than min, reading durations only.
type slowFilter struct{ min time.Duration }

func (f slowFilter) Columns() events.Columns { return events.Columns{Intrinsics: events.ColDuration} }

func (f slowFilter) Match(b *events.Batch, sel []bool) {
	for i, d := range b.Duration[:b.Len] {
		if d > int64(f.min) {
			sel[i] = true
		}
	}
}

var regions = []string{"us-east-1", "us-west-2", "eu-west-1", "eu-west-3", "ap-south-1", "ap-east-1", "sa-east-1", "ca-central-1"}

// slowRegionEvents makes n events of which nSlow are slow (over 800 ms):
// 90 % of the slow ones are in eu-west-3, against 8 % of the others;
// 60 % of the slow ones are of customer c-42, one of 5000. Every event has
// its own user and order ID; routes, status codes and a float attribute
// are distributed alike on both sides.
func slowRegionEvents(n, nSlow int) []events.Event {
	rng := rand.New(rand.NewPCG(21, 22))
	evs := make([]events.Event, 0, n)
	slow := make([]bool, n)
	for _, i := range rng.Perm(n)[:nSlow] {
		slow[i] = true
	}
	others := slices.DeleteFunc(slices.Clone(regions), func(r string) bool { return r == "eu-west-3" })
	for i := range n {
		var region, customer string
		var d time.Duration
		if slow[i] {
			d = 800*time.Millisecond + time.Duration(rng.IntN(2000))*time.Millisecond
			region = others[rng.IntN(len(others))]
			if rng.Float64() < 0.9 {
				region = "eu-west-3"
			}
			customer = fmt.Sprintf("c-%d", rng.IntN(5000))
			if rng.Float64() < 0.6 {
				customer = "c-42"
			}
		} else {
			d = time.Duration(math.Exp(rng.NormFloat64()*0.5 + math.Log(50e6)))
			d = min(d, 790*time.Millisecond)
			region = others[rng.IntN(len(others))]
			if rng.Float64() < 0.08 {
				region = "eu-west-3"
			}
			customer = fmt.Sprintf("c-%d", rng.IntN(5000))
		}
		code := int64(200)
		if rng.IntN(50) == 0 {
			code = 500
		}
		evs = append(evs, events.Event{
			Start:    t0.UnixNano() + int64(i)*int64(time.Millisecond),
			Duration: int64(d),
			Service:  "shop",
			Name:     "GET",
			Kind:     events.KindServer,
			Attrs: []events.Attr{
				{Key: "resource.cloud.region", Value: events.String(region)},
				{Key: "span.customer.id", Value: events.String(customer)},
				{Key: "span.user.id", Value: events.String(fmt.Sprintf("user-%d", i))},
				{Key: "span.order.id", Value: events.Int(int64(1_000_000 + i))},
				{Key: "span.http.route", Value: events.String(fmt.Sprintf("/r%d", rng.IntN(20)))},
				{Key: "span.http.status_code", Value: events.Int(code)},
				{Key: "span.db.ms", Value: events.Float(rng.ExpFloat64() * 10)},
			},
		})
	}
	return evs
}

func compare(t *testing.T, evs []events.Event, base Filter, q CompareQuery) *Comparison {
	t.Helper()
	scan, _ := fakeScan(evs, 1000)
	res, err := Compare(context.Background(), scan, base, q, t0, t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func names(ds []AttributeDiff) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Attribute)
	}
	return out
}

func find(ds []AttributeDiff, name string) (AttributeDiff, int) {
	for i, d := range ds {
		if d.Attribute == name {
			return d, i
		}
	}
	return AttributeDiff{}, -1
}

func valueShare(d AttributeDiff, v any) (ValueShare, bool) {
	for _, s := range d.Values {
		if s.Value == v && !s.Absent && !s.Other {
			return s, true
		}
	}
	return ValueShare{}, false
}

func TestCompareRanksTheSlowRegion(t *testing.T) {
	evs := slowRegionEvents(20000, 1000)
	for name, q := range map[string]CompareQuery{
		"filter":   {Selection: slowFilter{800 * time.Millisecond}},
		"box":      {Box: &Box{MinDuration: 800 * time.Millisecond}},
		"sampled":  {Selection: slowFilter{800 * time.Millisecond}, SampleSize: 500},
		"few kept": {Selection: slowFilter{800 * time.Millisecond}, MaxValues: 50},
	} {
		t.Run(name, func(t *testing.T) {
			res := compare(t, evs, nil, q)
			if res.SelectionCount != 1000 || res.BaselineCount != 19000 || res.Scanned != 20000 {
				t.Fatalf("selection %d, baseline %d, scanned %d", res.SelectionCount, res.BaselineCount, res.Scanned)
			}
			top := names(res.Attributes)
			t.Logf("ranking: %v", top)
			if top[0] != "resource.cloud.region" || top[1] != "span.customer.id" {
				t.Fatalf("ranking %v: want resource.cloud.region, then span.customer.id", top)
			}
			region := res.Attributes[0]
			eu, ok := valueShare(region, "eu-west-3")
			if !ok || region.Values[0].Value != "eu-west-3" {
				t.Fatalf("region values %+v: eu-west-3 not first", region.Values)
			}
			tol := 0.02
			if q.SampleSize != 0 {
				tol = 0.08
			}
			if math.Abs(eu.SelectionShare-0.9) > tol+0.02 || math.Abs(eu.BaselineShare-0.08) > tol {
				t.Errorf("eu-west-3: selection %.3f, baseline %.3f; want ~0.90 and ~0.08", eu.SelectionShare, eu.BaselineShare)
			}
			if region.Score < 0.7 || region.Score > 0.9 || region.HighCardinality {
				t.Errorf("region score %.3f, high cardinality %v", region.Score, region.HighCardinality)
			}
			cust := res.Attributes[1]
			if c42, ok := valueShare(cust, "c-42"); !ok || cust.Values[0].Value != "c-42" || math.Abs(c42.SelectionShare-0.6) > tol+0.02 {
				t.Errorf("customer values %+v: want c-42 first at ~0.6", cust.Values)
			}
			// IDs unique per event differ between any two samples: they
			// must score near nothing. A text ID says why; a numeric one
			// is compared by ranges, which are alike on both sides.
			for _, id := range []string{"span.user.id", "span.order.id"} {
				d, i := find(res.Attributes, id)
				if i < 2 || d.Score > 0.05 || d.HighCardinality != (id == "span.user.id") {
					t.Errorf("%s at rank %d, score %.3f, high cardinality %v", id, i, d.Score, d.HighCardinality)
				}
			}
			for _, same := range []string{"span.http.route", "span.http.status_code", "name", "kind", "resource.service.name"} {
				if d, _ := find(res.Attributes, same); d.Score > 0.06 {
					t.Errorf("%s, alike on both sides, scores %.3f", same, d.Score)
				}
			}
			// The selection is defined by duration: shown apart.
			if !slices.Equal(names(res.Defining), []string{"duration"}) {
				t.Errorf("defining %v, want [duration]", names(res.Defining))
			}
			if _, i := find(res.Attributes, "duration"); i >= 0 {
				t.Error("duration ranked among the attributes")
			}
			dur := res.Defining[0]
			if dur.Unit != "ns" || dur.Values[0].Range == nil || dur.Score < 0.9 {
				t.Errorf("duration: %+v", dur)
			}
			if q.SampleSize != 0 && (res.BaselineSampled >= res.BaselineCount || res.SelectionSampled > res.SelectionCount) {
				t.Errorf("sampled %d of %d and %d of %d", res.SelectionSampled, res.SelectionCount, res.BaselineSampled, res.BaselineCount)
			}
		})
	}
}

func TestCompareValuesAndRanges(t *testing.T) {
	evs := slowRegionEvents(5000, 500)
	res := compare(t, evs, nil, CompareQuery{Selection: slowFilter{800 * time.Millisecond}, Values: 3})
	// A few distinct numbers stay values; many become ranges.
	codes, _ := find(res.Attributes, "span.http.status_code")
	for _, v := range codes.Values {
		if v.Range != nil || (!v.Other && v.Value != int64(200) && v.Value != int64(500)) {
			t.Errorf("status code value %+v", v)
		}
	}
	db, _ := find(res.Attributes, "span.db.ms")
	for _, v := range db.Values {
		if !v.Other && (v.Range == nil || v.Range.Hi != 2*v.Range.Lo && v.Range.Lo != 0) {
			t.Errorf("span.db.ms value %+v: want a power-of-two range", v)
		}
	}
	// Values: at most 3 listed, then other; every side's shares sum to 1.
	for _, d := range append(res.Attributes, res.Defining...) {
		var s0, s1 float64
		listed := 0
		for _, v := range d.Values {
			s0 += v.SelectionShare
			s1 += v.BaselineShare
			if !v.Other {
				listed++
			}
		}
		if listed > 3 || math.Abs(s0-1) > 1e-9 || math.Abs(s1-1) > 1e-9 {
			t.Errorf("%s: %d values listed, shares sum to %v and %v", d.Attribute, listed, s0, s1)
		}
	}
}

func TestCompareAbsentAndBaseline(t *testing.T) {
	// Errors carry an attribute only the failing events have; the
	// baseline is given: the successful events.
	var evs []events.Event
	for i := range 400 {
		e := events.Event{Start: t0.UnixNano() + int64(i), Duration: int64(i), Status: events.StatusOK,
			Attrs: []events.Attr{{Key: "span.route", Value: events.String(fmt.Sprint("/r", i%4))}}}
		if i%4 == 0 {
			e.Status = events.StatusError
			e.Attrs = append(e.Attrs, events.Attr{Key: "span.error.type", Value: events.String("timeout")})
		}
		evs = append(evs, e)
	}
	errs := funcFilter{cols: events.Columns{Intrinsics: events.ColStatus}, match: func(e events.Event) bool { return e.Status == events.StatusError }}
	oks := funcFilter{cols: events.Columns{Intrinsics: events.ColStatus}, match: func(e events.Event) bool { return e.Status == events.StatusOK }}
	res := compare(t, evs, nil, CompareQuery{Selection: errs, Baseline: oks, Defining: []string{"span.error.type"}})
	if res.SelectionCount != 100 || res.BaselineCount != 300 {
		t.Fatalf("selection %d, baseline %d", res.SelectionCount, res.BaselineCount)
	}
	if !slices.Equal(names(res.Defining), []string{"span.error.type", "status"}) {
		t.Errorf("defining %v", names(res.Defining))
	}
	route := res.Attributes[0]
	if route.Attribute != "span.route" || route.Values[0].Value != "/r0" || route.Values[0].SelectionShare != 1 {
		t.Errorf("first attribute %+v", route)
	}
	et, _ := find(res.Defining, "span.error.type")
	var absent ValueShare
	for _, v := range et.Values {
		if v.Absent {
			absent = v
		}
	}
	if !absent.Absent || absent.SelectionShare != 0 || absent.BaselineShare != 1 {
		t.Errorf("absent error.type: %+v", et.Values)
	}
	b, _ := json.Marshal(et.Values)
	if !strings.Contains(string(b), `{"value":null,"absent":true,"selection_share":0,"baseline_share":1}`) {
		t.Errorf("absent as JSON: %s", b)
	}
}

func TestCompareBaseFilterAndRange(t *testing.T) {
	evs := slowRegionEvents(4000, 400)
	// A base that keeps the first half: both sides are within it.
	half := t0.Add(2000 * time.Millisecond).UnixNano()
	base := funcFilter{cols: events.Columns{Intrinsics: events.ColStart}, match: func(e events.Event) bool { return e.Start < half }}
	res := compare(t, evs, base, CompareQuery{Selection: slowFilter{800 * time.Millisecond}})
	var slowFirstHalf int64
	for _, e := range evs[:2000] {
		if e.Duration > int64(800*time.Millisecond) {
			slowFirstHalf++
		}
	}
	if res.SelectionCount != slowFirstHalf || res.BaselineCount != 2000-slowFirstHalf || res.Scanned != 4000 {
		t.Errorf("selection %d (want %d), baseline %d, scanned %d", res.SelectionCount, slowFirstHalf, res.BaselineCount, res.Scanned)
	}
	// A box in time as well as duration.
	res = compare(t, evs, nil, CompareQuery{Box: &Box{MinDuration: 800 * time.Millisecond, MaxDuration: time.Hour, From: t0, Until: t0.Add(time.Second)}})
	var inBox int64
	for _, e := range evs[:1000] {
		if e.Duration >= int64(800*time.Millisecond) {
			inBox++
		}
	}
	if res.SelectionCount != inBox || res.BaselineCount != 4000-inBox {
		t.Errorf("box: selection %d (want %d), baseline %d", res.SelectionCount, inBox, res.BaselineCount)
	}
}

func TestCompareErrors(t *testing.T) {
	scan, _ := fakeScan(slowRegionEvents(10, 0), 5)
	ctx := context.Background()
	for _, tt := range []struct {
		q    CompareQuery
		want string
	}{
		{CompareQuery{}, "compare needs a selection"},
		{CompareQuery{Box: &Box{MinDuration: time.Second, MaxDuration: time.Millisecond}}, "box: duration 1s to 1ms is empty"},
		{CompareQuery{Box: &Box{}, Values: -1}, "must not be negative"},
	} {
		if _, err := Compare(ctx, scan, nil, tt.q, t0, t0.Add(time.Hour)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.q, err, tt.want)
		}
	}
	res, err := Compare(ctx, scan, nil, CompareQuery{Selection: slowFilter{time.Hour}}, t0, t0.Add(time.Hour))
	if err != nil || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "selection holds no events") || len(res.Attributes) != 0 {
		t.Errorf("empty selection: %+v, %v", res, err)
	}
}

func TestComparisonJSON(t *testing.T) {
	res := compare(t, slowRegionEvents(2000, 200), nil, CompareQuery{Selection: slowFilter{800 * time.Millisecond}, Values: 1})
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"selection_count", "baseline_count", "scanned", "selection_sampled", "baseline_sampled", "attributes", "defining"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %q in %s", k, b)
		}
	}
	a := m["attributes"].([]any)[0].(map[string]any)
	for _, k := range []string{"attribute", "score", "values", "high_cardinality"} {
		if _, ok := a[k]; !ok {
			t.Errorf("no %q in an attribute: %v", k, a)
		}
	}
	v := a["values"].([]any)[0].(map[string]any)
	if v["value"] != "eu-west-3" || v["selection_share"] == nil || v["baseline_share"] == nil {
		t.Errorf("first value %v", v)
	}
}

// TestCompareCoarseBeforeFine: when the slow requests are those of one
// region, the region ranks above the host, which is finer (every host is
// in one region) and so as far apart in total, but spread over the
// region's many hosts: the region has the one value that explains them.
func TestCompareCoarseBeforeFine(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	regions := []string{"eu-west-1", "eu-west-3", "us-east-1", "ap-south-1"}
	var evs []events.Event
	for i := range 20000 {
		ri := rng.IntN(len(regions))
		d := 20 * time.Millisecond
		if regions[ri] == "eu-west-3" {
			d = time.Second
		}
		evs = append(evs, events.Event{Start: t0.UnixNano() + int64(i)*int64(time.Millisecond), Duration: int64(d), Service: "shop",
			Attrs: []events.Attr{
				{Key: "resource.cloud.region", Value: events.String(regions[ri])},
				{Key: "resource.host.name", Value: events.String(fmt.Sprintf("%s-host-%d", regions[ri], rng.IntN(12)))},
			}})
	}
	res := compare(t, evs, nil, CompareQuery{Box: &Box{MinDuration: 500 * time.Millisecond}})
	if top := names(res.Attributes); len(top) < 2 || top[0] != "resource.cloud.region" || top[1] != "resource.host.name" {
		t.Fatalf("ranking %v: want the region, then the host", top)
	}
	// Not by a hair: the host's best value is one of twelve.
	if r, h := res.Attributes[0].Score, res.Attributes[1].Score; r < 0.9 || h > r/2 {
		t.Errorf("scores: region %.3f, host %.3f", r, h)
	}
}
