package storage

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hearth-profiler/hearth/internal/storage/bucket"
)

// TestRestartAfterCut checks that a restart after a cut and more writes
// answers as before it, cumulative series included: their deltas after the
// cut depend on the state the checkpoint carried over.
func TestRestartAfterCut(t *testing.T) {
	dir := t.TempDir()
	ref := openDB(t, t.TempDir(), testOptions())
	defer ref.Close()
	loadTestData(t, ref, 0, 30, nil)
	qs := testQueries(0, 30)
	want := collectAll(t, ref, qs)

	db := openDB(t, dir, testOptions())
	loadTestData(t, db, 0, 12, nil)
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	loadTestData(t, db, 12, 20, nil)
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	loadTestData(t, db, 20, 30, nil) // in the log only
	if d := cmp.Diff(want, collectAll(t, db, qs)); d != "" {
		t.Fatalf("before restart (-one head +cut):\n%s", d)
	}
	db.Close()

	db = openDB(t, dir, testOptions())
	if d := cmp.Diff(want, collectAll(t, db, qs)); d != "" {
		t.Fatalf("after restart (-one head +restarted):\n%s", d)
	}
	// And once more, after cutting the replayed head.
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = openDB(t, dir, testOptions())
	defer db.Close()
	if d := cmp.Diff(want, collectAll(t, db, qs)); d != "" {
		t.Fatalf("after flush and second restart (-one head +restarted):\n%s", d)
	}
}

// TestCrashBetweenBlockAndCheckpoint puts the store back in the state of a
// crash after a block was renamed into place but before the checkpoint was
// written and the log truncated: replay must not store the block's records
// twice, and must still rebuild the delta state from them.
func TestCrashBetweenBlockAndCheckpoint(t *testing.T) {
	dir := t.TempDir()
	ref := openDB(t, t.TempDir(), testOptions())
	defer ref.Close()
	loadTestData(t, ref, 0, 20, nil)
	qs := testQueries(0, 20)
	want := collectAll(t, ref, qs)

	db := openDB(t, dir, testOptions())
	loadTestData(t, db, 0, 4, nil)
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	loadTestData(t, db, 4, 12, nil)
	// Save the log and checkpoints as they are before the second cut.
	saved := t.TempDir()
	copyDir(t, filepath.Join(dir, "wal"), filepath.Join(saved, "wal"))
	for _, tenant := range testTenants {
		tdir := filepath.Join(dir, "tenants", tenantDirName(tenant))
		copyFile(t, filepath.Join(tdir, checkpointFile), filepath.Join(saved, tenantDirName(tenant)))
	}
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	loadTestData(t, db, 12, 20, nil)
	db.Close()
	// The crash: old checkpoints, and the log segments before the cut are
	// back beside the newer ones.
	for _, tenant := range testTenants {
		tdir := filepath.Join(dir, "tenants", tenantDirName(tenant))
		copyFile(t, filepath.Join(saved, tenantDirName(tenant)), filepath.Join(tdir, checkpointFile))
	}
	ents, _ := os.ReadDir(filepath.Join(saved, "wal"))
	for _, e := range ents {
		dst := filepath.Join(dir, "wal", e.Name())
		if _, err := os.Stat(dst); err != nil {
			copyFile(t, filepath.Join(saved, "wal", e.Name()), dst)
		}
	}
	db = openDB(t, dir, testOptions())
	defer db.Close()
	if d := cmp.Diff(want, collectAll(t, db, qs)); d != "" {
		t.Fatalf("after the crash (-one head +recovered):\n%s", d)
	}
}

// TestIdleTenantReleasesLog checks that a tenant that stops writing does
// not keep the log from being truncated, and that its head is cut by wall
// time.
func TestIdleTenantReleasesLog(t *testing.T) {
	now := timeAt(t0)
	opts := testOptions()
	opts.Now = func() time.Time { return now }
	dir := t.TempDir()
	db := openDB(t, dir, opts)
	defer db.Close()
	ctx := context.Background()
	appendPayload(t, db, "idle", testPayload{Labels: map[string]string{"service_name": "a"}, Types: []string{"", cpuType}, Time: t0, Profile: encodeProfile(t, synthProfile(1, false))})
	for i := range 5 {
		appendPayload(t, db, "busy", testPayload{Labels: map[string]string{"service_name": "b"}, Types: []string{"", cpuType}, Time: t0 + int64(i)*sec, Profile: encodeProfile(t, synthProfile(i, false))})
		if err := db.cutHeads(ctx, false); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(db.lookupTenant("idle").blocks); n != 0 {
		t.Fatalf("idle tenant cut before BlockDuration: %d blocks", n)
	}
	now = now.Add(2 * time.Hour)
	for i := range 3 {
		appendPayload(t, db, "busy", testPayload{Labels: map[string]string{"service_name": "b"}, Types: []string{"", cpuType}, Time: t0 + int64(i)*sec, Profile: encodeProfile(t, synthProfile(i, false))})
		if err := db.cutHeads(ctx, true); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(db.lookupTenant("idle").blocks); n != 1 {
		t.Fatalf("idle tenant after BlockDuration of wall time: %d blocks, want 1", n)
	}
	segs, _ := db.wal.Segments()
	if len(segs) > 2 {
		t.Errorf("wal segments %v: an idle tenant holds the log back", segs)
	}
}

// TestFreshLocalDirBesideBlocks opens a store on an empty local directory
// beside a bucket that already holds blocks, as a server on a new disk
// with its blocks in an object store does, then "crashes" it with writes
// in the log only: the restart must replay them, although the blocks name
// log segments of the earlier log that the new log's numbers could reach.
func TestFreshLocalDirBesideBlocks(t *testing.T) {
	bdir := t.TempDir()
	open := func(dir string) *DB {
		t.Helper()
		b, err := bucket.NewDir(bdir)
		if err != nil {
			t.Fatal(err)
		}
		opts := testOptions()
		opts.Bucket = b
		return openDB(t, dir, opts)
	}
	ctx := context.Background()
	db := open(t.TempDir())
	loadTestData(t, db, 0, 12, nil)
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	loadTestData(t, db, 12, 20, nil)
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()

	dir := t.TempDir()
	db = open(dir)
	loadTestData(t, db, 20, 30, nil)
	qs := testQueries(0, 30)
	want := collectAll(t, db, qs)
	db.Close() // the new profiles are in the log only

	db = open(dir)
	defer db.Close()
	if d := cmp.Diff(want, collectAll(t, db, qs)); d != "" {
		t.Fatalf("after restart (-before +after):\n%s", d)
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			copyDir(t, filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()))
			continue
		}
		copyFile(t, filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()))
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTenants lists the tenants with data, from heads and, after a
// restart, from the blocks on disk.
func TestTenants(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir, testOptions())
	if got := db.Tenants(); len(got) != 0 {
		t.Errorf("Tenants of an empty store = %q", got)
	}
	loadTestData(t, db, 0, 4, nil)
	want := slices.Sorted(slices.Values(testTenants))
	if got := db.Tenants(); !slices.Equal(got, want) {
		t.Errorf("Tenants = %q; want %q", got, want)
	}
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = openDB(t, dir, testOptions())
	defer db.Close()
	if got := db.Tenants(); !slices.Equal(got, want) {
		t.Errorf("Tenants after a restart = %q; want %q", got, want)
	}
}
