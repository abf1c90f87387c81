package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hearth-profiler/hearth/internal/storage/bucket"
)

var errInjected = errors.New("injected fault")

// faultyBucket wraps a bucket and makes chosen operations fail.
type faultyBucket struct {
	bucket.Bucket

	mu      sync.Mutex
	uploads int // Upload calls so far
	deletes int // Delete calls so far
	// failUpload is the number of the Upload call that fails, counting
	// from 1; 0 fails none.
	failUpload int
	// stored makes the failing Upload store the object before it fails,
	// as an object store can when the answer is lost.
	stored bool
	// failDelete is the number of the Delete call that fails, and every
	// one after it while failDeletes is set; 0 fails none.
	failDelete int
}

func (b *faultyBucket) Upload(ctx context.Context, name string, r io.Reader) error {
	b.mu.Lock()
	b.uploads++
	fail := b.uploads == b.failUpload
	b.mu.Unlock()
	if !fail {
		return b.Bucket.Upload(ctx, name, r)
	}
	if b.stored {
		if err := b.Bucket.Upload(ctx, name, r); err != nil {
			return err
		}
		return fmt.Errorf("upload %s: %w", name, errInjected)
	}
	// Read a little, as a real upload would before its connection drops.
	io.CopyN(io.Discard, r, 100)
	return fmt.Errorf("upload %s: %w", name, errInjected)
}

func (b *faultyBucket) Delete(ctx context.Context, name string) error {
	b.mu.Lock()
	b.deletes++
	fail := b.failDelete > 0 && b.deletes >= b.failDelete
	b.mu.Unlock()
	if fail {
		return fmt.Errorf("delete %s: %w", name, errInjected)
	}
	return b.Bucket.Delete(ctx, name)
}

// set resets the counters and sets the faults.
func (b *faultyBucket) set(failUpload int, stored bool, failDelete int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.uploads, b.deletes = 0, 0
	b.failUpload, b.stored, b.failDelete = failUpload, stored, failDelete
}

// openFaulty opens the store in dir over a faultyBucket at dir/tenants.
func openFaulty(t *testing.T, dir string, opts Options) (*DB, *faultyBucket) {
	t.Helper()
	d, err := bucket.NewDir(filepath.Join(dir, "tenants"))
	if err != nil {
		t.Fatal(err)
	}
	fb := &faultyBucket{Bucket: d}
	opts.Bucket = fb
	return openDB(t, dir, opts), fb
}

