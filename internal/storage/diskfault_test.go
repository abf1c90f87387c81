package storage

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/storage/bucket"
	"github.com/hearth-profiler/hearth/internal/storage/wal"
)

// TestCheckpointWriteFails fails each call of a cut's checkpoint write in
// turn, then restarts (cleanly, or by a crash): the profiles of the cut
// must all be there once. A failure after the rename (the directory's
// fsync) used to lose them: the block was taken back while the new
// checkpoint, saying its records were in a block, stayed.
func TestCheckpointWriteFails(t *testing.T) {
	isCheckpoint := func(path string) bool {
		b := filepath.Base(path)
		return b == checkpointFile || b == checkpointFile+tmpSuffix
	}
	for _, tc := range []struct {
		name string
		when func(op, path string) bool
	}{
		{"create", func(op, p string) bool { return op == "create" && isCheckpoint(p) }},
		{"write", func(op, p string) bool { return op == "write" && isCheckpoint(p) }},
		{"fsync", func(op, p string) bool { return op == "sync" && isCheckpoint(p) }},
		{"close", func(op, p string) bool { return op == "close" && isCheckpoint(p) }},
		{"rename", func(op, p string) bool { return op == "rename" && isCheckpoint(p) }},
		{"directory fsync", nil},
	} {
		for _, crash := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s,crash=%v", tc.name, crash), func(t *testing.T) {
				s := newFaultSchedule(t, testOptions())
				for range 6 {
					s.appendOne()
				}
				if err := s.db.Flush(context.Background()); err != nil {
					t.Fatal(err)
				}
				for range 6 {
					s.appendOne()
				}
				when := tc.when
				if when == nil { // the directory's fsync after the rename
					renamed := false
					when = func(op, p string) bool {
						renamed = renamed || (op == "rename" && isCheckpoint(p))
						return renamed && op == "syncdir"
					}
				}
				s.disk.mu.Lock()
				s.disk.failWhen = when
				s.disk.mu.Unlock()
				err := s.db.Flush(context.Background())
				if s.disk.firedCount() != 1 || err == nil {
					t.Fatalf("Flush with a failing checkpoint: %v after %d faults, want an error after 1", err, s.disk.firedCount())
				}
				s.check(s.db, "after the failed checkpoint", s.acked, never)
				if crash {
					s.abandon()
					s.reopen("a crash")
				} else {
					if err := s.db.Close(); err != nil {
						t.Fatal(err)
					}
					s.reopen("Close")
				}
				s.abandon()
				s.recoverAndCheck(s.dir, "the store", s.acked, never, false)
			})
		}
	}
}

