package storage

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	gpprof "github.com/google/pprof/profile"

	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/profile"
	"github.com/hearth-profiler/hearth/internal/storage/bucket"
)

// Benchmarks over the real Go CPU profiles of the benchmark corpus,
// re-stamped 10 s apart as one series: 360 profiles make an hour, 8,640 a
// day.
//
//	go test ./internal/storage -run '^$' -bench . -benchtime 3x -p 1

// corpusInputs parses the corpus once.
func corpusInputs(b *testing.B) []*gpprof.Profile {
	var ps []*gpprof.Profile
	for _, raw := range corpus(b) {
		p, err := gpprof.ParseData(raw)
		if err != nil {
			b.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

var benchSeries = labels.FromStrings("service_name", "bench", "env", "prod")

// fillHead applies n corpus profiles, starting at profile i0, to t's head.
func fillHead(b *testing.B, t *tenant, ps []*gpprof.Profile, i0, n int) {
	typ, _ := profile.ParseType(cpuType)
	for i := i0; i < i0+n; i++ {
		p := ps[i%len(ps)]
		p.TimeNanos = t0 + int64(i)*10*sec
		t.apply(t.head, &Input{Labels: benchSeries, Profile: p, Types: []profile.Type{{}, typ}})
	}
}

func dirBytes(b *testing.B, dir string) int64 {
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkWriteBlock writes a block from a head of N corpus profiles.
func BenchmarkWriteBlock(b *testing.B) {
	ps := corpusInputs(b)
	for _, n := range []int{360, 1440} {
		b.Run(fmt.Sprintf("profiles=%d", n), func(b *testing.B) {
			t := newTenant(b.TempDir(), "bench")
			fillHead(b, t, ps, 0, n)
			dir := b.TempDir()
			bkt, err := bucket.NewDir(dir)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			var ids idGenerator
			var meta *blockMeta
			b.ReportAllocs()
			for b.Loop() {
				id := ids.next(time.Now())
				var err error
				if meta, _, err = writeHeadBlock(ctx, t.head, bkt, "", id, 1, ""); err != nil {
					b.Fatal(err)
				}
				if err := os.RemoveAll(filepath.Join(dir, id)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(meta.Stats.Samples), "rows")
			b.ReportMetric(float64(meta.Stats.Bytes)/float64(meta.Stats.Samples), "bytes/row")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(meta.Stats.Samples), "ns/row")
		})
	}
}

// dayBlock builds a store holding one day of one series: 24 hourly blocks
// compacted into one, and a 25th hourly block that closes the day's
// compaction window. It returns the store's directory.
func dayBlock(b *testing.B) (string, *blockMeta, int64) {
	ps := corpusInputs(b)
	dir := b.TempDir()
	opts := testOptions()
	db := openDB(b, dir, opts)
	t := db.tenant("anonymous")
	var hourly int64
	for h := range 25 {
		t.mu.Lock()
		fillHead(b, t, ps, h*360, 360)
		t.mu.Unlock()
		if err := db.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	var rows int64
	for _, blk := range t.blocks[:24] {
		hourly += dirBytes(b, filepath.Join(dir, "tenants", filepath.FromSlash(blk.dir)))
		rows += blk.meta.Stats.Samples
	}
	if err := db.Compact(context.Background()); err != nil {
		b.Fatal(err)
	}
	if len(t.blocks) != 2 {
		b.Fatalf("%d blocks after compaction, want 2", len(t.blocks))
	}
	meta := t.blocks[0].meta
	if meta.Stats.Samples != rows || meta.Stats.Profiles != 8640 {
		b.Fatalf("compacted block holds %d rows of %d profiles, want %d of 8640", meta.Stats.Samples, meta.Stats.Profiles, rows)
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	return dir, &meta, hourly
}

// BenchmarkDayBlock measures a compacted block of 8,640 profiles of one
// series: its size per sample row, and SelectStacks over all of it, cold
// (store freshly opened) and warm (second call on an open store).
func BenchmarkDayBlock(b *testing.B) {
	dir, meta, hourly := dayBlock(b)
	bdir := filepath.Join(dir, "tenants", "anonymous", "blocks", meta.ID)
	p := SelectParams{Start: t0, End: t0 + int64(24*time.Hour)}
	ctx := context.Background()
	check := func(b *testing.B, svs []*StackValues) {
		var sum int64
		for _, sv := range svs {
			for _, v := range sv.Values {
				sum += v
			}
		}
		if len(svs) != 1 || sum == 0 {
			b.Fatalf("SelectStacks: %d results, sum %d", len(svs), sum)
		}
	}
	b.Run("size", func(b *testing.B) {
		for b.Loop() {
		}
		total := dirBytes(b, bdir)
		b.ReportMetric(float64(total)/float64(meta.Stats.Samples), "bytes/row")
		b.ReportMetric(float64(hourly)/float64(meta.Stats.Samples), "bytes/row-hourly")
		b.ReportMetric(float64(meta.Stats.Samples), "rows")
		b.ReportMetric(float64(total), "bytes")
		for _, f := range []string{samplesFile, symbolsFile, indexFile, metaFile} {
			fi, err := os.Stat(filepath.Join(bdir, f))
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("%s: %d bytes, %.3f bytes/row", f, fi.Size(), float64(fi.Size())/float64(meta.Stats.Samples))
		}
	})
	b.Run("SelectStacks/cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			db := openDB(b, dir, testOptions())
			svs, err := db.SelectStacks(ctx, "anonymous", p)
			if err != nil {
				b.Fatal(err)
			}
			check(b, svs)
			db.Close()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(meta.Stats.Samples), "ns/row")
	})
	b.Run("SelectStacks/warm", func(b *testing.B) {
		db := openDB(b, dir, testOptions())
		defer db.Close()
		if _, err := db.SelectStacks(ctx, "anonymous", p); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			svs, err := db.SelectStacks(ctx, "anonymous", p)
			if err != nil {
				b.Fatal(err)
			}
			check(b, svs)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(meta.Stats.Samples), "ns/row")
	})
	b.Run("SelectSeries/warm", func(b *testing.B) {
		db := openDB(b, dir, testOptions())
		defer db.Close()
		for b.Loop() {
			sps, err := db.SelectSeries(ctx, "anonymous", p)
			if err != nil || len(sps) != 1 || len(sps[0].Points) != 8640 {
				b.Fatalf("SelectSeries: %v", err)
			}
		}
	})
}

// BenchmarkSpanColumns writes a block of 360 corpus profiles as they are
// and with their samples in requests, labelled in hex as Hearth's
// instrument package does: span IDs and trace IDs random, four spans
// under each local root, and a trace per root. perSpan is how many sample
// rows in a row of a profile share a span: 1 is the worst case, every
// sample its own request. The difference of bytes/row against spans=0
// is what a sample's request costs on disk.
func BenchmarkSpanColumns(b *testing.B) {
	for _, perSpan := range []int{0, 1, 4, 16} {
		b.Run(fmt.Sprintf("perSpan=%d", perSpan), func(b *testing.B) {
			corpus := corpusInputs(b)
			ps := make([]*gpprof.Profile, 360)
			for i := range ps {
				ps[i] = corpus[i%len(corpus)].Copy()
			}
			spans := 0
			if perSpan > 0 {
				rng := rand.New(rand.NewPCG(1, 2))
				var span, root string
				var trace [16]byte
				n := 0
				for _, p := range ps {
					for _, s := range p.Sample {
						if n%perSpan == 0 {
							if spans%4 == 0 {
								root = fmt.Sprintf("%016x", rng.Uint64())
								binary.LittleEndian.PutUint64(trace[:8], rng.Uint64())
								binary.LittleEndian.PutUint64(trace[8:], rng.Uint64())
							}
							span = fmt.Sprintf("%016x", rng.Uint64())
							spans++
						}
						s.Label = map[string][]string{
							"span_id":            {span},
							"local_root_span_id": {root},
							"trace_id":           {hex.EncodeToString(trace[:])},
						}
						n++
					}
				}
			}
			t := newTenant(b.TempDir(), "bench")
			fillHead(b, t, ps, 0, 360)
			bkt, err := bucket.NewDir(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			var ids idGenerator
			var meta *blockMeta
			for b.Loop() {
				if meta, _, err = writeHeadBlock(context.Background(), t.head, bkt, "", ids.next(time.Now()), 1, ""); err != nil {
					b.Fatal(err)
				}
			}
			if meta.Stats.Spans != int64(spans) {
				b.Fatalf("block holds %d spans, want %d", meta.Stats.Spans, spans)
			}
			b.ReportMetric(float64(meta.Stats.Samples), "rows")
			b.ReportMetric(float64(spans), "spans")
			b.ReportMetric(float64(meta.Stats.Bytes)/float64(meta.Stats.Samples), "bytes/row")
		})
	}
}
