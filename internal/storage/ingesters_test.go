package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/events"
	"github.com/hearth-profiler/hearth/internal/storage/bucket"
)

// fakeClock is a wall clock that tests move.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// ingesterRig is two ingesters and a querier on one bucket.Mem.
type ingesterRig struct {
	t      *testing.T
	bkt    *bucket.Mem
	clock  *fakeClock
	ing    []*DB
	dirs   []string
	q      *DB
	events map[string]int
	cpu    map[string]int64
	seq    int
}

const keepUploaded = time.Minute

func (r *ingesterRig) ingesterOptions() Options {
	o := testOptions()
	o.Bucket = r.bkt
	o.SharedBucket = true
	o.CompactionRanges = []time.Duration{}
	o.KeepUploaded = keepUploaded
	o.Now = r.clock.Now
	return o
}

func newIngesterRig(t *testing.T) *ingesterRig {
	r := &ingesterRig{t: t, bkt: bucket.NewMem("shared"), clock: &fakeClock{now: time.Now()},
		events: map[string]int{}, cpu: map[string]int64{}}
	for range 2 {
		dir := t.TempDir()
		r.dirs = append(r.dirs, dir)
		r.ing = append(r.ing, openDB(t, dir, r.ingesterOptions()))
	}
	qo := testOptions()
	qo.Bucket = r.bkt
	qo.ReadOnly = true
	r.q = openDB(t, t.TempDir(), qo)
	t.Cleanup(func() {
		for _, db := range append(slices.Clone(r.ing), r.q) {
			db.Close()
		}
	})
	return r
}

// send writes n cpu profiles and n events of tenant to ingester i, and
// counts what was sent.
func (r *ingesterRig) send(i int, tenant string, n int) {
	r.t.Helper()
	for range n {
		r.seq++
		p := synthProfile(r.seq, false)
		for _, s := range p.Sample {
			r.cpu[tenant] += s.Value[1]
		}
		appendPayload(r.t, r.ing[i], tenant, testPayload{
			Labels: map[string]string{"service_name": fmt.Sprintf("svc-%d", i)},
			Types:  []string{"", cpuType}, Time: t0 + int64(r.seq)*int64(time.Second), Profile: encodeProfile(r.t, p),
		})
	}
	evs := genEvents(uint64(r.seq), n, t0)
	if err := r.ing[i].AppendEvents(context.Background(), tenant, evs); err != nil {
		r.t.Fatal(err)
	}
	r.events[tenant] += n
}

// snapshot asks ingester i as the querier's client does: through the
// snapshot's encoding.
func (r *ingesterRig) snapshot(ctx context.Context, i int, tenant string, start, end int64) (*HeadSnapshot, error) {
	s, err := r.ing[i].HeadSnapshot(ctx, tenant, start, end)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		return nil, err
	}
	return ReadHeadSnapshot(&buf, 0)
}

