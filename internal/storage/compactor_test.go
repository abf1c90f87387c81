package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hearth-profiler/hearth/internal/storage/bucket"
)

// A bucket shared by ingesters, queriers and a compactor, as the roles of
// `hearth server --target` use it.

func openIngester(t *testing.T, dir string, bkt bucket.Bucket) *DB {
	t.Helper()
	opts := testOptions()
	opts.SharedBucket = true
	opts.CompactionRanges = []time.Duration{}
	opts.Bucket = bkt
	return openDB(t, dir, opts)
}

func openQuerier(t *testing.T, bkt bucket.Bucket) *DB {
	t.Helper()
	opts := testOptions()
	opts.ReadOnly = true
	opts.Bucket = bkt
	db := openDB(t, t.TempDir(), opts)
	t.Cleanup(func() { db.Close() })
	return db
}

// compactorOptions are those of a compactor of 2h blocks that compacts
// blocks of any age and deletes marked ones at its next pass.
func compactorOptions(bkt bucket.Bucket, lease bucket.ConditionalUploader) Options {
	opts := testOptions()
	opts.ReadOnly = true
	opts.CompactionRanges = []time.Duration{2 * time.Hour}
	opts.Bucket = bkt
	opts.Compactor = &CompactorOptions{Lease: lease}
	return opts
}

