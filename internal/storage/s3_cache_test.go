package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/s3test"
	"github.com/hearth-profiler/hearth/internal/storage/bucket"
)

// s3Reads are the requests that reads sent to an S3 server, from
// objstore's metrics: GETs (whole and ranged), HEADs, lists, and the
// bytes that GETs fetched.
type s3Reads struct {
	Gets, Heads, Lists, Bytes float64
}

func (r s3Reads) sub(o s3Reads) s3Reads {
	return s3Reads{r.Gets - o.Gets, r.Heads - o.Heads, r.Lists - o.Lists, r.Bytes - o.Bytes}
}

func gatherS3Reads(t testing.TB, reg *prometheus.Registry) s3Reads {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var r s3Reads
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var op string
			for _, l := range m.GetLabel() {
				if l.GetName() == "operation" {
					op = l.GetValue()
				}
			}
			switch mf.GetName() {
			case "hearth_objstore_bucket_operations_total":
				v := m.GetCounter().GetValue()
				switch op {
				case "get", "get_range":
					r.Gets += v
				case "attributes", "exists":
					r.Heads += v
				case "iter":
					r.Lists += v
				}
			case "hearth_objstore_bucket_operation_fetched_bytes_total":
				r.Bytes += m.GetCounter().GetValue()
			}
		}
	}
	return r
}

// querier is a read-only store over an S3 bucket, as a querier opens it,
// with a cache in front of the bucket unless cache is "".
type querier struct {
	db     *DB
	reg    *prometheus.Registry
	cached *bucket.Cached
}

