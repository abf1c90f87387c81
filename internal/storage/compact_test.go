package storage

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// hourly loads data in blocks of about an hour each (360 profiles 10 s
// apart) and flushes after each.
func hourlyBlocks(t *testing.T, db *DB, hours, every int) {
	t.Helper()
	for h := range hours {
		// Every `every`-th profile of the hour, to keep the test fast.
		for i := h * 360; i < (h+1)*360; i += every {
			loadTestData(t, db, i, i+1, nil)
		}
		if err := db.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.CompactionRanges = []time.Duration{2 * time.Hour, 4 * time.Hour}
	db := openDB(t, dir, opts)
	hourlyBlocks(t, db, 9, 30)
	qs := testQueries(0, 9*360)
	want := collectAll(t, db, qs)
	tn := db.lookupTenant("anonymous")
	if len(tn.blocks) != 9 {
		t.Fatalf("%d blocks before compaction, want 9", len(tn.blocks))
	}
	src := tn.blocks[0]
	if err := db.Compact(context.Background()); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	// Windows of 4h: [0,4) [4,8) are over and become one block each;
	// [8,9) holds one 1h block, and its window is still open.
	var levels []int
	for _, b := range tn.blocks {
		levels = append(levels, b.meta.Compaction.Level)
	}
	if d := cmp.Diff([]int{3, 3, 1}, levels); d != "" {
		t.Fatalf("block levels after compaction (-want +got):\n%s", d)
	}
	got := collectAll(t, db, qs)
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("answers after compaction differ (-before +after):\n%s", d)
	}
	// The same symbols every hour: the merged tables are no bigger than
	// one source's.
	c := tn.blocks[0]
	if len(c.syms.Strings) > len(src.syms.Strings) || c.syms.NumStacks() > src.syms.NumStacks()+2 ||
		len(c.syms.Locations) != len(src.syms.Locations) || len(c.syms.Functions) != len(src.syms.Functions) {
		t.Errorf("compacted symbols: %d strings, %d stacks, %d locations, %d functions; a source has %d, %d, %d, %d",
			len(c.syms.Strings), c.syms.NumStacks(), len(c.syms.Locations), len(c.syms.Functions),
			len(src.syms.Strings), src.syms.NumStacks(), len(src.syms.Locations), len(src.syms.Functions))
	}
	if len(c.meta.Compaction.Sources) != 6 {
		t.Errorf("compacted block sources %v, want the 4 hourly and 2 two-hour blocks", c.meta.Compaction.Sources)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "tenants", "anonymous", "blocks"))
	if len(ents) != 3 {
		t.Errorf("%d entries in the blocks dir, want 3", len(ents))
	}
	db.Close()
	db = openDB(t, dir, opts)
	defer db.Close()
	if d := cmp.Diff(want, collectAll(t, db, qs)); d != "" {
		t.Fatalf("answers after compaction and reopen differ (-before +after):\n%s", d)
	}
}

// TestCrashLeftovers recreates what a crash leaves: a block being written,
// a block being deleted, and the sources of a compacted block.
func TestCrashLeftovers(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.CompactionRanges = []time.Duration{2 * time.Hour}
	db := openDB(t, dir, opts)
	hourlyBlocks(t, db, 3, 60)
	qs := testQueries(0, 3*360)
	want := collectAll(t, db, qs)
	bdir := filepath.Join(dir, "tenants", "anonymous", "blocks")
	saved := t.TempDir()
	copyDir(t, bdir, saved)
	if err := db.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// Sources back in place, as if the crash came before their deletion.
	copyDir(t, saved, bdir)
	ents, _ := os.ReadDir(saved)
	copyDir(t, filepath.Join(saved, ents[0].Name()), filepath.Join(bdir, ents[0].Name()+tmpSuffix))
	if err := os.MkdirAll(filepath.Join(bdir, "01ARZ3NDEKTSV4RRFFQ69G5FAV.tmp", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, dir, opts)
	defer db.Close()
	if d := cmp.Diff(want, collectAll(t, db, qs)); d != "" {
		t.Fatalf("answers after recovery differ (-before +after):\n%s", d)
	}
	ents, _ = os.ReadDir(bdir)
	if len(ents) != 2 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("blocks dir after recovery: %v, want the compacted block and the open window's block", names)
	}
}

func TestRetention(t *testing.T) {
	dir := t.TempDir()
	now := timeAt(t0 + int64(5*time.Hour))
	opts := testOptions()
	opts.Retention = 3 * time.Hour
	opts.CompactionRanges = []time.Duration{}
	opts.Now = func() time.Time { return now }
	db := openDB(t, dir, opts)
	defer db.Close()
	hourlyBlocks(t, db, 4, 60)
	tn := db.lookupTenant("team.a")
	if err := db.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Blocks end at about 1h, 2h, 3h, 4h after t0; the cutoff is 2h.
	if len(tn.blocks) != 2 {
		t.Fatalf("%d blocks after retention, want 2", len(tn.blocks))
	}
	for _, b := range tn.blocks {
		if b.meta.MaxT < t0+int64(2*time.Hour) {
			t.Errorf("block %s ends at %v, before the cutoff", b.meta.ID, timeAt(b.meta.MaxT))
		}
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "tenants", "team.a", "blocks"))
	if len(ents) != 2 {
		t.Errorf("%d entries in the blocks dir, want 2", len(ents))
	}
	svs, err := db.SelectStacks(context.Background(), "team.a", SelectParams{Start: t0, End: t0 + int64(2*time.Hour)})
	if err != nil || len(svs) != 0 {
		t.Errorf("SelectStacks over deleted time: %d results, %v; want none", len(svs), err)
	}
}
