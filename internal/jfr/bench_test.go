package jfr

import (
	"context"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/profiletest"
)

// BenchmarkJFR decodes the committed recording (gzipped, as the Java SDK
// uploads it: 4 s of a JVM, four profile types) and stores its profiles in
// one batch, as /ingest?format=jfr does minus HTTP.
func BenchmarkJFR(b *testing.B) {
	rec, _ := demo(b)
	s := profiletest.OpenStore(b)
	ctx := context.Background()
	t0 := time.Unix(1_700_000_000, 0)
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		from := t0.Add(time.Duration(i) * 10 * time.Second)
		rs, err := Requests(&ingest.Request{
			Name: "bench.app{env=bench}", From: from.UnixNano(), Until: from.Add(10 * time.Second).UnixNano(),
			SampleRate: 100, SpyName: "javaspy",
		}, rec, nil)
		if err != nil {
			b.Fatal(err)
		}
		refused, err := s.Ing.IngestBatch(ctx, "anonymous", rs)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range refused {
			if e != nil {
				b.Fatal(e)
			}
		}
		i++
	}
}

// BenchmarkJFRDecode is the decoding alone.
func BenchmarkJFRDecode(b *testing.B) {
	rec, _ := demo(b)
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Requests(&ingest.Request{Name: "bench", From: 1, SampleRate: 100}, rec, nil); err != nil {
			b.Fatal(err)
		}
	}
}
