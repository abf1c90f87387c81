package calc

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/events"
)

const (
	benchEvents = 1 << 20
	benchBatch  = 64 << 10
	benchRoutes = 300
)

// benchBatches makes benchEvents spans in batches of benchBatch: a route
// of ~300 (some far more common than others), a region of 8, a user of
// 100,000 and a log-normal duration; a minority of the eu-west-3 region
// is slow. With shared, a value's string is one string each time it
// repeats, as a storage decoding a dictionary hands it out; without, each
// row has its own copy.
func benchBatches(shared bool) []*events.Batch {
	rng := rand.New(rand.NewPCG(11, 12))
	routes := make([]string, benchRoutes)
	for i := range routes {
		routes[i] = fmt.Sprintf("/api/v1/resource%d/{id}", i)
	}
	regions := []string{"us-east-1", "us-west-2", "eu-west-1", "eu-west-3", "ap-south-1", "ap-east-1", "sa-east-1", "ca-central-1"}
	var out []*events.Batch
	start := t0.UnixNano()
	for lo := 0; lo < benchEvents; lo += benchBatch {
		n := min(benchBatch, benchEvents-lo)
		b := &events.Batch{
			Len: n, Start: make([]int64, n), Duration: make([]int64, n),
			Attrs: map[string]*events.Column{
				"span.http.route":       {Types: make([]events.Type, n), Str: make([]string, n)},
				"span.region":           {Types: make([]events.Type, n), Str: make([]string, n)},
				"span.user.id":          {Types: make([]events.Type, n), Str: make([]string, n)},
				"span.http.status_code": {Types: make([]events.Type, n), Num: make([]uint64, n)},
			},
		}
		for i := range n {
			b.Start[i] = start + int64(lo+i)*int64(time.Millisecond)
			// Zipf-like: low route numbers are the busy ones.
			route := routes[min(int(math.Exp(rng.Float64()*math.Log(benchRoutes))), benchRoutes-1)]
			region := regions[rng.IntN(len(regions))]
			d := math.Exp(rng.NormFloat64()*0.8 + math.Log(20e6))
			if region == "eu-west-3" && rng.IntN(4) == 0 {
				d *= 20
			}
			b.Duration[i] = int64(d)
			if !shared {
				route = strings.Clone(route)
				region = strings.Clone(region)
			}
			set := func(k, v string) {
				c := b.Attrs[k]
				c.Types[i], c.Str[i] = events.TypeString, v
			}
			set("span.http.route", route)
			set("span.region", region)
			set("span.user.id", fmt.Sprintf("user-%d", rng.IntN(100000)))
			code := int64(200)
			if rng.IntN(50) == 0 {
				code = 500
			}
			c := b.Attrs["span.http.status_code"]
			c.Types[i], c.Num[i] = events.TypeInt, uint64(code)
		}
		out = append(out, b)
	}
	return out
}

func batchScan(bs []*events.Batch) Scan {
	return func(ctx context.Context, cols events.Columns, fn func(*events.Batch) error) error {
		for _, b := range bs {
			if err := fn(b); err != nil {
				return err
			}
		}
		return nil
	}
}

// BenchmarkGroupBy is a group by route with count and p99(duration) over
// 1M events; ns/event is the figure to read.
func BenchmarkGroupBy(b *testing.B) {
	for _, shared := range []bool{true, false} {
		name := "shared-strings"
		if !shared {
			name = "copied-strings"
		}
		b.Run(name, func(b *testing.B) {
			bs := benchBatches(shared)
			scan := batchScan(bs)
			q := mustSpec(b, Spec{By: "span.http.route", Calc: "count,p99(duration)"})
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				res, err := Run(ctx, scan, nil, q, t0, t0.Add(24*time.Hour))
				if err != nil {
					b.Fatal(err)
				}
				if res.Matched != benchEvents {
					b.Fatalf("matched %d", res.Matched)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchEvents, "ns/event")
		})
	}
}

// BenchmarkGroupByStep adds a step of a minute (~17 hours of events in
// 1020 steps) and two more calculations.
func BenchmarkGroupByStep(b *testing.B) {
	bs := benchBatches(true)
	scan := batchScan(bs)
	q := mustSpec(b, Spec{By: "span.http.route", Calc: "count,p99(duration),avg(duration)", Step: time.Minute})
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Run(ctx, scan, nil, q, t0, t0.Add(24*time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchEvents, "ns/event")
}

// BenchmarkCompare compares the slow events (over 200 ms, mostly of the
// eu-west-3 region) of 1M with the rest, over every field.
func BenchmarkCompare(b *testing.B) {
	bs := benchBatches(true)
	scan := batchScan(bs)
	q := CompareQuery{Selection: slowFilter{200 * time.Millisecond}}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		res, err := Compare(ctx, scan, nil, q, t0, t0.Add(24*time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		if res.Attributes[0].Attribute != "span.region" {
			b.Fatalf("ranked %s first", res.Attributes[0].Attribute)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchEvents, "ns/event")
}
