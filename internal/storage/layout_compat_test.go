package storage

import (
	"context"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var writeStoreFixture = flag.Bool("write-store-fixture", false, "rewrite testdata/store-v1 with the current code")

// The fixture in testdata/store-v1 was written by the code before blocks
// went through a bucket (commit c95ade4): two blocks per tenant, one of them
// compacted, a checkpoint, and a log holding the head. Rewrite it only for a
// deliberate format change, and keep the old one as another fixture then.
const (
	fixtureDir   = "testdata/store-v1"
	fixtureTo    = 40 // profiles 0..39 loaded; 36..39 only in the log
	fixtureRange = 4 * time.Minute
)

func fixtureOptions() Options {
	o := testOptions()
	o.CompactionRanges = []time.Duration{fixtureRange}
	return o
}

func TestWriteStoreFixture(t *testing.T) {
	if !*writeStoreFixture {
		t.Skip("run with -write-store-fixture to rewrite " + fixtureDir)
	}
	if err := os.RemoveAll(fixtureDir); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, fixtureDir, fixtureOptions())
	for _, r := range [][2]int{{0, 12}, {12, 24}, {24, 36}} {
		loadTestData(t, db, r[0], r[1], nil)
		if err := db.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	loadTestData(t, db, 36, fixtureTo, nil)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestOpenStoreFixture opens a data directory written before blocks went
// through a bucket: every block must be found and answer as before.
func TestOpenStoreFixture(t *testing.T) {
	if *writeStoreFixture {
		t.Skip("rewriting the fixture")
	}
	ref := openDB(t, t.TempDir(), testOptions())
	defer ref.Close()
	loadTestData(t, ref, 0, fixtureTo, nil)
	qs := testQueries(0, fixtureTo)
	want := collectAll(t, ref, qs)

	dir := t.TempDir()
	copyDir(t, fixtureDir, dir)
	db := openDB(t, dir, fixtureOptions())
	defer db.Close()
	for _, tenant := range testTenants {
		tn := db.lookupTenant(tenant)
		if tn == nil || len(tn.blocks) != 2 || tn.blocks[0].meta.Compaction.Level != 2 {
			t.Fatalf("tenant %s: blocks not found in the fixture", tenant)
		}
	}
	if d := cmp.Diff(want, collectAll(t, db, qs)); d != "" {
		t.Fatalf("answers from the fixture (-one head +fixture):\n%s", d)
	}
	// The store keeps working on it: cut the head, reopen.
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = openDB(t, dir, fixtureOptions())
	defer db.Close()
	if d := cmp.Diff(want, collectAll(t, db, qs)); d != "" {
		t.Fatalf("answers after a cut and reopen (-one head +fixture):\n%s", d)
	}
	if n := len(db.lookupTenant("team.a").blocks); n != 3 {
		t.Errorf("team.a: %d blocks after the cut, want 3", n)
	}
}