func (r *ingesterRig) fetch(ctx context.Context, tenant string, start, end int64) ([]*HeadSnapshot, error) {
	var out []*HeadSnapshot
	for i := range r.ing {
		s, err := r.snapshot(ctx, i, tenant, start, end)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// totals returns the querier's cpu total and event count of tenant, with
// fetch as the ingesters' answers (none when nil).
func (r *ingesterRig) totals(tenant string, fetch FetchHeads) (cpu int64, evs int) {
	r.t.Helper()
	ctx := context.Background()
	if fetch != nil {
		var release func()
		ctx, release = WithIngesters(ctx, fetch)
		defer release()
	}
	start, end := t0-int64(time.Hour), t0+int64(2*time.Hour)
	svs, err := r.q.SelectStacks(ctx, tenant, SelectParams{Start: start, End: end})
	if err != nil {
		r.t.Fatalf("SelectStacks: %v", err)
	}
	for _, sv := range svs {
		for _, v := range sv.Values {
			cpu += v
		}
	}
	err = r.q.SelectEvents(ctx, tenant, EventQuery{Start: start, End: end}, func(b *events.Batch) error {
		evs += b.Len
		return nil
	})
	if err != nil {
		r.t.Fatalf("SelectEvents: %v", err)
	}
	return cpu, evs
}

func (r *ingesterRig) check(what, tenant string, fetch FetchHeads) {
	r.t.Helper()
	if fetch == nil {
		fetch = r.fetch
	}
	cpu, evs := r.totals(tenant, fetch)
	if cpu != r.cpu[tenant] || evs != r.events[tenant] {
		r.t.Errorf("%s: tenant %s: querier counts cpu %d and %d events, %d and %d were sent", what, tenant, cpu, evs, r.cpu[tenant], r.events[tenant])
	}
}

func (r *ingesterRig) sync() {
	r.t.Helper()
	if err := r.q.Sync(context.Background()); err != nil {
		r.t.Fatal(err)
	}
}

func (r *ingesterRig) flush(i int) {
	r.t.Helper()
	if err := r.ing[i].Flush(context.Background()); err != nil {
		r.t.Fatal(err)
	}
}

// TestIngesterDedup walks data from two ingesters' heads into the bucket
// and out of their views, and checks at each step that a querier with
// the ingesters' answers counts everything once: before any upload,
// after a cut it has not synced, after the sync, with a cut between the
// ingester's answer and the querier's sync, and after the grace period.
func TestIngesterDedup(t *testing.T) {
	r := newIngesterRig(t)
	const ten = "team-a"
	r.send(0, ten, 20)
	r.send(1, ten, 15)
	r.sync()
	if cpu, evs := r.totals(ten, nil); cpu != 0 || evs != 0 {
		t.Fatalf("querier without ingesters counts cpu %d and %d events before any upload", cpu, evs)
	}
	r.check("heads only", ten, nil)

	r.flush(0)
	r.check("ingester 0 cut, querier not synced", ten, nil)
	r.sync()
	r.check("ingester 0 cut, querier synced", ten, nil)
	if cpu, _ := r.totals(ten, nil); cpu == 0 || cpu == r.cpu[ten] {
		t.Fatalf("querier without ingesters counts cpu %d of %d: the test shows nothing", cpu, r.cpu[ten])
	}

	// The ingester answers, then cuts, then the querier syncs, and only
	// then reads with the answer it got before the cut.
	r.send(0, ten, 7)
	r.send(1, ten, 4)
	ctx := context.Background()
	start, end := t0-int64(time.Hour), t0+int64(2*time.Hour)
	before, err := r.fetch(ctx, ten, start, end)
	if err != nil {
		t.Fatal(err)
	}
	r.flush(0)
	r.flush(1)
	r.sync()
	r.check("cut between answer and sync", ten, func(context.Context, string, int64, int64) ([]*HeadSnapshot, error) {
		return before, nil
	})
	r.check("after the cut, fresh answer", ten, nil)

	// Past the grace period the ingesters drop their blocks; the
	// querier's synced blocks count them.
	r.send(1, ten, 3)
	r.clock.add(keepUploaded + time.Second)
	for _, db := range r.ing {
		db.dropUploaded()
	}
	for i := range r.ing {
		s, err := r.snapshot(ctx, i, ten, start, end)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Uploaded) != 0 || s.Watermark == 0 {
			t.Errorf("ingester %d after the grace period: uploaded %q, watermark %d; want none, and a watermark", i, s.Uploaded, s.Watermark)
		}
	}
	r.check("after the grace period", ten, nil)
	if cpu, evs := r.totals(ten, nil); cpu == r.cpu[ten] {
		t.Errorf("querier without ingesters counts cpu %d and %d events, all that was sent, with a head not cut", cpu, evs)
	}
}

// TestIngesterDedupBlockNotSynced: a block uploaded within the grace
// period that the querier has not listed (its sync is behind) is read
// from the bucket for the query, and is not counted again once synced.
func TestIngesterDedupBlockNotSynced(t *testing.T) {
	r := newIngesterRig(t)
	const ten = "t"
	r.send(0, ten, 10)
	r.flush(0)
	r.send(0, ten, 5)
	r.flush(0)
	r.send(1, ten, 6)
	r.check("two blocks not synced", ten, nil)
	r.sync()
	r.check("synced", ten, nil)
	// Blocks of different ages: one leaves the view, the other stays.
	r.clock.add(keepUploaded / 2)
	r.send(0, ten, 2)
	r.flush(0)
	r.clock.add(keepUploaded/2 + time.Second)
	r.ing[0].dropUploaded()
	r.check("one block past the grace period, one not, the newest not synced", ten, nil)
	r.sync()
	r.check("all synced", ten, nil)
}

// TestIngesterOnlyTenant: a tenant that only an ingester's head holds is
// queryable on the querier.
func TestIngesterOnlyTenant(t *testing.T) {
	r := newIngesterRig(t)
	r.send(1, "new", 4)
	r.sync()
	r.check("tenant in a head only", "new", nil)
	ctx, release := WithIngesters(context.Background(), r.fetch)
	defer release()
	lo, hi, ok, err := r.q.ProfileBounds(ctx, "new")
	if err != nil || !ok || lo > hi {
		t.Errorf("ProfileBounds of a tenant in a head only: %d %d %v %v", lo, hi, ok, err)
	}
	heads, blocks, err := r.q.Analyze(ctx, "new", SelectParams{Start: t0 - int64(time.Hour), End: t0 + int64(time.Hour)})
	if err != nil || heads.Profiles != 4 || blocks.Sources != 0 {
		t.Errorf("Analyze of a tenant in a head only: heads %+v, blocks %+v, %v; want 4 profiles in heads, no block", heads, blocks, err)
	}
	attrs, err := r.q.EventAttributes(ctx, "new", t0-int64(time.Hour), t0+int64(time.Hour))
	if err != nil || len(attrs) == 0 {
		t.Errorf("EventAttributes of a tenant in a head only: %v, %v", attrs, err)
	}
}

// TestIngesterFailureFailsQuery: an ingester that does not answer fails
// the query, with its error, rather than leaving its heads out.
func TestIngesterFailureFailsQuery(t *testing.T) {
	r := newIngesterRig(t)
	r.send(0, "t", 3)
	down := &IngesterError{Addr: "10.0.0.9:4040", Err: errors.New("connection refused")}
	ctx, release := WithIngesters(context.Background(), func(context.Context, string, int64, int64) ([]*HeadSnapshot, error) {
		return nil, down
	})
	defer release()
	_, err := r.q.SelectStacks(ctx, "t", SelectParams{Start: t0 - int64(time.Hour), End: t0 + int64(time.Hour)})
	if !errors.Is(err, down) {
		t.Errorf("SelectStacks with an ingester down: %v, want its error", err)
	}
	err = r.q.SelectEvents(ctx, "t", EventQuery{Start: t0 - int64(time.Hour), End: t0 + int64(time.Hour)}, func(*events.Batch) error { return nil })
	if !errors.Is(err, down) {
		t.Errorf("SelectEvents with an ingester down: %v, want its error", err)
	}
}

// TestIngesterRestartView: an ingester restarted keeps in its view only
// its own blocks within the grace period (by their cut time), and its
// watermark covers the others, so that the querier's answer is still
// whole.
func TestIngesterRestartView(t *testing.T) {
	r := newIngesterRig(t)
	const ten = "t"
	r.send(0, ten, 5)
	r.flush(0)
	r.send(1, ten, 5)
	r.flush(1)
	r.clock.add(keepUploaded + time.Second)
	r.send(0, ten, 3)
	r.flush(0)
	r.send(0, ten, 2) // in the log only
	r.sync()
	r.ing[0].Close()
	r.ing[0] = openDB(t, r.dirs[0], r.ingesterOptions())
	s, err := r.snapshot(context.Background(), 0, ten, t0-int64(time.Hour), t0+int64(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Uploaded) != 1 || s.Watermark == 0 || len(s.Heads) != 1 {
		t.Errorf("restarted ingester: uploaded %q, watermark %d, heads %q; want the newest block, a watermark past the older one, and its head", s.Uploaded, s.Watermark, s.Heads)
	}
	t0b := r.ing[0].lookupTenant(ten)
	t0b.blocksMu.RLock()
	for _, b := range t0b.blocks {
		if b.meta.Instance != r.ing[0].instance {
			t.Errorf("restarted ingester holds block %s of instance %s in its view", b.meta.ID, b.meta.Instance)
		}
	}
	t0b.blocksMu.RUnlock()
	r.check("after an ingester's restart", ten, nil)
}

// TestHeadSnapshotCached: a head that has not changed is not written
// again; one that has is.
func TestHeadSnapshotCached(t *testing.T) {
	r := newIngesterRig(t)
	ctx := context.Background()
	r.send(0, "t", 3)
	a, err := r.ing[0].HeadSnapshot(ctx, "t", t0-int64(time.Hour), t0+int64(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.ing[0].HeadSnapshot(ctx, "t", t0-int64(time.Hour), t0+int64(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Heads, b.Heads) {
		t.Errorf("unchanged head written again: %q, then %q", a.Heads, b.Heads)
	}
	r.send(0, "t", 1)
	c, err := r.ing[0].HeadSnapshot(ctx, "t", t0-int64(time.Hour), t0+int64(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(a.Heads, c.Heads) {
		t.Errorf("changed head not written again: %q", c.Heads)
	}
	// Out of range: nothing.
	d, err := r.ing[0].HeadSnapshot(ctx, "t", t0+int64(24*time.Hour), t0+int64(25*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Heads) != 0 || d.Size() != 0 {
		t.Errorf("snapshot of a range the head does not hold: heads %q, %d bytes", d.Heads, d.Size())
	}
	// Once the head is written out, its snapshot is forgotten without
	// another query.
	r.flush(0)
	r.ing[0].dropUploaded()
	tn := r.ing[0].lookupTenant("t")
	tn.snapMu.Lock()
	n := len(tn.snapCache)
	tn.snapMu.Unlock()
	if n != 0 {
		t.Errorf("%d snapshots kept of heads written out", n)
	}
}

// TestHeadSnapshotConcurrent takes snapshots, and reads them on the
// querier, while the ingester takes writes and cuts: run with -race, it
// checks that a snapshot reads the live head without its lock safely;
// every answer counts at least what was acknowledged before it was
// asked.
func TestHeadSnapshotConcurrent(t *testing.T) {
	r := newIngesterRig(t)
	const ten = "t"
	done := make(chan struct{})
	var mu sync.Mutex // guards r.cpu against the reader's reads
	go func() {
		defer close(done)
		for i := range 40 {
			mu.Lock()
			r.send(0, ten, 1)
			mu.Unlock()
			if i%10 == 9 {
				r.flush(0)
			}
		}
	}()
	for {
		select {
		case <-done:
			r.sync()
			r.check("after concurrent writes and cuts", ten, nil)
			return
		default:
		}
		mu.Lock()
		sent := r.cpu[ten]
		mu.Unlock()
		cpu, _ := r.totals(ten, r.fetch)
		if cpu < sent {
			t.Fatalf("querier counts cpu %d, %d was acknowledged before it asked", cpu, sent)
		}
	}
}

// TestIngesterDropsInOrder: a block uploaded late (its cut's upload was
// retried while a newer cut's went through) keeps the newer blocks in the
// view past their grace period, so that the watermark keeps its meaning:
// no block of the instance at or below it is in the view. (A querier
// would count such a block once all the same, since it takes a block by
// ID once, but the rule should not lean on that.)
func TestIngesterDropsInOrder(t *testing.T) {
	r := newIngesterRig(t)
	const ten = "t"
	r.send(0, ten, 4)
	r.flush(0)
	r.send(0, ten, 4)
	r.flush(0)
	r.sync()
	db := r.ing[0]
	tn := db.lookupTenant(ten)
	tn.blocksMu.Lock()
	if len(tn.blocks) != 2 {
		t.Fatalf("%d blocks, want 2", len(tn.blocks))
	}
	older, newer := tn.blocks[0], tn.blocks[1]
	if older.meta.WALSegment >= newer.meta.WALSegment {
		older, newer = newer, older
	}
	// The older cut's block went up last.
	tn.uploadedAt[older.meta.ID] = r.clock.Now()
	tn.uploadedAt[newer.meta.ID] = r.clock.Now().Add(-keepUploaded / 2)
	tn.blocksMu.Unlock()
	r.clock.add(keepUploaded/2 + time.Second)
	db.dropUploaded()
	s, err := r.snapshot(context.Background(), 0, ten, t0-int64(time.Hour), t0+int64(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if s.Watermark != 0 || len(s.Uploaded) != 2 {
		t.Errorf("after the newer block's grace period, not the older's: watermark %d, uploaded %q; want 0 and both", s.Watermark, s.Uploaded)
	}
	r.check("newer block past its grace period, older not", ten, nil)
	r.clock.add(keepUploaded)
	db.dropUploaded()
	s, err = r.snapshot(context.Background(), 0, ten, t0-int64(time.Hour), t0+int64(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if s.Watermark != newer.meta.WALSegment || len(s.Uploaded) != 0 {
		t.Errorf("after both grace periods: watermark %d, uploaded %q; want %d and none", s.Watermark, s.Uploaded, newer.meta.WALSegment)
	}
	r.check("both past their grace period", ten, nil)
}
