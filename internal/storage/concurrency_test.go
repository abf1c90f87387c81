package storage

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestConcurrentMaintenance runs writes, queries, cuts and compaction at
// once; run it with -race. At the end, the answers equal those of a store
// that only ever had a head.
func TestConcurrentMaintenance(t *testing.T) {
	opts := testOptions()
	opts.CompactionRanges = []time.Duration{2 * time.Minute}
	ref := openDB(t, t.TempDir(), opts)
	defer ref.Close()
	loadTestData(t, ref, 0, 60, nil)
	qs := testQueries(0, 60)
	want := collectAll(t, ref, qs)

	db := openDB(t, t.TempDir(), opts)
	defer db.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			collectAll(t, db, qs[:3])
		}
	}()
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if err := db.Flush(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("Flush: %v", err)
			}
			if err := db.Compact(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("Compact: %v", err)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	for i := range 60 {
		loadTestData(t, db, i, i+1, nil)
	}
	cancel()
	wg.Wait()
	if d := cmpDiff(want, collectAll(t, db, qs)); d != "" {
		t.Fatalf("answers after concurrent maintenance (-head +store):\n%s", d)
	}
}