// blockFiles lists the files under a tenant's blocks directory on disk,
// relative to it.
func blockFiles(t *testing.T, dir, tenant string) []string {
	t.Helper()
	root := filepath.Join(dir, "tenants", tenantDirName(tenant), "blocks")
	var out []string
	err := filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !e.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// blockIDs lists the IDs of a tenant's open blocks.
func blockIDs(db *DB, tenant string) []string {
	tn := db.lookupTenant(tenant)
	tn.blocksMu.RLock()
	defer tn.blocksMu.RUnlock()
	var ids []string
	for _, b := range tn.blocks {
		ids = append(ids, b.meta.ID)
	}
	return ids
}

// blockFilesOf lists the files that the open blocks of tenant should have,
// as blockFiles does.
func blockFilesOf(db *DB, tenant string) []string {
	var out []string
	t := db.lookupTenant(tenant)
	for _, id := range blockIDs(db, tenant) {
		for _, f := range []string{indexFile, metaFile, samplesFile, symbolsFile} {
			out = append(out, id+"/"+f)
		}
		for _, b := range t.blocks {
			if b.meta.ID == id && b.meta.Events != nil {
				out = append(out, id+"/"+eventsFile)
			}
			if b.meta.ID == id && b.meta.Stats.Spans > 0 {
				out = append(out, id+"/"+spansFile)
			}
		}
	}
	slices.Sort(out)
	return out
}

// checkBlockFiles checks that the disk holds exactly the open blocks' files
// of every test tenant, and nothing else under blocks/.
func checkBlockFiles(t *testing.T, db *DB, dir string) {
	t.Helper()
	for _, tenant := range testTenants {
		if db.lookupTenant(tenant) == nil {
			continue
		}
		if d := cmp.Diff(blockFilesOf(db, tenant), blockFiles(t, dir, tenant)); d != "" {
			t.Errorf("tenant %s: files under blocks/ (-open blocks +disk):\n%s", tenant, d)
		}
	}
}

// TestCutBucketFaults makes each upload of a cut fail in turn, alone or
// with the clean-up's deletions: the cut fails, the profiles stay in the
// head and answer as before, no block is left half-written, and the next
// cut writes the block once.
func TestCutBucketFaults(t *testing.T) {
	ref := openDB(t, t.TempDir(), testOptions())
	defer ref.Close()
	loadTestData(t, ref, 0, 6, nil)
	qs := testQueries(0, 6)
	want := collectAll(t, ref, qs)

	type fault struct {
		upload     int // 1 samples, 2 symbols, 3 index, 4 meta.json
		stored     bool
		failDelete bool
	}
	var faults []fault
	for up := 1; up <= 4; up++ {
		faults = append(faults, fault{upload: up}, fault{upload: up, failDelete: true})
	}
	faults = append(faults, fault{upload: 4, stored: true}, fault{upload: 4, stored: true, failDelete: true})
	for _, f := range faults {
		t.Run(fmt.Sprintf("upload=%d,stored=%v,failDelete=%v", f.upload, f.stored, f.failDelete), func(t *testing.T) {
			for _, restart := range []bool{false, true} {
				dir := t.TempDir()
				db, fb := openFaulty(t, dir, testOptions())
				loadTestData(t, db, 0, 6, nil)
				failDelete := 0
				if f.failDelete {
					failDelete = 1
				}
				fb.set(f.upload, f.stored, failDelete)
				if err := db.Flush(context.Background()); !errors.Is(err, errInjected) {
					t.Fatalf("Flush with a failing upload: %v", err)
				}
				// The first tenant's cut failed; the others went through.
				tn := db.lookupTenant(testTenants[0])
				if len(tn.blocks) != 0 || len(tn.frozen) != 1 {
					t.Fatalf("after the failed cut: %d blocks, %d frozen heads; want 0, 1", len(tn.blocks), len(tn.frozen))
				}
				if d := cmp.Diff(want, collectAll(t, db, qs)); d != "" {
					t.Fatalf("answers after the failed cut (-one head +store):\n%s", d)
				}
				if !f.failDelete {
					checkBlockFiles(t, db, dir)
				}
				fb.set(0, false, 0)
				if restart {
					// A crash now: the log still holds the head, and a block
					// that could not be taken back is either not a block
					// (no meta.json) or holds exactly those profiles.
					db.Close()
					db, _ = openFaulty(t, dir, testOptions())
				} else if err := db.Flush(context.Background()); err != nil {
					t.Fatalf("Flush after the fault: %v", err)
				}
				if d := cmp.Diff(want, collectAll(t, db, qs)); d != "" {
					t.Fatalf("answers after the retry, restart=%v (-one head +store):\n%s", restart, d)
				}
				if err := db.Flush(context.Background()); err != nil {
					t.Fatalf("Flush: %v", err)
				}
				checkBlockFiles(t, db, dir)
				db.Close()
				db, _ = openFaulty(t, dir, testOptions())
				if d := cmp.Diff(want, collectAll(t, db, qs)); d != "" {
					t.Fatalf("answers after reopening, restart=%v (-one head +store):\n%s", restart, d)
				}
				for _, tenant := range testTenants {
					if n := len(db.lookupTenant(tenant).blocks); n != 1 {
						t.Errorf("tenant %s: %d blocks, want 1", tenant, n)
					}
				}
				checkBlockFiles(t, db, dir)
				db.Close()
			}
		})
	}
}

// TestCompactBucketFaults makes each upload of a compaction fail in turn,
// then the deletion of its sources: the sources stay readable until the
// new block exists, nothing half-written stays, and a later Compact
// finishes the work.
func TestCompactBucketFaults(t *testing.T) {
	opts := testOptions()
	opts.CompactionRanges = []time.Duration{2 * time.Hour}
	qs := testQueries(0, 3*360)
	// hourlyBlocks writes 3 blocks of 2 profiles; the first two get
	// merged.
	setup := func(t *testing.T) (*DB, *faultyBucket, string, map[string]map[string]answers, []string) {
		dir := t.TempDir()
		db, fb := openFaulty(t, dir, opts)
		hourlyBlocks(t, db, 3, 180)
		return db, fb, dir, collectAll(t, db, qs), blockIDs(db, "anonymous")
	}
	for up := 1; up <= 5; up++ {
		stored := up == 5
		upload := min(up, 4)
		t.Run(fmt.Sprintf("upload=%d,stored=%v", upload, stored), func(t *testing.T) {
			db, fb, dir, want, before := setup(t)
			defer db.Close()
			fb.set(upload, stored, 0)
			if err := db.Compact(context.Background()); !errors.Is(err, errInjected) {
				t.Fatalf("Compact with a failing upload: %v", err)
			}
			if d := cmp.Diff(before, blockIDs(db, "anonymous")); d != "" {
				t.Fatalf("blocks after a failed compaction (-before +after):\n%s", d)
			}
			if d := cmp.Diff(want, collectAll(t, db, qs)); d != "" {
				t.Fatalf("answers after a failed compaction (-before +after):\n%s", d)
			}
			checkBlockFiles(t, db, dir)
			fb.set(0, false, 0)
			if err := db.Compact(context.Background()); err != nil {
				t.Fatalf("Compact after the fault: %v", err)
			}
			if n := len(blockIDs(db, "anonymous")); n != 2 {
				t.Fatalf("%d blocks after compaction, want 2", n)
			}
			if d := cmp.Diff(want, collectAll(t, db, qs)); d != "" {
				t.Fatalf("answers after compaction (-before +after):\n%s", d)
			}
			checkBlockFiles(t, db, dir)
		})
	}
	// The first failing Delete is a source's meta.json (nothing deleted),
	// the second another object (the source is no block any more, but
	// some of its objects stay), the fifth the second source's meta.json.
	for _, del := range []int{1, 2, 5} {
		t.Run(fmt.Sprintf("delete=%d", del), func(t *testing.T) {
			for _, restart := range []bool{false, true} {
				db, fb, dir, want, _ := setup(t)
				fb.set(0, false, del)
				if err := db.Compact(context.Background()); !errors.Is(err, errInjected) {
					t.Fatalf("Compact with a failing delete: %v", err)
				}
				if n := len(blockIDs(db, "anonymous")); n != 2 {
					t.Fatalf("%d blocks after compaction, want 2", n)
				}
				if d := cmp.Diff(want, collectAll(t, db, qs)); d != "" {
					t.Fatalf("answers after compaction (-before +after):\n%s", d)
				}
				fb.set(0, false, 0)
				if restart {
					db.Close()
					db, _ = openFaulty(t, dir, opts)
				} else if err := db.Compact(context.Background()); err != nil {
					t.Fatalf("Compact retrying the deletions: %v", err)
				}
				if d := cmp.Diff(want, collectAll(t, db, qs)); d != "" {
					t.Fatalf("answers after the retry, restart=%v (-before +after):\n%s", restart, d)
				}
				checkBlockFiles(t, db, dir)
				db.Close()
			}
		})
	}
}

// TestRetentionBucketFaults checks that an expired block whose deletion
// fails leaves the query path at once and the bucket at the next Compact.
func TestRetentionBucketFaults(t *testing.T) {
	dir := t.TempDir()
	now := timeAt(t0 + int64(5*time.Hour))
	opts := testOptions()
	opts.Retention = 3 * time.Hour
	opts.CompactionRanges = []time.Duration{}
	opts.Now = func() time.Time { return now }
	db, fb := openFaulty(t, dir, opts)
	defer db.Close()
	hourlyBlocks(t, db, 4, 60)
	fb.set(0, false, 1)
	if err := db.Compact(context.Background()); !errors.Is(err, errInjected) {
		t.Fatalf("Compact with a failing delete: %v", err)
	}
	tn := db.lookupTenant("team.a")
	if len(tn.blocks) != 2 {
		t.Fatalf("%d blocks after retention, want 2", len(tn.blocks))
	}
	if len(blockFiles(t, dir, "team.a")) == len(blockFilesOf(db, "team.a")) {
		t.Fatal("expired blocks deleted through a failing bucket")
	}
	fb.set(0, false, 0)
	if err := db.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkBlockFiles(t, db, dir)
}

// TestOpenRemovesPartialBlocks recreates what a crash leaves in the
// bucket: the objects of a block whose meta.json was not uploaded yet (or
// was deleted first), a temporary file of an interrupted upload, and a
// block directory holding nothing else. Open removes them and answers as
// before, with every other block.
func TestOpenRemovesPartialBlocks(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir, testOptions())
	loadTestData(t, db, 0, 12, nil)
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	loadTestData(t, db, 12, 20, nil)
	qs := testQueries(0, 20)
	want := collectAll(t, db, qs)
	db.Close()

	for _, tenant := range testTenants {
		bdir := filepath.Join(dir, "tenants", tenantDirName(tenant), "blocks")
		ents, err := os.ReadDir(bdir)
		if err != nil || len(ents) != 1 {
			t.Fatalf("tenant %s: %d blocks, %v", tenant, len(ents), err)
		}
		// A copy of the block under a later ID, without its meta.json and
		// with half an upload beside it.
		partial := filepath.Join(bdir, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ")
		copyDir(t, filepath.Join(bdir, ents[0].Name()), partial)
		if err := os.Remove(filepath.Join(partial, metaFile)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(partial, ".upload-123"), []byte("{\"id\":"), 0o600); err != nil {
			t.Fatal(err)
		}
		// An upload that crashed in its first object.
		first := filepath.Join(bdir, "7ZZZZZZZZZZZZZZZZZZZZZZZZY")
		if err := os.MkdirAll(first, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(first, ".upload-456"), []byte("PAR1"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	db = openDB(t, dir, testOptions())
	defer db.Close()
	if d := cmp.Diff(want, collectAll(t, db, qs)); d != "" {
		t.Fatalf("answers after the crash (-before +after):\n%s", d)
	}
	for _, tenant := range testTenants {
		if n := len(db.lookupTenant(tenant).blocks); n != 1 {
			t.Errorf("tenant %s: %d blocks, want 1", tenant, n)
		}
		ents, _ := os.ReadDir(filepath.Join(dir, "tenants", tenantDirName(tenant), "blocks"))
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		if len(names) != 1 || strings.HasPrefix(names[0], "7ZZ") {
			t.Errorf("tenant %s: blocks dir holds %v, want the one block", tenant, names)
		}
	}
	checkBlockFiles(t, db, dir)
	// The log and the checkpoints were left alone: the head is still
	// there, and cuts go on.
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, collectAll(t, db, qs)); d != "" {
		t.Fatalf("answers after a cut (-before +after):\n%s", d)
	}
}

// unavailableBucket fails the reads of the objects whose names end in
// suffix, as an object store out of reach does.
type unavailableBucket struct {
	bucket.Bucket
	suffix string
}

func (b *unavailableBucket) fail(name string) error {
	if strings.HasSuffix(name, b.suffix) {
		return &bucket.UnavailableError{Bucket: "test", Op: "get", Name: name, Err: errInjected}
	}
	return nil
}

func (b *unavailableBucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := b.fail(name); err != nil {
		return nil, err
	}
	return b.Bucket.Get(ctx, name)
}

func (b *unavailableBucket) ReaderAt(ctx context.Context, name string) (bucket.ReaderAt, error) {
	if err := b.fail(name); err != nil {
		return nil, err
	}
	return b.Bucket.ReaderAt(ctx, name)
}

// TestOpenBucketUnavailable: a bucket that fails to serve a block's
// object at Open fails the Open, naming it, rather than quarantining a
// block that is whole; once it serves again, the store opens with every
// block.
func TestOpenBucketUnavailable(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.CompactionRanges = []time.Duration{}
	db := openDB(t, dir, opts)
	hourlyBlocks(t, db, 2, 120)
	qs := testQueries(0, 720)
	want := collectAll(t, db, qs)
	db.Close()
	for _, suffix := range []string{metaFile, symbolsFile, indexFile, samplesFile} {
		d, err := bucket.NewDir(filepath.Join(dir, "tenants"))
		if err != nil {
			t.Fatal(err)
		}
		o := opts
		o.Bucket = &unavailableBucket{Bucket: d, suffix: suffix}
		if _, err := Open(dir, nil, o); !bucket.IsUnavailable(err) || !errors.Is(err, errInjected) {
			t.Errorf("Open with %s unavailable: %v; want the bucket's error", suffix, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "tenants", "anonymous", "quarantine")); !os.IsNotExist(err) {
		t.Errorf("a block was quarantined: %v", err)
	}
	db = openDB(t, dir, opts)
	defer db.Close()
	if d := cmp.Diff(want, collectAll(t, db, qs)); d != "" {
		t.Errorf("answers after the bucket came back (-before +after):\n%s", d)
	}
}
