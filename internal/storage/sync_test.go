package storage

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hearth-profiler/hearth/internal/events"
	"github.com/hearth-profiler/hearth/internal/s3test"
	"github.com/hearth-profiler/hearth/internal/storage/bucket"
)

// heldDeletes holds back the deletions of a Bucket while hold is set,
// until release: a compactor's deletion in two phases, which leaves a
// compaction's sources in the bucket until queriers have dropped them.
type heldDeletes struct {
	bucket.Bucket
	hold  bool
	names []string
}

func (h *heldDeletes) Delete(ctx context.Context, name string) error {
	if h.hold {
		h.names = append(h.names, name)
		return nil
	}
	return h.Bucket.Delete(ctx, name)
}

func (h *heldDeletes) release(t *testing.T) {
	t.Helper()
	h.hold = false
	for _, n := range h.names {
		if err := h.Bucket.Delete(context.Background(), n); err != nil && !h.IsObjNotFoundErr(err) {
			t.Fatal(err)
		}
	}
	h.names = nil
}

// TestS3ReadOnlySyncs puts a writer and a read-only store (an ingester
// and a querier) on one bucket of a real S3 server. The reader sees a
// block once its next Sync has run, and answers as the writer does. When
// the writer compacts (standing in for a compactor, deleting the sources
// only later), the reader's next Sync drops the sources and opens the
// compacted block, and a query that is reading a source meanwhile
// finishes with every event. A block deleted from the bucket leaves the
// reader's view at its next Sync.
func TestS3ReadOnlySyncs(t *testing.T) {
	srv := s3test.Start(t)
	name := srv.NewBucket(t)
	ctx := context.Background()
	const evTenant = "anonymous"
	tev := t0 + int64(10*time.Minute)
	evs := genEvents(3, 2000, tev)

	wopts := testOptions()
	wopts.CompactionRanges = []time.Duration{2 * time.Hour}
	held := &heldDeletes{Bucket: openS3Bucket(t, srv, name, nil)}
	wopts.Bucket = held
	w := openDB(t, t.TempDir(), wopts)
	defer w.Close()

	ropts := testOptions()
	ropts.ReadOnly = true
	ropts.Bucket = openS3Bucket(t, srv, name, nil)
	r := openDB(t, t.TempDir(), ropts)
	defer r.Close()
	if err := r.Append(ctx, "anonymous", nil, nil); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Append to a read-only store: %v, want ErrReadOnly", err)
	}
	if err := r.AppendEvents(ctx, evTenant, slices.Clone(evs[:1])); !errors.Is(err, ErrReadOnly) {
		t.Errorf("AppendEvents to a read-only store: %v, want ErrReadOnly", err)
	}

	// Three hourly blocks per tenant, events in the first two.
	for h := range 3 {
		for i := h * 360; i < (h+1)*360; i += 60 {
			loadTestData(t, w, i, i+1, nil)
		}
		if h < 2 {
			if err := w.AppendEvents(ctx, evTenant, slices.Clone(evs[h*1000:(h+1)*1000])); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	qs := testQueries(0, 3*360)
	wantEvents := slices.Clone(evs)
	sortEvents(wantEvents)
	check := func(what string) {
		t.Helper()
		for _, tn := range testTenants {
			if got, want := blockIDs(r, tn), blockIDs(w, tn); !slices.Equal(got, want) {
				t.Fatalf("%s: tenant %s: reader's blocks %v, writer's %v", what, tn, got, want)
			}
		}
		if d := cmp.Diff(collectAll(t, w, qs), collectAll(t, r, qs)); d != "" {
			t.Fatalf("%s: profiles (-writer +reader):\n%s", what, d)
		}
		got := selectAll(t, r, evTenant, t0, t0+int64(time.Hour))
		sortEvents(got)
		if d := cmp.Diff(wantEvents, got); d != "" {
			t.Fatalf("%s: events (-want +reader):\n%s", what, d)
		}
	}

	if n := r.Stats().Blocks; n != 0 {
		t.Fatalf("reader holds %d blocks before a sync, want 0", n)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	check("after the writer's flushes")
	before := blockIDs(r, evTenant)

	// The first two hours merge into one block; the sources are deleted
	// once the reader has dropped them.
	held.hold = true
	if err := w.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if got := blockIDs(w, evTenant); len(got) != 2 {
		t.Fatalf("writer holds %v after compaction, want 2 blocks", got)
	}

	// A query reads the reader's old blocks while it syncs: the sync's
	// swap waits for the query, which finishes with every event.
	tn := r.lookupTenant(evTenant)
	var got []events.Event
	syncErr := make(chan error, 1)
	started := false
	err := r.SelectEvents(ctx, evTenant, EventQuery{Columns: allEvents, Start: t0, End: t0 + int64(time.Hour)}, func(b *events.Batch) error {
		if !started {
			started = true
			go func() { syncErr <- r.Sync(ctx) }()
			// The sync has listed the bucket and opened the new block
			// when it waits to swap: a waiting writer makes TryRLock
			// fail.
			deadline := time.Now().Add(30 * time.Second)
			for tn.blocksMu.TryRLock() {
				tn.blocksMu.RUnlock()
				if time.Now().After(deadline) {
					t.Error("the sync never waited for the query")
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
		for i := range b.Len {
			got = append(got, b.Event(i))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("query across a sync: %v", err)
	}
	if err := <-syncErr; err != nil {
		t.Fatalf("sync: %v", err)
	}
	sortEvents(got)
	if d := cmp.Diff(wantEvents, got); d != "" {
		t.Fatalf("query across a sync: events (-want +got):\n%s", d)
	}
	after := blockIDs(r, evTenant)
	if slices.Equal(before, after) || len(after) != 2 {
		t.Fatalf("reader's blocks %v after compaction, were %v", after, before)
	}
	check("after compaction")
	held.release(t)
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	check("after the sources' deletion")

	// A block deleted from the bucket, as retention does.
	gone := after[len(after)-1]
	if err := deleteBlock(ctx, held, r.lookupTenant(evTenant).blocksDir()+gone+"/"); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := blockIDs(r, evTenant); !slices.Equal(got, after[:len(after)-1]) {
		t.Fatalf("reader's blocks %v after %s was deleted, want %v", got, gone, after[:len(after)-1])
	}
	if got := selectAll(t, r, evTenant, t0, t0+int64(time.Hour)); len(got) != len(wantEvents) {
		t.Fatalf("%d events after the last block was deleted, want %d", len(got), len(wantEvents))
	}
}

// TestS3SharedBucketReplay puts two writers on one bucket, as two
// ingesters. One cuts many blocks, whose log segments run past the
// other's; the other, restarted with profiles in its log only, still
// replays them: each goes by its own blocks' segments.
func TestS3SharedBucketReplay(t *testing.T) {
	srv := s3test.Start(t)
	name := srv.NewBucket(t)
	ctx := context.Background()
	opts := testOptions()
	opts.SharedBucket = true
	opts.CompactionRanges = []time.Duration{}
	opts.Bucket = openS3Bucket(t, srv, name, nil)
	a := openDB(t, t.TempDir(), opts)
	defer a.Close()
	flushes := func(from, to int) {
		for i := from; i < to; i++ {
			loadTestData(t, a, i, i+1, nil)
			if err := a.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	flushes(0, 3)

	dirB := t.TempDir()
	b := openDB(t, dirB, opts)
	loadTestData(t, b, 10, 12, nil)
	qs := only(testQueries(10, 12), "first-half", "second-half")
	want := collectAll(t, b, qs)
	b.Close() // its profiles are in its log only

	flushes(3, 9)
	b = openDB(t, dirB, opts)
	defer b.Close()
	if d := cmp.Diff(want, collectAll(t, b, qs)); d != "" {
		t.Fatalf("restarted beside another writer's blocks (-before +after):\n%s", d)
	}
	for _, db := range []*DB{a, b} {
		if db.instance == "" {
			t.Fatal("a store that shares its bucket has no instance name")
		}
	}
	if a.instance == b.instance {
		t.Fatalf("two stores share the instance name %s", a.instance)
	}
}

// TestS3ReadOnlySkipsDamaged: a block whose meta.json is damaged does not
// fail a read-only store's Sync; it is left out, counted, and not read
// again, and the blocks beside it are served.
func TestS3ReadOnlySkipsDamaged(t *testing.T) {
	srv, name, w, ids := s3TwoBlocks(t)
	ctx := context.Background()

	ropts := testOptions()
	ropts.ReadOnly = true
	ropts.Bucket = openS3Bucket(t, srv, name, nil)
	r := openDB(t, t.TempDir(), ropts)
	defer r.Close()
	if got := blockIDs(r, "anonymous"); !slices.Equal(got, ids) {
		t.Fatalf("reader opened %v, want %v", got, ids)
	}

	// A third block, damaged.
	hourlyBlocks(t, w, 1, 60)
	var bad string
	for _, id := range blockIDs(w, "anonymous") {
		if !slices.Contains(ids, id) {
			bad = id
		}
	}
	if err := w.bkt.Upload(ctx, "anonymous/blocks/"+bad+"/"+metaFile, strings.NewReader("{")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := r.Sync(ctx); err != nil {
			t.Fatalf("sync with a damaged block: %v", err)
		}
	}
	if got := blockIDs(r, "anonymous"); !slices.Equal(got, ids) {
		t.Fatalf("reader holds %v, want %v without the damaged %s", got, ids, bad)
	}
	if n := r.Stats().DamagedReads; n != 1 {
		t.Errorf("%d damaged reads counted after two syncs, want 1", n)
	}
	if ok, err := w.bkt.Exists(ctx, "anonymous/blocks/"+bad+"/"+samplesFile); !ok || err != nil {
		t.Errorf("the read-only store moved or deleted the damaged block: %v, %v", ok, err)
	}
}

// unservedBucket fails every read of the objects whose names contain
// part, as a store out of reach does, while part is set.
type unservedBucket struct {
	bucket.Bucket
	part string
}

func (b *unservedBucket) fail(name string) error {
	if b.part != "" && strings.Contains(name, b.part) {
		return &bucket.UnavailableError{Bucket: "test", Op: "get", Name: name, Err: errors.New("connection reset")}
	}
	return nil
}

func (b *unservedBucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := b.fail(name); err != nil {
		return nil, err
	}
	return b.Bucket.Get(ctx, name)
}

func (b *unservedBucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if err := b.fail(name); err != nil {
		return nil, err
	}
	return b.Bucket.GetRange(ctx, name, off, length)
}

func (b *unservedBucket) ReaderAt(ctx context.Context, name string) (bucket.ReaderAt, error) {
	if err := b.fail(name); err != nil {
		return nil, err
	}
	return b.Bucket.ReaderAt(ctx, name)
}

// TestS3ReadOnlyRetriesUnserved: a block the bucket fails to serve does
// not stop a read-only store from opening, nor fail its Sync for the
// other blocks; it is left out, not taken for damaged, and opened by the
// first Sync after the bucket serves it again.
func TestS3ReadOnlyRetriesUnserved(t *testing.T) {
	srv, name, w, ids := s3TwoBlocks(t)
	ctx := context.Background()

	ub := &unservedBucket{Bucket: openS3Bucket(t, srv, name, nil), part: ids[0]}
	ropts := testOptions()
	ropts.ReadOnly = true
	ropts.Bucket = ub
	r, err := Open(t.TempDir(), nil, ropts)
	if err != nil {
		t.Fatalf("Open with a block the bucket does not serve: %v", err)
	}
	defer r.Close()
	if got := blockIDs(r, "anonymous"); !slices.Equal(got, ids[1:]) {
		t.Fatalf("reader opened %v, want %v", got, ids[1:])
	}
	if err := r.Sync(ctx); err == nil || !bucket.IsUnavailable(err) {
		t.Errorf("sync with a block the bucket does not serve: %v, want its error", err)
	}
	if n := r.Stats().DamagedReads; n != 0 {
		t.Errorf("%d blocks taken for damaged, want 0", n)
	}
	ub.part = ""
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := blockIDs(r, "anonymous"); !slices.Equal(got, ids) {
		t.Fatalf("reader holds %v once the bucket serves it again, want %v", got, ids)
	}
	qs := testQueries(0, 2*360)
	if d := cmp.Diff(collectAll(t, w, qs), collectAll(t, r, qs)); d != "" {
		t.Fatalf("profiles (-writer +reader):\n%s", d)
	}
}

// s3TwoBlocks starts an S3 server with a bucket, and a store that has
// written two hourly blocks to it, closed when the test ends; ids are the
// blocks.
func s3TwoBlocks(t *testing.T) (srv *s3test.Server, name string, w *DB, ids []string) {
	t.Helper()
	srv = s3test.Start(t)
	name = srv.NewBucket(t)
	wopts := testOptions()
	wopts.CompactionRanges = []time.Duration{}
	wopts.Bucket = openS3Bucket(t, srv, name, nil)
	w = openDB(t, t.TempDir(), wopts)
	t.Cleanup(func() { w.Close() })
	hourlyBlocks(t, w, 2, 60)
	return srv, name, w, blockIDs(w, "anonymous")
}