func openQuerier(t testing.TB, srv *s3test.Server, name, cache string) *querier {
	t.Helper()
	q := &querier{reg: prometheus.NewRegistry()}
	b, err := bucket.Open(&bucket.Config{Type: bucket.TypeS3, Config: srv.Config(name)},
		bucket.Options{SpoolDir: t.TempDir(), Registerer: q.reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if cache != "" {
		if q.cached, err = bucket.NewCached(b, bucket.CacheOptions{
			Cacheable:   ImmutableObject,
			MemoryBytes: 64 << 20,
			Dir:         cache,
			DiskBytes:   1 << 30,
			Registerer:  q.reg,
		}); err != nil {
			t.Fatal(err)
		}
		b = q.cached
	}
	opts := testOptions()
	opts.Bucket = b
	opts.ReadOnly = true
	q.db = openDB(t, t.TempDir(), opts)
	t.Cleanup(func() { q.db.Close() })
	return q
}

// metric returns the value of the counter name, without labels.
func (q *querier) metric(name string) float64 {
	mfs, _ := q.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// hits returns the cache's hits in tier, from its metric.
func (q *querier) hits(tier string) float64 {
	mfs, _ := q.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "hearth_bucket_cache_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var tierOK, hit bool
			for _, l := range m.GetLabel() {
				tierOK = tierOK || l.GetName() == "tier" && l.GetValue() == tier
				hit = hit || l.GetName() == "result" && l.GetValue() == "hit"
			}
			if tierOK && hit {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestS3QuerierCache opens the blocks of a bucket on S3 as a querier
// would, without a cache, with an empty one, with the one a previous run
// left on disk, with that one damaged, and with it removed: each answers
// what was written.
// The cache cuts the GETs of opening the blocks and of querying them, and
// a warm one sends none for what it holds. The test logs the requests of
// each; they are the numbers the README quotes.
func TestS3QuerierCache(t *testing.T) {
	srv := s3test.Start(t)
	name := srv.NewBucket(t)
	ctx := context.Background()
	tev := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC).UnixNano()
	evs := genEvents(11, 5000, tev)
	const evTenant = "team.a"

	w := openS3DB(t, t.TempDir(), openS3Bucket(t, srv, name, nil))
	real := corpus(t)
	for part := range 2 {
		loadTestData(t, w, part*60, (part+1)*60, real)
		if err := w.AppendEvents(ctx, evTenant, slices.Clone(evs[part*2500:(part+1)*2500])); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	qs := testQueries(0, 120)
	want := collectAll(t, w, qs)
	w.Close()
	wantEvents := slices.Clone(evs)
	sortEvents(wantEvents)

	// query runs every query once, and returns the requests that opening
	// and querying sent.
	query := func(what string, q *querier, since s3Reads) (open, queries s3Reads) {
		t.Helper()
		open = gatherS3Reads(t, q.reg).sub(since)
		if d := cmp.Diff(want, collectAll(t, q.db, qs)); d != "" {
			t.Fatalf("%s: profiles (-want +got):\n%s", what, d)
		}
		if d := cmp.Diff(wantEvents, selectAll(t, q.db, evTenant, tev, tev+int64(time.Hour))); d != "" {
			t.Fatalf("%s: events (-want +got):\n%s", what, d)
		}
		queries = gatherS3Reads(t, q.reg).sub(since).sub(open)
		t.Logf("%-28s open: %4.0f GETs %9.0f bytes, %3.0f HEADs, %3.0f lists; queries: %4.0f GETs %9.0f bytes, %3.0f HEADs",
			what, open.Gets, open.Bytes, open.Heads, open.Lists, queries.Gets, queries.Bytes, queries.Heads)
		return open, queries
	}

	plain := openQuerier(t, srv, name, "")
	plainOpen, plainQueries := query("no cache", plain, s3Reads{})
	plain.db.Close()

	cacheDir := filepath.Join(t.TempDir(), "cache")
	cold := openQuerier(t, srv, name, cacheDir)
	coldOpen, coldQueries := query("cache, cold", cold, s3Reads{})
	// The same queries again: the blocks' pages are in memory now.
	_, memQueries := query("cache, same process again", cold, gatherS3Reads(t, cold.reg))
	cold.db.Close()
	if coldOpen.Gets >= plainOpen.Gets {
		t.Errorf("a cold cache opens the blocks with %v GETs, no fewer than the %v without it", coldOpen.Gets, plainOpen.Gets)
	}
	if coldOpen.Gets+coldQueries.Gets >= plainOpen.Gets+plainQueries.Gets {
		t.Errorf("a cold cache sends %v GETs, no fewer than the %v without it", coldOpen.Gets+coldQueries.Gets, plainOpen.Gets+plainQueries.Gets)
	}
	if memQueries.Gets != 0 || cold.hits("memory") == 0 {
		t.Errorf("queries again in the same process sent %v GETs, with %v memory hits; want none and some", memQueries.Gets, cold.hits("memory"))
	}

	// Restarted over the cache on disk: the blocks' files come from it;
	// only their meta.json, which says that they still exist, and each
	// tenant's bucket index (missing here: no compactor wrote one), from
	// S3.
	warm := openQuerier(t, srv, name, cacheDir)
	warmOpen, warmQueries := query("cache, restarted warm", warm, s3Reads{})
	st := warm.db.Stats()
	warm.db.Close()
	if warm.hits("disk") == 0 || warmOpen.Gets+warmQueries.Gets != float64(st.Blocks+st.Tenants) || warmOpen.Heads != 0 {
		t.Errorf("a warm disk cache: %v disk hits, %v GETs and %v HEADs for %d blocks of %d tenants; want some, one GET per block (its meta.json) and per tenant (its bucket index), and none",
			warm.hits("disk"), warmOpen.Gets+warmQueries.Gets, warmOpen.Heads, st.Blocks, st.Tenants)
	}

	// Restarted over a cache whose every file a crash or the disk
	// damaged (a byte flipped in half, the other half cut short): the
	// same answers, each file found damaged and fetched again.
	var files []string
	filepath.WalkDir(cacheDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	for i, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			raw[len(raw)/2] ^= 1
		} else {
			raw = raw[:len(raw)-1]
		}
		if err := os.WriteFile(f, raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	damaged := openQuerier(t, srv, name, cacheDir)
	damagedOpen, _ := query("cache damaged, restarted", damaged, s3Reads{})
	damaged.db.Close()
	if n := damaged.metric("hearth_bucket_cache_damaged_total"); n != float64(len(files)) || damaged.hits("disk") != 0 || damagedOpen.Gets != coldOpen.Gets {
		t.Errorf("a damaged cache of %d files: %v found damaged, %v disk hits, %v GETs at open; want %d, none and %v as cold",
			len(files), n, damaged.hits("disk"), damagedOpen.Gets, len(files), coldOpen.Gets)
	}

	// Restarted with the cache removed: the same answers, from S3.
	if err := os.RemoveAll(cacheDir); err != nil {
		t.Fatal(err)
	}
	again := openQuerier(t, srv, name, cacheDir)
	againOpen, _ := query("cache removed, restarted", again, s3Reads{})
	if againOpen.Gets == 0 || again.hits("disk") != 0 {
		t.Errorf("with the cache removed: %v GETs at open, %v disk hits; want some and none", againOpen.Gets, again.hits("disk"))
	}
}

// BenchmarkS3QuerierReads measures the requests that a querier sends to
// S3 (versitygw) to open two hours of blocks of three tenants, real CPU
// profiles among them, and to answer one service's flame graph over them:
// without a cache, with a cold one and with a warm one after a restart.
// It reports requests and bytes, not time; run it with -benchtime=1x.
func BenchmarkS3QuerierReads(b *testing.B) {
	srv := s3test.Start(b)
	name := srv.NewBucket(b)
	ctx := context.Background()
	wb, err := bucket.Open(&bucket.Config{Type: bucket.TypeS3, Config: srv.Config(name)}, bucket.Options{SpoolDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer wb.Close()
	opts := testOptions()
	opts.Bucket = wb
	w := openDB(b, b.TempDir(), opts)
	real := corpus(b)
	for h := range 2 {
		loadTestData(b, w, h*360, (h+1)*360, real)
		// More services of real profiles in one tenant, for blocks of
		// several chunks.
		for i := h * 360; i < (h+1)*360; i++ {
			for svc := range 8 {
				appendPayload(b, w, "anonymous", testPayload{
					Labels: map[string]string{"service_name": fmt.Sprintf("real-%d", svc)},
					Types:  []string{"", cpuType}, Time: t0 + int64(i)*10*sec, Profile: real[(i+svc)%len(real)],
				})
			}
		}
		if err := w.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
	var blockBytes int64
	for _, tn := range testTenants {
		for _, bl := range w.lookupTenant(tn).blocks {
			blockBytes += bl.meta.Stats.Bytes
		}
	}
	w.Close()
	p := SelectParams{Start: t0 - sec, End: t0 + 720*10*sec,
		Matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "service_name", "real")}}
	cacheDir := filepath.Join(b.TempDir(), "cache")
	for _, mode := range []struct{ name, cache string }{{"no-cache", ""}, {"cold", cacheDir}, {"warm", cacheDir}} {
		b.Run(mode.name, func(b *testing.B) {
			for range b.N {
				if mode.name == "cold" {
					os.RemoveAll(cacheDir)
				}
				q := openQuerier(b, srv, name, mode.cache)
				open := gatherS3Reads(b, q.reg)
				svs, err := q.db.SelectStacks(ctx, "anonymous", p)
				if err != nil || len(svs) == 0 {
					b.Fatalf("SelectStacks: %d types, %v", len(svs), err)
				}
				query := gatherS3Reads(b, q.reg).sub(open)
				q.db.Close()
				b.ReportMetric(open.Gets, "open-GETs")
				b.ReportMetric(open.Bytes, "open-bytes")
				b.ReportMetric(open.Heads, "open-HEADs")
				b.ReportMetric(query.Gets, "query-GETs")
				b.ReportMetric(query.Bytes, "query-bytes")
				b.ReportMetric(float64(blockBytes), "block-bytes")
			}
		})
	}
}
