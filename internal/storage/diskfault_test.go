package storage

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
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
