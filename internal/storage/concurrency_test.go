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

// TestSampleMatcherAcrossSources checks that whether a matcher selects
// samples does not depend on how the data is split between heads and
// blocks: a source whose profiles carry no per-sample labels answers a
// matcher on one as a source that has them does for its unlabelled
// profiles. TestConcurrentMaintenance found the difference once in a
// while, when a cut fell between a labelled and an unlabelled write.
// Label values are left out: a source answers them from all its per-sample
// label sets, also those of profiles outside the range asked.
func TestSampleMatcherAcrossSources(t *testing.T) {
	load := func(db *DB, i int, labelled bool) {
		svc := "plain"
		if labelled {
			svc = "spans"
		}
		appendPayload(t, db, "anonymous", testPayload{
			Labels: map[string]string{"service_name": svc},
			Types:  []string{"", cpuType}, Time: t0 + int64(i)*10*sec, Profile: encodeProfile(t, synthProfile(i, labelled)),
		})
	}
	opts := testOptions()
	ref := openDB(t, t.TempDir(), opts)
	defer ref.Close()
	load(ref, 0, true)
	load(ref, 1, false)

	db := openDB(t, t.TempDir(), opts)
	defer db.Close()
	load(db, 0, true)
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	load(db, 1, false) // a head without per-sample labels

	qs := testQueries(0, 2)
	want, got := collectAll(t, ref, qs), collectAll(t, db, qs)
	for _, m := range []map[string]map[string]answers{want, got} {
		for _, byQuery := range m {
			for q, a := range byQuery {
				a.Values = nil
				byQuery[q] = a
			}
		}
	}
	if d := cmpDiff(want, got); d != "" {
		t.Fatalf("answers of one head (-) and of a block and a head (+):\n%s", d)
	}
}