// TestOpenWhenCleanupFails leaves the debris of crashes in the bucket (a
// block without meta.json, a temporary block directory of an older
// version, sources beside the compacted block that replaces them) and
// opens the store on a disk where every removal fails: it must open,
// without the debris in its answers, and the next Compact on a sound disk
// must remove it all. Such a failure used to stop Open.
func TestOpenWhenCleanupFails(t *testing.T) {
	opts := testOptions()
	opts.CompactionRanges = []time.Duration{16 * time.Second}
	s := newFaultSchedule(t, opts)
	ctx := context.Background()
	// Three blocks per tenant, of 8 s each: the first two are merged.
	for k := range 12 {
		s.appendTo("t0", k%3)
		s.appendTo("t1", k%3)
		if k%4 == 3 {
			if err := s.db.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.appendTo("t0", 2)
	s.disk.failOps = map[string]bool{"remove": true, "removeall": true}
	if err := s.db.Compact(ctx); err == nil {
		t.Fatal("Compact deleted its sources through a disk that fails every removal")
	}
	var sources int
	for tn := range faultTenants {
		tenant := fmt.Sprintf("t%d", tn)
		sources += len(s.db.lookupTenant(tenant).undeleted)
		// A block whose upload stopped before meta.json, and an old
		// temporary directory, both with a file in them.
		bdir := filepath.Join(s.dir, "tenants", tenantDirName(tenant), "blocks")
		for _, name := range []string{s.db.ids.next(s.now), "01M7V42P20FC40XHHYZH3R2R14.tmp"} {
			if err := os.MkdirAll(filepath.Join(bdir, name), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(bdir, name, samplesFile), []byte("PAR1"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if sources == 0 {
		t.Fatal("no compaction left its sources behind: the test tests nothing")
	}
	s.abandon()
	s.reopen("a crash, with every removal failing")
	if err := s.db.Compact(ctx); err == nil {
		t.Fatal("Compact removed the debris through a disk that fails every removal")
	}
	s.check(s.db, "after a failed Compact", s.acked, never)
	s.disk.disarm()
	if err := s.db.Compact(ctx); err != nil {
		t.Fatalf("Compact on a sound disk: %v", err)
	}
	s.checkTidy(s.db, s.dir)
	s.check(s.db, "after Compact", s.acked, never)
}

// TestOpenWhenCheckpointQuarantineFails damages a checkpoint on a disk
// where nothing can be created or renamed, so that it cannot be moved to
// the quarantine: the store must still open, replaying the log from its
// start, with every profile once. Such a failure used to stop Open.
func TestOpenWhenCheckpointQuarantineFails(t *testing.T) {
	s := newFaultSchedule(t, testOptions())
	ctx := context.Background()
	// Plain series only: without its checkpoint, a cumulative series
	// whose last profile is in a block loses its baseline (documented).
	for k := range 6 {
		s.appendTo("t0", k%2)
		if k == 2 {
			if err := s.db.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(s.dir, "tenants", "t0", checkpointFile)
	if err := os.WriteFile(cp, []byte("HCKP not a checkpoint"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.disk.failOps = map[string]bool{"create": true, "mkdirall": true, "mkdir": true, "rename": true}
	s.damaged = true
	s.reopen("damaging the checkpoint")
	if s.disk.firedCount() == 0 {
		t.Fatal("no fault injected: the quarantine was not tried")
	}
	if n := s.db.quarantined.Load(); n != 1 {
		t.Errorf("hearth_storage_quarantined_total is %d, want 1", n)
	}
	s.disk.disarm()
	if err := s.db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s.check(s.db, "after a cut", s.acked, never)
}

// TestCrashPoints stops the store at the points of a cut and of a
// compaction where a crash is most likely to leave two versions of the
// truth, and opens what the disk held then: it must open with every
// acknowledged profile exactly once, and cut and compact cleanly after.
func TestCrashPoints(t *testing.T) {
	base := func(p string) string { return filepath.Base(p) }
	inBlock := func(p string) bool { return strings.Contains(filepath.ToSlash(p), "/blocks/") }
	for _, tc := range []struct {
		name    string
		compact bool // the crash is in Compact, not in the cut
		when    func(op, path string) bool
	}{
		{"cut: samples written, not renamed", false, func(op, p string) bool { return op == "rename" && base(p) == samplesFile }},
		{"cut: meta.json written, not renamed", false, func(op, p string) bool { return op == "rename" && base(p) == metaFile }},
		{"cut: block uploaded, checkpoint not written", false, func(op, p string) bool { return op == "create" && base(p) == checkpointFile+tmpSuffix }},
		{"cut: checkpoint written, not renamed", false, func(op, p string) bool { return op == "rename" && base(p) == checkpointFile }},
		{"cut: checkpoint renamed, log not truncated", false, func(op, p string) bool { return op == "syncdir" && base(p) == "t0" }},
		{"compaction: merged samples written, not renamed", true, func(op, p string) bool { return op == "rename" && base(p) == samplesFile }},
		{"compaction: merged meta.json written, not renamed", true, func(op, p string) bool { return op == "rename" && base(p) == metaFile }},
		{"compaction: merged block uploaded, no source deleted", true, func(op, p string) bool { return op == "remove" && inBlock(p) }},
		{"compaction: a source's meta.json deleted, its objects not", true, nthOf("remove", 2)},
		{"compaction: one source deleted, not the other", true, func() func(op, p string) bool {
			metas := 0
			return func(op, p string) bool {
				if op == "remove" && base(p) == metaFile {
					metas++
				}
				return metas == 2
			}
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions()
			opts.CompactionRanges = []time.Duration{16 * time.Second}
			s := newFaultSchedule(t, opts)
			ctx := context.Background()
			// Three blocks per tenant, of 8 s each: Compact merges the
			// first two.
			for k := range 12 {
				s.appendTo("t0", k%3)
				s.appendTo("t1", k%3)
				if k%4 == 3 && (tc.compact || k < 8) {
					if err := s.db.Flush(ctx); err != nil {
						t.Fatal(err)
					}
				}
			}
			s.disk.mu.Lock()
			s.disk.crashWhen = tc.when
			s.disk.mu.Unlock()
			step, stepName := s.db.Flush, "Flush"
			if tc.compact {
				step, stepName = s.db.Compact, "Compact"
			}
			if err := step(ctx); err != nil {
				t.Fatalf("%s: %v", stepName, err)
			}
			if len(s.images) != 1 {
				t.Fatalf("%d crash images taken during %s, want 1", len(s.images), stepName)
			}
			img := s.images[0]
			t.Logf("crash %s", img.at)
			s.recoverAndCheck(img.dir, "the crash image", func(i int) bool { return img.acked[i] }, never, false)
		})
	}
}

// TestOpenWithOneFileDamaged damages each file of a store in turn, in
// each way a disk or an operator can (cut short, emptied, a byte flipped,
// overwritten, deleted, replaced by a directory), on a settled store and
// on the crash image of a compaction that had not deleted its sources
// yet. The store must open every time, and answer every profile that was
// not in the damaged file exactly once; those of the damaged file may be
// lost, but never doubled. It must then cut and compact as before.
func TestOpenWithOneFileDamaged(t *testing.T) {
	opts := testOptions()
	opts.CompactionRanges = []time.Duration{16 * time.Second}
	s := newFaultSchedule(t, opts)
	ctx := context.Background()
	// Per tenant: two blocks that Compact merges, a third, and profiles
	// only in the log.
	for k := range 16 {
		s.appendTo("t0", k%2)
		s.appendTo("t1", k%2)
		if k%4 == 3 && k < 12 {
			if err := s.db.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The crash image of a compaction whose new block is written and
	// none of whose sources is deleted, then the settled store.
	s.disk.mu.Lock()
	s.disk.crashWhen = nthOf("remove", 1)
	s.disk.mu.Unlock()
	if err := s.db.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if len(s.images) != 1 {
		t.Fatalf("%d crash images, want 1", len(s.images))
	}
	s.abandon()
	s.damaged = true
	stores := map[string]string{"settled": s.dir, "mid-compaction": s.images[0].dir}
	damages := []struct {
		name string
		do   func(path string) error
	}{
		{"cut short", truncateHalf},
		{"emptied", func(p string) error { return os.Truncate(p, 0) }},
		{"byte flipped", flipMiddle},
		{"overwritten", func(p string) error {
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			return os.WriteFile(p, bytes.Repeat([]byte("garbage!"), int(fi.Size()/8)+1), 0o644)
		}},
		{"deleted", os.Remove},
		{"a directory", func(p string) error {
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Mkdir(p, 0o755)
		}},
	}
	if testing.Short() {
		damages = damages[:2]
	}
	var opened []string
	for _, storeName := range []string{"settled", "mid-compaction"} {
		store := stores[storeName]
		holds := profilesByFile(t, s, store)
		for _, file := range slices.Sorted(maps.Keys(holds)) {
			if strings.HasPrefix(filepath.ToSlash(file), "tenants/t1/") {
				continue // as t0's, for time
			}
			for k, dmg := range damages {
				what := fmt.Sprintf("%s store, %s %s", storeName, file, dmg.name)
				dir := filepath.Join(t.TempDir(), "store")
				if err := linkTree(store, dir, file); err != nil {
					t.Fatal(err)
				}
				if err := dmg.do(filepath.Join(dir, file)); err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				lost := holds[file]
				s.anyValue = func(i int) bool { return lost[i] }
				must, may := func(i int) bool { return s.acked(i) && !lost[i] }, func(i int) bool { return lost[i] }
				if k%3 == len(opened)%3 {
					// And it cuts and compacts as before, which takes
					// longer: a third of the time.
					s.recoverAndCheck(dir, what, must, may, false)
				} else {
					db, err := s.open(dir, &faultDisk{})
					if err != nil {
						t.Fatalf("Open, %s: %v", what, err)
					}
					s.check(db, what, must, may)
					db.Close()
				}
				opened = append(opened, what)
			}
		}
	}
	t.Logf("the store opened %d times with one file damaged", len(opened))
}

// profilesByFile maps each file of the store in dir, relative to it, to
// the profiles it holds: a block's files to the block's, a log segment to
// those of its records, anything else (a checkpoint) to none.
func profilesByFile(t *testing.T, s *faultSchedule, dir string) map[string]map[int]bool {
	t.Helper()
	out := map[string]map[int]bool{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out[rel] = map[int]bool{}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// The log is read from a copy: opening it starts a segment.
	walCopy := filepath.Join(t.TempDir(), "wal")
	if err := copyTree(filepath.Join(dir, "wal"), walCopy); err != nil {
		t.Fatal(err)
	}
	w, err := wal.Open(walCopy, nil, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	err = w.Replay(0, func(seg int, rec []byte) error {
		_, _, payload, err := decodeRecord(rec)
		if err != nil {
			return err
		}
		ins, err := decodeFaultPayload(payload)
		if err != nil {
			return err
		}
		out[filepath.Join("wal", fmt.Sprintf("%08d", seg))][int((ins[0].Profile.TimeNanos-t0)/sec)] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The blocks, as a store opened on a copy sees them: one left by a
	// compaction beside its replacement holds its profiles too.
	bdir := filepath.Join(t.TempDir(), "store")
	if err := copyTree(dir, bdir); err != nil {
		t.Fatal(err)
	}
	for tn := range faultTenants {
		tenant := fmt.Sprintf("t%d", tn)
		root := filepath.Join(bdir, "tenants", tenantDirName(tenant), "blocks")
		ents, err := os.ReadDir(root)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			m, err := readMeta(context.Background(), mustDir(t, root), e.Name()+"/")
			if err != nil {
				t.Fatal(err)
			}
			b, err := openBlock(context.Background(), mustDir(t, root), e.Name()+"/", m)
			if err != nil {
				t.Fatal(err)
			}
			held := map[int]bool{}
			for _, ts := range b.ix.ts {
				held[int((ts-t0)/sec)] = true
			}
			b.close()
			for _, f := range []string{metaFile, indexFile, symbolsFile, samplesFile} {
				out[filepath.Join("tenants", tenantDirName(tenant), "blocks", e.Name(), f)] = held
			}
		}
	}
	return out
}

func mustDir(t *testing.T, root string) *bucket.Dir {
	t.Helper()
	d, err := bucket.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// linkTree makes dst a copy of the store in src, faster than copyTree: the
// files that a store only ever replaces or removes (a block's objects, a
// checkpoint) are hard links, and the rest, as well as the file named
// copy, are copied, the log's segments because Open may cut a torn tail
// off the last one.
func linkTree(src, dst, copy string) error {
	return filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if e.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if rel != copy && strings.HasPrefix(filepath.ToSlash(rel), "tenants/") {
			return os.Link(p, filepath.Join(dst, rel))
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
}
