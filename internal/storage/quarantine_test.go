package storage

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// blockDirs lists the directories of a tenant's blocks on disk, oldest
// first.
func blockDirs(t *testing.T, dir, tenant string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "tenants", tenantDirName(tenant), "blocks"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, filepath.Join(dir, "tenants", tenantDirName(tenant), "blocks", e.Name()))
	}
	return out
}

// checkQuarantined checks that the block directory src is gone and that
// the tenant's quarantine holds its files and a reason naming the cause.
func checkQuarantined(t *testing.T, dir, tenant, src, cause string) {
	t.Helper()
	if _, err := os.Stat(src); !os.IsNotExist(err) {
		t.Errorf("damaged block %s still in blocks/ (%v)", src, err)
	}
	q := filepath.Join(dir, "tenants", tenantDirName(tenant), "quarantine", filepath.Base(src))
	reason, err := os.ReadFile(filepath.Join(q, reasonFile))
	if err != nil {
		t.Fatalf("no reason file in the quarantine: %v", err)
	}
	if !strings.Contains(string(reason), cause) {
		t.Errorf("reason file says %q, want it to name %q", reason, cause)
	}
	if _, err := os.Stat(filepath.Join(q, metaFile)); err != nil {
		t.Errorf("the quarantine lacks the block's %s: %v", metaFile, err)
	}
}

// TestQuarantineDamagedBlock damages one file of one block in each way a
// disk or an operator can, and checks that the store still opens, moves
// that block aside, and answers everything else as before.
func TestQuarantineDamagedBlock(t *testing.T) {
	for _, c := range []struct {
		name, file, cause string
		damage            func(path string) error
	}{
		{"samples cut short", samplesFile, "samples", func(p string) error { return truncateHalf(p) }},
		{"samples empty", samplesFile, "samples", func(p string) error { return os.Truncate(p, 0) }},
		{"index bytes flipped", indexFile, "index", func(p string) error { return flipMiddle(p) }},
		{"symbols cut short", symbolsFile, "symbols", func(p string) error { return os.Truncate(p, 10) }},
		{"meta not JSON", metaFile, "meta", func(p string) error { return os.WriteFile(p, []byte("{"), 0o644) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := testOptions()
			opts.CompactionRanges = []time.Duration{}
			db := openDB(t, dir, opts)
			hourlyBlocks(t, db, 2, 60)
			// testQueries' two halves are the queries bounded to their
			// range; the others start at the first profile.
			firstHour, secondHour := testQueries(0, 360), only(testQueries(360, 720), "first-half", "second-half")
			wantFirst, wantSecond := collectAll(t, db, firstHour), collectAll(t, db, secondHour)
			db.Close()

			blocks := blockDirs(t, dir, "anonymous")
			if len(blocks) != 2 {
				t.Fatalf("%d blocks, want 2", len(blocks))
			}
			if err := c.damage(filepath.Join(blocks[0], c.file)); err != nil {
				t.Fatal(err)
			}
			db, err := Open(dir, nil, opts)
			if err != nil {
				t.Fatalf("Open with one damaged block: %v", err)
			}
			defer db.Close()
			if n := db.Stats().Quarantined; n != 1 {
				t.Errorf("%d quarantined, want 1", n)
			}
			checkQuarantined(t, dir, "anonymous", blocks[0], c.cause)
			if d := cmpDiff(wantSecond, collectAll(t, db, secondHour)); d != "" {
				t.Errorf("answers over the undamaged block changed (-before +after):\n%s", d)
			}
			got := collectAll(t, db, firstHour)
			for _, tenant := range testTenants[1:] {
				if d := cmpDiff(wantFirst[tenant], got[tenant]); d != "" {
					t.Errorf("tenant %s lost data to another tenant's damaged block:\n%s", tenant, d)
				}
			}
			// The store goes on working: a new cut writes a block.
			loadTestData(t, db, 720, 721, nil)
			if err := db.Flush(context.Background()); err != nil {
				t.Fatalf("Flush after quarantine: %v", err)
			}
		})
	}
}

