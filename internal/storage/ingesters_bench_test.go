package storage

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/storage/bucket"
)

// BenchmarkHeadSnapshot measures what a query on a querier costs an
// ingester whose head changed since the last one (the snapshot's cache
// does not help): writing the head as a block in memory and encoding it
// (ingester), and decoding and opening it (querier), over a head of N
// corpus profiles of one series and 10,000 events.
//
//	go test ./internal/storage -run '^$' -bench HeadSnapshot -benchtime 5x
func BenchmarkHeadSnapshot(b *testing.B) {
	ps := corpusInputs(b)
	for _, n := range []int{360, 1440} {
		b.Run(fmt.Sprintf("profiles=%d", n), func(b *testing.B) {
			opts := testOptions()
			opts.SharedBucket = true
			opts.Bucket = bucket.NewMem("bench")
			db := openDB(b, b.TempDir(), opts)
			defer db.Close()
			t := db.tenant("bench")
			t.mu.Lock()
			fillHead(b, t, ps, 0, n)
			t.mu.Unlock()
			if err := db.AppendEvents(context.Background(), "bench", genEvents(1, 10000, t0)); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			start, end := t0-int64(time.Hour), t0+int64(24*time.Hour)
			var size int
			b.Run("ingester", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					t.snapMu.Lock()
					t.snapCache = nil // as if the head had changed
					t.snapMu.Unlock()
					s, err := db.HeadSnapshot(ctx, "bench", start, end)
					if err != nil {
						b.Fatal(err)
					}
					var buf bytes.Buffer
					if _, err := s.WriteTo(&buf); err != nil {
						b.Fatal(err)
					}
					size = buf.Len()
				}
				b.ReportMetric(float64(size), "bytes")
			})
			s, err := db.HeadSnapshot(ctx, "bench", start, end)
			if err != nil {
				b.Fatal(err)
			}
			var buf bytes.Buffer
			if _, err := s.WriteTo(&buf); err != nil {
				b.Fatal(err)
			}
			ropts := testOptions()
			ropts.ReadOnly = true
			ropts.Bucket = bucket.NewMem("querier")
			q := openDB(b, b.TempDir(), ropts)
			defer q.Close()
			b.Run("querier", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					got, err := ReadHeadSnapshot(bytes.NewReader(buf.Bytes()), 0)
					if err != nil {
						b.Fatal(err)
					}
					qctx, release := WithIngesters(ctx, func(context.Context, string, int64, int64) ([]*HeadSnapshot, error) {
						return []*HeadSnapshot{got}, nil
					})
					if _, err := q.LabelNames(qctx, "bench", start, end, nil); err != nil {
						b.Fatal(err)
					}
					release()
				}
			})
		})
	}
}
