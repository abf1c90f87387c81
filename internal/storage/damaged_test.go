package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestQuerySkipsDamagedBlock damages the samples of one block of a
// running store (pages in the middle of the file), and
// checks that a query collecting skipped blocks answers with the other
// block and names the damaged one, and that one that does not fails with
// a DamagedError.
func TestQuerySkipsDamagedBlock(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.CompactionRanges = []time.Duration{}
	db := openDB(t, dir, opts)
	hourlyBlocks(t, db, 2, 60)
	all := SelectParams{Start: t0 - sec, End: t0 + 720*10*sec}
	second := SelectParams{Start: t0 + 360*10*sec, End: t0 + 720*10*sec}
	want, err := db.SelectStacks(context.Background(), "anonymous", second)
	if err != nil {
		t.Fatal(err)
	}
	blocks := blockDirs(t, dir, "anonymous")
	if len(blocks) != 2 {
		t.Fatalf("%d blocks, want 2", len(blocks))
	}
	// Start-up checks every file against its checksum, so damage is
	// found at read time only when it comes after: the disk rotting under
	// a running server. The file is changed in place.
	samples := filepath.Join(blocks[0], samplesFile)
	fi, err := os.Stat(samples)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(samples, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 64), fi.Size()/3); err != nil {
		t.Fatal(err)
	}
	f.Close()

	_, err = db.SelectStacks(context.Background(), "anonymous", all)
	var de *DamagedError
	if !errors.As(err, &de) || de.Block != filepath.Base(blocks[0]) {
		t.Fatalf("select without a Skipped: err %v; want a DamagedError naming %s", err, filepath.Base(blocks[0]))
	}

	ctx, skipped := WithSkipped(context.Background())
	got, err := db.SelectStacks(ctx, "anonymous", all)
	if err != nil {
		t.Fatalf("select with a Skipped: %v", err)
	}
	if d := cmp.Diff(mergedStacks(want), mergedStacks(got)); d != "" {
		t.Errorf("answer without the damaged block (-second hour +got):\n%s", d)
	}
	list := skipped.List()
	if len(list) != 1 || !strings.Contains(list[0], filepath.Base(blocks[0])) {
		t.Errorf("skipped %q; want one line naming %s", list, filepath.Base(blocks[0]))
	}
	ctx, skipped = WithSkipped(context.Background())
	if _, err := db.SelectSeries(ctx, "anonymous", SelectParams{Start: all.Start, End: all.End, Keep: keepFunc("main")}); err != nil {
		t.Fatalf("series with a Skipped: %v", err)
	}
	if len(skipped.List()) != 1 {
		t.Errorf("series skipped %q; want the damaged block", skipped.List())
	}
	if n := db.Stats().DamagedReads; n != 2 {
		t.Errorf("DamagedReads = %d; want 2", n)
	}
}