// TestQuarantineCompactedBlockKeepsSources: a compacted block that turns
// out damaged while its sources are still there (a crash came before they
// were deleted) is quarantined, and the sources answer in its place.
func TestQuarantineCompactedBlockKeepsSources(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.CompactionRanges = []time.Duration{2 * time.Hour}
	db := openDB(t, dir, opts)
	hourlyBlocks(t, db, 3, 60)
	qs := testQueries(0, 3*360)
	want := collectAll(t, db, qs)
	sources := blockDirs(t, dir, "anonymous")[:2]
	saved := t.TempDir()
	for _, src := range sources {
		if err := os.CopyFS(filepath.Join(saved, filepath.Base(src)), os.DirFS(src)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// The compacted block is the one whose meta.json names the sources.
	var compacted string
	blocks := blockDirs(t, dir, "anonymous")
	if len(blocks) != 2 {
		t.Fatalf("%d blocks after compaction, want 2", len(blocks))
	}
	for _, b := range blocks {
		m, err := os.ReadFile(filepath.Join(b, metaFile))
		if err == nil && strings.Contains(string(m), filepath.Base(sources[0])) {
			compacted = b
		}
	}
	if compacted == "" {
		t.Fatal("no compacted block found")
	}
	for _, src := range sources {
		if err := os.CopyFS(src, os.DirFS(filepath.Join(saved, filepath.Base(src)))); err != nil {
			t.Fatal(err)
		}
	}
	if err := flipMiddle(filepath.Join(compacted, indexFile)); err != nil {
		t.Fatal(err)
	}
	db, err := Open(dir, nil, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	checkQuarantined(t, dir, "anonymous", compacted, "index")
	for _, src := range sources {
		if _, err := os.Stat(src); err != nil {
			t.Errorf("source %s of the damaged compacted block is gone: %v", filepath.Base(src), err)
		}
	}
	if d := cmpDiff(want, collectAll(t, db, qs)); d != "" {
		t.Errorf("answers differ (-before +after):\n%s", d)
	}
}

// TestQuarantineCheckpoint: a damaged checkpoint is moved aside and the
// log replayed from its start, without storing anything twice. What the
// checkpoint alone kept is lost: the baselines of cumulative series whose
// earlier profiles are only in blocks, so their next profile is stored
// whole; the test compares the other series.
func TestQuarantineCheckpoint(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	db := openDB(t, dir, opts)
	loadTestData(t, db, 0, 20, nil)
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	loadTestData(t, db, 20, 40, nil) // in the head, and so in the log
	qs := only(testQueries(0, 40), "cpu", "svc1")
	want := collectAll(t, db, qs)
	db.Close()
	cp := filepath.Join(dir, "tenants", tenantDirName("anonymous"), checkpointFile)
	if err := flipMiddle(cp); err != nil {
		t.Fatal(err)
	}
	db, err := Open(dir, nil, opts)
	if err != nil {
		t.Fatalf("Open with a damaged checkpoint: %v", err)
	}
	defer db.Close()
	if n := db.Stats().Quarantined; n != 1 {
		t.Errorf("%d quarantined, want 1", n)
	}
	if _, err := os.Stat(cp); !os.IsNotExist(err) {
		t.Errorf("damaged checkpoint still in place (%v)", err)
	}
	if d := cmpDiff(want, collectAll(t, db, qs)); d != "" {
		t.Errorf("answers differ (-before +after):\n%s", d)
	}
}

// only keeps the queries named.
func only(qs []querySpec, names ...string) []querySpec {
	var out []querySpec
	for _, q := range qs {
		if slices.Contains(names, q.name) {
			out = append(out, q)
		}
	}
	return out
}

func truncateHalf(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.Truncate(path, fi.Size()/2)
}

// flipMiddle inverts 16 bytes in the middle of a file.
func flipMiddle(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	mid := len(b) / 2
	for i := mid; i < mid+16 && i < len(b); i++ {
		b[i] ^= 0xff
	}
	return os.WriteFile(path, b, 0o644)
}
