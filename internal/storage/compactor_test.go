package storage

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
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

func openSharedQuerier(t *testing.T, bkt bucket.Bucket) *DB {
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
	fresh := openSharedQuerier(t, bkt)
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
		q := openSharedQuerier(t, d)
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
				dir, ok := strings.CutPrefix(name, tenantDirName(tn)+"/blocks/")
				if !ok {
					continue // the bucket index
				}
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

// TestCompactorAgeAndDelay: a compactor leaves blocks younger than
// MinBlockAge alone, marks the sources of what it compacts, and deletes
// them only after DeletionDelay; a querier drops them at the mark.
func TestCompactorAgeAndDelay(t *testing.T) {
	ctx := context.Background()
	d, err := bucket.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	twoIngesters(t, d)
	q := openSharedQuerier(t, d)
	qs := testQueries(0, 3*360)
	want := collectAll(t, q, qs)
	before := blockIDs(q, "anonymous")

	now := time.Now()
	opts := compactorOptions(d, d)
	opts.Now = func() time.Time { return now }
	opts.Compactor.MinBlockAge = 10 * time.Minute
	opts.Compactor.DeletionDelay = 10 * time.Minute
	c := openDB(t, t.TempDir(), opts)
	defer c.Close()
	if err := c.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if got := blockIDs(c, "anonymous"); !slices.Equal(got, before) {
		t.Fatalf("blocks younger than the minimum age compacted: %v, were %v", got, before)
	}
	now = now.Add(11 * time.Minute)
	if err := c.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(blockIDs(c, "anonymous")); n != 3 {
		t.Fatalf("%d blocks after compaction, want 3", n)
	}
	if n := c.Stats().BlocksMarked; n != 4*int64(len(testTenants)) {
		t.Fatalf("%d blocks marked, want 4 per tenant", n)
	}
	seenByQueriers(t, "sources marked", q, d, qs, want)
	if n := len(blockIDs(q, "anonymous")); n != 3 {
		t.Fatalf("querier holds %d blocks after the marks, want 3", n)
	}
	// Within the delay, the sources stay in the bucket.
	now = now.Add(9 * time.Minute)
	if err := c.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range before {
		if ok, err := d.Exists(ctx, tenantDirName("anonymous")+"/blocks/"+id+"/"+metaFile); err != nil || !ok {
			t.Fatalf("source %s deleted within the deletion delay (%v)", id, err)
		}
	}
	now = now.Add(2 * time.Minute)
	if err := c.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if n := c.Stats().BlocksDeleted; n != 4*int64(len(testTenants)) {
		t.Fatalf("%d blocks deleted after the delay, want 4 per tenant", n)
	}
	if got := bucketObjects(t, d, tenantDirName("anonymous")+"/"+markersSubdir); len(got) != 0 {
		t.Fatalf("marks left: %v", got)
	}
	seenByQueriers(t, "sources deleted", q, d, qs, want)
}

// TestRetentionPerTenant: each tenant's blocks go by its own retention,
// in a store of its own bucket (deleted at once) and under a compactor
// (marked, then deleted).
func TestRetentionPerTenant(t *testing.T) {
	ctx := context.Background()
	now := timeAt(t0 + int64(5*time.Hour))
	// team.a keeps 3 hours, the others forever (Options.Retention,
	// which RetentionFor replaces, would expire them all).
	retention := func(tenant string) time.Duration {
		if tenant == "team.a" {
			return 3 * time.Hour
		}
		return 0
	}
	check := func(t *testing.T, db *DB, what string) {
		t.Helper()
		if n := len(blockIDs(db, "team.a")); n != 1 {
			t.Errorf("%s: team.a holds %d blocks, want the last hour's", what, n)
		}
		for _, tn := range []string{"anonymous", "ünïcode/x"} {
			if n := len(blockIDs(db, tn)); n != 3 {
				t.Errorf("%s: %s holds %d blocks, want 3", what, tn, n)
			}
		}
	}
	t.Run("all", func(t *testing.T) {
		dir := t.TempDir()
		opts := testOptions()
		opts.CompactionRanges = []time.Duration{}
		opts.Retention = time.Hour
		opts.RetentionFor = retention
		opts.Now = func() time.Time { return now }
		db := openDB(t, dir, opts)
		defer db.Close()
		hourlyBlocks(t, db, 3, 180)
		if err := db.Compact(ctx); err != nil {
			t.Fatal(err)
		}
		check(t, db, "after retention")
		if n := len(blockFiles(t, dir, "team.a")); n == 0 || n > 6 {
			t.Errorf("team.a's expired blocks still on disk: %d files", n)
		}
	})
	t.Run("compactor", func(t *testing.T) {
		d, err := bucket.NewDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		w := openIngester(t, t.TempDir(), d)
		ingesterHours(t, w, 3, 180, 0)
		w.Close()
		opts := compactorOptions(d, d)
		opts.CompactionRanges = []time.Duration{}
		opts.Retention = time.Hour
		opts.RetentionFor = retention
		opts.Now = func() time.Time { return now }
		c := openDB(t, t.TempDir(), opts)
		defer c.Close()
		if err := c.Compact(ctx); err != nil {
			t.Fatal(err)
		}
		check(t, c, "compactor, after retention")
		q := openSharedQuerier(t, d)
		check(t, q, "querier, after the marks")
		if n := c.Stats().BlocksMarked; n != 2 {
			t.Errorf("%d blocks marked, want team.a's 2", n)
		}
		if err := c.Compact(ctx); err != nil { // no delay: deletes them
			t.Fatal(err)
		}
		if n := c.Stats().BlocksDeleted; n != 2 {
			t.Errorf("%d blocks deleted, want team.a's 2", n)
		}
		if err := q.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		check(t, q, "querier, after the deletion")
	})
}

// TestCompactedReplay: an ingester killed after uploading a block and
// before its checkpoint replays, at its restart, the records of that
// block from its log, and goes by its blocks' WAL segments to keep them
// out of its head. Once a compactor has merged and deleted its blocks,
// the compacted block's per-instance segments (meta instances) say the
// same: the restarted ingester answers each profile once.
func TestCompactedReplay(t *testing.T) {
	ctx := context.Background()
	d, err := bucket.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a := openIngester(t, dir, d)
	loadTestData(t, a, 0, 3, nil)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	loadTestData(t, a, 180, 183, nil)
	a.Close()
	// The state on disk of a kill right after the next block's upload:
	// its records still in the log, the checkpoint not moved past them.
	crash := t.TempDir()
	if err := os.CopyFS(crash, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	a = openIngester(t, dir, d)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(dir, os.DirFS(crash)); err != nil {
		t.Fatal(err)
	}
	// Another ingester's later block ends the 2h window of a's two.
	b := openIngester(t, t.TempDir(), d)
	loadTestData(t, b, 3*360, 3*360+1, nil)
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	b.Close()

	c := openDB(t, t.TempDir(), compactorOptions(d, d))
	defer c.Close()
	for range 2 { // compacts and marks, then deletes
		if err := c.Compact(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Stats().BlocksDeleted; n != 2*int64(len(testTenants)) {
		t.Fatalf("%d blocks deleted, want a's two per tenant", n)
	}
	q := openSharedQuerier(t, d)
	qs := testQueries(0, 3*360+1)
	want := collectAll(t, q, qs)
	a = openIngester(t, dir, d)
	defer a.Close()
	if d := cmp.Diff(want, collectAll(t, a, qs)); d != "" {
		t.Fatalf("restarted ingester's answers (-bucket +ingester):\n%s", d)
	}
}

// TestCompactorPartialUploads: a block directory without meta.json (an
// upload cut short) is deleted by the compactor once older than
// PartialUploadAge; a younger one may be an upload in progress and stays.
func TestCompactorPartialUploads(t *testing.T) {
	ctx := context.Background()
	d, err := bucket.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w := openIngester(t, t.TempDir(), d)
	ingesterHours(t, w, 1, 180, 0)
	w.Close()
	now := time.Now()
	var ids idGenerator
	oldID, newID := ids.next(now.Add(-49*time.Hour)), ids.next(now.Add(-time.Hour))
	dir := tenantDirName("anonymous") + "/blocks/"
	for _, id := range []string{oldID, newID} {
		if err := d.Upload(ctx, dir+id+"/"+indexFile, strings.NewReader("part")); err != nil {
			t.Fatal(err)
		}
	}
	opts := compactorOptions(d, d)
	opts.Compactor.PartialUploadAge = 48 * time.Hour
	opts.Now = func() time.Time { return now }
	c := openDB(t, t.TempDir(), opts)
	defer c.Close()
	if err := c.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{oldID: false, newID: true} {
		ok, err := d.Exists(ctx, dir+id+"/"+indexFile)
		if err != nil || ok != want {
			t.Errorf("partial upload %s: exists %v (%v), want %v", id, ok, err, want)
		}
	}
	if n := len(blockIDs(c, "anonymous")); n != 1 {
		t.Errorf("compactor holds %d blocks, want the ingester's 1", n)
	}
}

// lingering is a bucket that keeps listing a directory after its last
// object was deleted, as SeaweedFS does for a while.
type lingering struct {
	bucket.Bucket
	mu   sync.Mutex
	gone map[string]bool // deleted directories, ending in "/"
}

func (l *lingering) Delete(ctx context.Context, name string) error {
	if strings.HasSuffix(name, "/") {
		l.mu.Lock()
		l.gone[name] = true
		l.mu.Unlock()
	}
	return l.Bucket.Delete(ctx, name)
}

func (l *lingering) Iter(ctx context.Context, dir string, f func(string) error) error {
	if dir != "" && !strings.HasSuffix(dir, "/") {
		dir += "/"
	}
	names := map[string]bool{}
	if err := l.Bucket.Iter(ctx, dir, func(n string) error { names[n] = true; return nil }); err != nil {
		return err
	}
	l.mu.Lock()
	for g := range l.gone {
		if rest, ok := strings.CutPrefix(g, dir); ok && strings.Count(rest, "/") == 1 {
			names[g] = true
		}
	}
	l.mu.Unlock()
	for _, n := range slices.Sorted(maps.Keys(names)) {
		if err := f(n); err != nil {
			return err
		}
	}
	return nil
}

// TestCompactorLingeringDirs: on a store that lists the directories of
// deleted blocks for a while, the compactor does not take a compaction's
// deleted sources for sources left unmarked: it marks and deletes each
// once, and queriers answer the same throughout.
func TestCompactorLingeringDirs(t *testing.T) {
	ctx := context.Background()
	d, err := bucket.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bkt := &lingering{Bucket: d, gone: map[string]bool{}}
	twoIngesters(t, bkt)
	q := openSharedQuerier(t, bkt)
	qs := testQueries(0, 3*360)
	want := collectAll(t, q, qs)
	opts := compactorOptions(bkt, d)
	opts.Compactor.MinBlockAge = 0
	opts.Compactor.DeletionDelay = 0
	c := openDB(t, t.TempDir(), opts)
	defer c.Close()
	for range 4 {
		if err := c.Compact(ctx); err != nil {
			t.Fatal(err)
		}
	}
	st := c.Stats()
	if want := 4 * int64(len(testTenants)); st.BlocksMarked != want || st.BlocksDeleted != want {
		t.Fatalf("%d blocks marked and %d deleted over four passes, want %d of each (4 per tenant)", st.BlocksMarked, st.BlocksDeleted, want)
	}
	if len(bkt.gone) == 0 {
		t.Fatal("no directory was deleted: the test tests nothing")
	}
	seenByQueriers(t, "sources deleted, their directories still listed", q, bkt, qs, want)
}
