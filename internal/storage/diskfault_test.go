package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
