package storage

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hearth-profiler/hearth/internal/s3test"
	"github.com/hearth-profiler/hearth/internal/storage/bucket"
)

// The store with its blocks on a real S3 server on loopback (package
// s3test: versitygw, or the server HEARTH_TEST_S3_ENDPOINT names).

// openS3Bucket returns a new client of the bucket name on srv, closed when
// the test ends. extra adds keys to the provider's configuration.
func openS3Bucket(t *testing.T, srv *s3test.Server, name string, extra map[string]any) bucket.Bucket {
	t.Helper()
	cfg := srv.Config(name)
	for k, v := range extra {
		cfg[k] = v
	}
	b, err := bucket.Open(&bucket.Config{Type: bucket.TypeS3, Config: cfg}, bucket.Options{SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func openS3DB(t *testing.T, dir string, b bucket.Bucket) *DB {
	t.Helper()
	opts := testOptions()
	opts.Bucket = b
	return openDB(t, dir, opts)
}

// localBlockFiles lists the files under dir that belong to blocks.
func localBlockFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.Contains(filepath.ToSlash(p), "/blocks/") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestS3BlocksOutliveLocalDir writes profiles and events into a store
// whose blocks go to S3, then opens the bucket from other local
// directories: one that holds only what the first kept locally (the log
// and checkpoints), and, after a flush, an empty one. Each answers as the
// first did.
func TestS3BlocksOutliveLocalDir(t *testing.T) {
	srv := s3test.Start(t)
	name := srv.NewBucket(t)
	ctx := context.Background()
	tev := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC).UnixNano()
	evs := genEvents(7, 2000, tev)
	const evTenant = "team.a"

	ref := openDB(t, t.TempDir(), testOptions())
	loadTestData(t, ref, 0, 30, nil)
	qs := testQueries(0, 30)
	want := collectAll(t, ref, qs)
	ref.Close()
	wantEvents := slices.Clone(evs)
	sortEvents(wantEvents)

	check := func(what string, db *DB) {
		t.Helper()
		if d := cmp.Diff(want, collectAll(t, db, qs)); d != "" {
			t.Fatalf("%s: profiles (-want +got):\n%s", what, d)
		}
		if d := cmp.Diff(wantEvents, selectAll(t, db, evTenant, tev, tev+int64(time.Hour))); d != "" {
			t.Fatalf("%s: events (-want +got):\n%s", what, d)
		}
	}

	dirA := t.TempDir()
	db := openS3DB(t, dirA, openS3Bucket(t, srv, name, nil))
	loadTestData(t, db, 0, 12, nil)
	if err := db.AppendEvents(ctx, evTenant, slices.Clone(evs[:1000])); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	loadTestData(t, db, 12, 20, nil)
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	loadTestData(t, db, 20, 30, nil)
	if err := db.AppendEvents(ctx, evTenant, slices.Clone(evs[1000:])); err != nil {
		t.Fatal(err)
	}
	check("written", db)
	if n := db.Stats().Blocks; n != 2*len(testTenants) {
		t.Errorf("%d blocks, want %d", n, 2*len(testTenants))
	}
	db.Close() // profiles 20 to 30 and half the events are in the log only

	if files := localBlockFiles(t, dirA); len(files) != 0 {
		t.Errorf("block files on the local disk: %q", files)
	}
	b := openS3Bucket(t, srv, name, nil)
	var blocks []string
	if err := b.Iter(ctx, tenantDirName(evTenant)+"/blocks/", func(n string) error {
		blocks = append(blocks, n)
		return nil
	}); err != nil || len(blocks) != 2 {
		t.Errorf("blocks of %s in the bucket: %q, %v; want 2", evTenant, blocks, err)
	}

	// The local state alone, on another disk: the log replays beside the
	// blocks read from the bucket.
	dirB := t.TempDir()
	copyDir(t, dirA, dirB)
	db = openS3DB(t, dirB, b)
	check("local state copied, blocks from the bucket", db)
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()

	// Everything is in the bucket: an empty local directory will do.
	db = openS3DB(t, t.TempDir(), openS3Bucket(t, srv, name, nil))
	defer db.Close()
	check("empty local dir", db)
}

// TestS3DamagedBlockQuarantined damages an object of one block in the
// bucket: the store opens without that block, moves its objects to the
// tenant's quarantine in the bucket with a reason, and answers from the
// rest as before.
func TestS3DamagedBlockQuarantined(t *testing.T) {
	for _, c := range []struct {
		name, file, cause string
		damage            func([]byte) []byte
	}{
		{"samples cut short", samplesFile, "samples", func(b []byte) []byte { return b[:len(b)/2] }},
		{"index bytes flipped", indexFile, "index", func(b []byte) []byte {
			for i := len(b) / 2; i < len(b)/2+16 && i < len(b); i++ {
				b[i] ^= 0xff
			}
			return b
		}},
		{"meta not JSON", metaFile, "meta", func([]byte) []byte { return []byte("{") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := s3test.Start(t)
			name := srv.NewBucket(t)
			ctx := context.Background()
			opts := testOptions()
			opts.CompactionRanges = []time.Duration{}
			opts.Bucket = openS3Bucket(t, srv, name, nil)
			db := openDB(t, t.TempDir(), opts)
			hourlyBlocks(t, db, 2, 60)
			firstHour, secondHour := testQueries(0, 360), only(testQueries(360, 720), "first-half", "second-half")
			wantFirst, wantSecond := collectAll(t, db, firstHour), collectAll(t, db, secondHour)
			ids := blockIDs(db, "anonymous")
			db.Close()
			if len(ids) != 2 {
				t.Fatalf("%d blocks, want 2", len(ids))
			}

			b := openS3Bucket(t, srv, name, nil)
			obj := "anonymous/blocks/" + ids[0] + "/" + c.file
			raw, err := getObject(ctx, b, obj)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Upload(ctx, obj, strings.NewReader(string(c.damage(raw)))); err != nil {
				t.Fatal(err)
			}

			opts.Bucket = b
			db, err = Open(t.TempDir(), nil, opts)
			if err != nil {
				t.Fatalf("Open with one damaged block: %v", err)
			}
			defer db.Close()
			if n := db.Stats().Quarantined; n != 1 {
				t.Errorf("%d quarantined, want 1", n)
			}
			if got := blockIDs(db, "anonymous"); !slices.Equal(got, ids[1:]) {
				t.Errorf("blocks open: %v, want %v", got, ids[1:])
			}
			if ok, err := b.Exists(ctx, "anonymous/blocks/"+ids[0]+"/"+metaFile); ok || err != nil {
				t.Errorf("damaged block's meta.json still in blocks/: %v, %v", ok, err)
			}
			q := "anonymous/quarantine/" + ids[0] + "/"
			reason, err := getObject(ctx, b, q+reasonFile)
			if err != nil || !strings.Contains(string(reason), c.cause) {
				t.Errorf("reason in the quarantine: %q, %v; want it to name %q", reason, err, c.cause)
			}
			if ok, err := b.Exists(ctx, q+metaFile); !ok {
				t.Errorf("the quarantine lacks the block's %s: %v", metaFile, err)
			}
			if d := cmpDiff(wantSecond, collectAll(t, db, secondHour)); d != "" {
				t.Errorf("answers over the undamaged block changed (-before +after):\n%s", d)
			}
			got := collectAll(t, db, firstHour)
			for _, tenant := range testTenants[1:] {
				if d := cmpDiff(wantFirst[tenant], got[tenant]); d != "" {
					t.Errorf("tenant %s lost data to another tenant's damaged block:\n%s", tenant, d)
				}
			}
		})
	}
}

// TestS3Outage stops the S3 server under an open store: queries fail with
// the bucket named as the cause (never taking a block for damaged), a cut
// fails and keeps its profiles in the head, a store cannot open (and
// quarantines nothing); once the server is back, everything answers as
// before and the cut goes through.
func TestS3Outage(t *testing.T) {
	srv := s3test.Start(t)
	name := srv.NewBucket(t)
	ctx := context.Background()
	// Few retries: the S3 client's ten would make each failure take
	// seconds.
	fast := map[string]any{"max_retries": 1}
	dir := t.TempDir()
	opts := testOptions()
	opts.CompactionRanges = []time.Duration{}
	opts.Bucket = openS3Bucket(t, srv, name, fast)
	db := openDB(t, dir, opts)
	defer db.Close()
	hourlyBlocks(t, db, 1, 60)
	qs := testQueries(0, 360)
	want := collectAll(t, db, qs)
	loadTestData(t, db, 400, 405, nil)

	srv.Stop()
	qctx, skipped := WithSkipped(ctx)
	_, err := db.SelectStacks(qctx, "anonymous", SelectParams{Start: qs[0].start, End: qs[0].end})
	if !bucket.IsUnavailable(err) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("query with the S3 server down: %v; want the bucket unavailable, connection refused", err)
	}
	if s := skipped.List(); len(s) != 0 {
		t.Errorf("blocks left out as damaged: %q", s)
	}
	if st := db.Stats(); !st.CutFailingSince.IsZero() {
		t.Errorf("cuts failing since %s before any failed", st.CutFailingSince)
	}
	failedAt := time.Now()
	if err := db.Flush(ctx); !bucket.IsUnavailable(err) {
		t.Errorf("Flush with the S3 server down: %v; want the bucket unavailable", err)
	}
	// A second failure keeps the time of the first.
	if err := db.Flush(ctx); !bucket.IsUnavailable(err) {
		t.Errorf("second Flush with the S3 server down: %v; want the bucket unavailable", err)
	}
	if st := db.Stats(); st.CutFailingSince.Before(failedAt) || time.Since(st.CutFailingSince) > time.Minute ||
		st.CutFailingSince.After(failedAt.Add(30*time.Second)) || !strings.Contains(st.CutError, "connection refused") {
		t.Errorf("stats while the server is down: cuts failing since %s (first failure at %s): %q", st.CutFailingSince, failedAt, st.CutError)
	}
	if _, err := Open(t.TempDir(), nil, opts); !bucket.IsUnavailable(err) {
		t.Errorf("Open with the S3 server down: %v; want the bucket unavailable", err)
	}
	if s := db.Stats(); s.DamagedReads != 0 || s.Quarantined != 0 {
		t.Errorf("stats after the outage: %d damaged reads, %d quarantined; want none", s.DamagedReads, s.Quarantined)
	}

	srv.Restart()
	if d := cmp.Diff(want, collectAll(t, db, qs)); d != "" {
		t.Fatalf("after the server came back (-before +after):\n%s", d)
	}
	wantAll := collectAll(t, db, testQueries(0, 405))
	if err := db.Flush(ctx); err != nil {
		t.Fatalf("Flush after the server came back: %v", err)
	}
	if st := db.Stats(); !st.CutFailingSince.IsZero() || st.CutError != "" {
		t.Errorf("after a cut succeeded: failing since %s, %q; want no failure", st.CutFailingSince, st.CutError)
	}
	if d := cmp.Diff(wantAll, collectAll(t, db, testQueries(0, 405))); d != "" {
		t.Fatalf("after the retried cut (-before +after):\n%s", d)
	}
	db2, err := Open(t.TempDir(), nil, opts)
	if err != nil {
		t.Fatalf("Open after the server came back: %v", err)
	}
	defer db2.Close()
	if n := db2.Stats().Quarantined; n != 0 {
		t.Errorf("%d blocks quarantined", n)
	}
}