// ingesterHours cuts hours hourly blocks in db, of every every-th profile
// from offset on.
func ingesterHours(t *testing.T, db *DB, hours, every, offset int) {
	t.Helper()
	for h := range hours {
		for i := h*360 + offset; i < (h+1)*360; i += every {
			loadTestData(t, db, i, i+1, nil)
		}
		if err := db.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// twoIngesters cuts three hourly blocks in each of two ingesters on bkt,
// their profiles interleaved, and closes them.
func twoIngesters(t *testing.T, bkt bucket.Bucket) {
	t.Helper()
	for k := range 2 {
		db := openIngester(t, t.TempDir(), bkt)
		ingesterHours(t, db, 3, 180, 90*k)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// bucketObjects lists every object under dir, recursively.
func bucketObjects(t *testing.T, bkt bucket.Bucket, dir string) []string {
	t.Helper()
	var out []string
	err := bkt.Iter(context.Background(), dir, func(name string) error {
		if strings.HasSuffix(name, "/") {
			out = append(out, bucketObjects(t, bkt, name)...)
			return nil
		}
		out = append(out, name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// seenByQueriers checks that q, synced, and a querier opened afresh on
// bkt answer want: no block counted twice, none missing.
func seenByQueriers(t *testing.T, what string, q *DB, bkt bucket.Bucket, qs []querySpec, want map[string]map[string]answers) {
	t.Helper()
	if err := q.Sync(context.Background()); err != nil {
		t.Fatalf("%s: querier's sync: %v", what, err)
	}
	if d := cmp.Diff(want, collectAll(t, q, qs)); d != "" {
		t.Fatalf("%s: querier's answers (-before compaction +now):\n%s", what, d)
	}
	fresh := openQuerier(t, bkt)
	if d := cmp.Diff(want, collectAll(t, fresh, qs)); d != "" {
		t.Fatalf("%s: a new querier's answers (-before compaction +now):\n%s", what, d)
	}
	fresh.Close()
}

// TestCompactorFaults kills a compactor at every step of its work on two
// ingesters' blocks: at each upload of the compacted block, at each
// deletion mark of its sources, and at each deletion of the marked
// sources. A fault stands for the kill: the compactor is closed, and a
// new one (another process, with nothing in memory) carries on. At every
// point a querier, synced or opened afresh, answers what it answered
// before compaction, and in the end the bucket holds the compacted block
// and the blocks it did not merge, and no mark.
func TestCompactorFaults(t *testing.T) {
	ctx := context.Background()
	qs := testQueries(0, 3*360)
	// setup makes the ingesters' blocks, and returns the bucket, a
	// querier and its answers.
	setup := func(t *testing.T) (*bucket.Dir, *DB, map[string]map[string]answers) {
		d, err := bucket.NewDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		twoIngesters(t, d)
		q := openQuerier(t, d)
		want := collectAll(t, q, qs)
		if len(want["anonymous"]["all"].Stacks) == 0 {
			t.Fatal("the ingesters' blocks hold nothing")
		}
		if n := len(blockIDs(q, "anonymous")); n != 6 {
			t.Fatalf("querier holds %d blocks, want 6", n)
		}
		return d, q, want
	}
	// finish runs passes of a new compactor until one succeeds, and
	// checks the outcome: per tenant one block of the first two hours,
	// and the two of the third.
	finish := func(t *testing.T, d *bucket.Dir, q *DB, want map[string]map[string]answers) {
		t.Helper()
		c := openDB(t, t.TempDir(), compactorOptions(d, d))
		defer c.Close()
		for range 2 { // compacts or marks, then deletes
			if err := c.Compact(ctx); err != nil {
				t.Fatalf("the next compactor's pass: %v", err)
			}
		}
		seenByQueriers(t, "after the next compactor", q, d, qs, want)
		for _, tn := range testTenants {
			ids := blockIDs(q, tn)
			slices.Sort(ids)
			if len(ids) != 3 {
				t.Fatalf("tenant %s: %d blocks after compaction, want 3", tn, len(ids))
			}
			var dirs []string
			for _, name := range bucketObjects(t, d, tenantDirName(tn)) {
				if strings.Contains(name, "/"+markersSubdir) {
					t.Errorf("tenant %s: mark %s left after deletion", tn, name)
					continue
				}
				dir := strings.TrimPrefix(name, tenantDirName(tn)+"/blocks/")
				dir, _, _ = strings.Cut(dir, "/")
				if !slices.Contains(dirs, dir) {
					dirs = append(dirs, dir)
				}
			}
			if !slices.Equal(dirs, ids) {
				t.Errorf("tenant %s: bucket holds blocks %v, querier %v", tn, dirs, ids)
			}
		}
	}

	// Faults at every step of the first tenant, and a few of the
	// others'; past the last step, the pass succeeds.
	steps := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 17, 25, 1000}
	// Uploads: those of the compacted block, then its sources' marks.
	for _, up := range steps {
		d, q, want := setup(t)
		fb := &faultyBucket{Bucket: d}
		c := openDB(t, t.TempDir(), compactorOptions(fb, d))
		fb.set(up, false, 0)
		err := c.Compact(ctx)
		c.Close()
		if err == nil {
			if up < 1000 {
				t.Fatalf("a pass with upload %d failing succeeded", up)
			}
			break
		}
		if !errors.Is(err, errInjected) {
			t.Fatalf("upload %d failing: %v", up, err)
		}
		seenByQueriers(t, fmt.Sprintf("upload %d failed", up), q, d, qs, want)
		finish(t, d, q, want)
	}
	// Deletions, once the sources are marked.
	for _, del := range steps {
		d, q, want := setup(t)
		fb := &faultyBucket{Bucket: d}
		c := openDB(t, t.TempDir(), compactorOptions(fb, d))
		if err := c.Compact(ctx); err != nil {
			t.Fatal(err)
		}
		seenByQueriers(t, "sources marked", q, d, qs, want)
		fb.set(0, false, del)
		err := c.Compact(ctx)
		c.Close()
		if err == nil {
			if del < 1000 {
				t.Fatalf("a pass with deletion %d failing succeeded", del)
			}
			break
		}
		if !errors.Is(err, errInjected) {
			t.Fatalf("deletion %d failing: %v", del, err)
		}
		seenByQueriers(t, fmt.Sprintf("deletion %d failed", del), q, d, qs, want)
		finish(t, d, q, want)
	}
}
