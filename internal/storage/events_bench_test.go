package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/events"
)

// benchSpans makes n HTTP server spans of 50 services and 300 routes
// with 15 attributes each, a user and an order ID among them, the shape
// of bench/spans' workload.
func benchSpans(n int, t0 int64, seed uint64) []events.Event {
	r := rand.New(rand.NewPCG(seed, 2))
	out := make([]events.Event, n)
	for i := range out {
		svc := r.IntN(50)
		route := svc*6 + r.IntN(6)
		e := &out[i]
		e.Start = t0 + int64(i)*int64(time.Millisecond)
		e.Duration = int64(r.ExpFloat64() * 20e6)
		for j := range e.TraceID {
			e.TraceID[j] = byte(r.Uint32())
		}
		for j := range e.SpanID {
			e.SpanID[j] = byte(r.Uint32())
		}
		e.Service = fmt.Sprintf("svc-%02d", svc)
		e.Name = fmt.Sprintf("GET /api/r%03d", route)
		e.Kind = events.KindServer
		e.Attrs = []events.Attr{
			{Key: "resource.host.name", Value: events.String(fmt.Sprintf("host-%d", r.IntN(20)))},
			{Key: "resource.k8s.pod.name", Value: events.String(fmt.Sprintf("%s-%d", e.Service, r.IntN(5)))},
			{Key: "resource.service.version", Value: events.String("1.4.2")},
			{Key: "resource.cloud.region", Value: events.String([]string{"eu-west-1", "us-east-1", "ap-south-1"}[r.IntN(3)])},
			{Key: "span.http.request.method", Value: events.String("GET")},
			{Key: "span.http.route", Value: events.String(fmt.Sprintf("/api/r%03d", route))},
			{Key: "span.url.path", Value: events.String(fmt.Sprintf("/api/r%03d/%d", route, r.IntN(1000)))},
			{Key: "span.http.response.status_code", Value: events.Int([]int64{200, 200, 200, 200, 404, 500}[r.IntN(6)])},
			{Key: "span.server.address", Value: events.String(e.Service + ".internal")},
			{Key: "span.user_agent.original", Value: events.String("Go-http-client/1.1")},
			{Key: "span.client.address", Value: events.String(fmt.Sprintf("10.0.%d.%d", r.IntN(4), r.IntN(250)))},
			{Key: "span.network.protocol.version", Value: events.String("1.1")},
			{Key: "span.user.id", Value: events.String(fmt.Sprintf("u-%d", r.IntN(1_000_000)))},
			{Key: "span.order.id", Value: events.String(fmt.Sprintf("o-%d", r.Uint64()))},
			{Key: "span.http.response.body.size", Value: events.Int(int64(r.IntN(100000)))},
		}
		e.Normalize()
	}
	return out
}

// BenchmarkAppendEvents is the storage part of ingesting spans: encoding
// the log record, logging it and appending to the head, per span.
func BenchmarkAppendEvents(b *testing.B) {
	opts := testOptions()
	opts.MaxHeadBytes = 1 << 40 // one head, never behind: nothing cuts here
	db := openDB(b, b.TempDir(), opts)
	defer db.Close()
	t0 := time.Now().UnixNano()
	batch := benchSpans(500, t0, 1)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := db.AppendEvents(ctx, "t", batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/span")
}

// benchBlock stores n spans, one a millisecond from t0, in one block,
// and returns the store, t0, the write's time per span and a trace ID of
// the spans.
func benchBlock(b *testing.B, n int) (*DB, int64, float64, events.TraceID) {
	opts := testOptions()
	opts.MaxHeadBytes = 1 << 40 // one head of n spans: nothing cuts here
	db := openDB(b, b.TempDir(), opts)
	b.Cleanup(func() { db.Close() })
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC).UnixNano()
	ctx := context.Background()
	var id events.TraceID
	for i := 0; i < n; i += 1 << 16 {
		spans := benchSpans(1<<16, t0+int64(i)*int64(time.Millisecond), uint64(i))
		if i == n/2 {
			id = spans[100].TraceID
		}
		if err := db.AppendEvents(ctx, "t", spans); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	if err := db.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	return db, t0, float64(time.Since(start).Nanoseconds()) / float64(n), id
}

// BenchmarkEventsTrace looks one trace up by ID in a block of 1M spans
// (16 row groups), over the whole day.
func BenchmarkEventsTrace(b *testing.B) {
	db, t0, _, id := benchBlock(b, 1<<20)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		spans, err := db.Trace(ctx, "t", id, t0, t0+int64(24*time.Hour))
		if err != nil || len(spans) != 1 {
			b.Fatalf("%d spans, %v", len(spans), err)
		}
	}
}

// BenchmarkEventsBlock writes 1M spans as one block, then reads a route
// and duration column back, as a group by route with p99 does; it
// reports bytes per span on disk and the read's cost per span.
func BenchmarkEventsBlock(b *testing.B) {
	const n = 1 << 20
	db, t0, writeNs, _ := benchBlock(b, n)
	ctx := context.Background()
	m := db.tenant("t").blocks[0].meta.Events
	q := EventQuery{Columns: events.Columns{Intrinsics: events.ColDuration, Attrs: []string{"span.http.route"}},
		Start: t0, End: t0 + int64(2*n)*int64(time.Millisecond)}
	b.ResetTimer()
	for b.Loop() {
		rows := 0
		err := db.SelectEvents(ctx, "t", q, func(bt *events.Batch) error {
			rows += bt.Len
			return nil
		})
		if err != nil || rows != n {
			b.Fatalf("%d rows, %v", rows, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "read-ns/span")
	// Reported last: the loop starts the benchmark's metrics afresh.
	b.ReportMetric(writeNs, "write-ns/span")
	b.ReportMetric(float64(m.Bytes)/n, "bytes/span")
}
