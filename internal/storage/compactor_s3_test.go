package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hearth-profiler/hearth/internal/s3test"
	"github.com/hearth-profiler/hearth/internal/storage/bucket"
)

// cutOff is the lease bucket of a compactor that can be cut off from the
// store, as a network partition or a frozen process does: its requests
// then fail, and its lease expires.
type cutOff struct {
	bucket.ConditionalUploader
	off atomic.Bool
}

var errCutOff = fmt.Errorf("cut off from the bucket: %w", errInjected)

func (c *cutOff) GetWithETag(ctx context.Context, name string) ([]byte, string, error) {
	if c.off.Load() {
		return nil, "", errCutOff
	}
	return c.ConditionalUploader.GetWithETag(ctx, name)
}

func (c *cutOff) UploadIfAbsent(ctx context.Context, name string, data []byte) (string, error) {
	if c.off.Load() {
		return "", errCutOff
	}
	return c.ConditionalUploader.UploadIfAbsent(ctx, name, data)
}

func (c *cutOff) UploadIfMatch(ctx context.Context, name string, data []byte, etag string) (string, error) {
	if c.off.Load() {
		return "", errCutOff
	}
	return c.ConditionalUploader.UploadIfMatch(ctx, name, data, etag)
}

// TestS3CompactorLease runs two compactors at once on a bucket of a real
// S3 server: one takes the lease and compacts, the other stands by; they
// never both hold it. Cut off from the store, the holder stops and the
// other takes the lease over once it has expired, and compacts what came
// since. Stopped, the holder releases the lease.
func TestS3CompactorLease(t *testing.T) {
	srv := s3test.Start(t)
	name := srv.NewBucket(t)
	bkt := openS3Bucket(t, srv, name, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := openIngester(t, t.TempDir(), bkt)
	defer w.Close()
	hourlyBlocks(t, w, 3, 180)

	const ttl = 900 * time.Millisecond
	var cs [2]*DB
	var leases [2]*cutOff
	var wg sync.WaitGroup
	for i := range cs {
		leases[i] = &cutOff{ConditionalUploader: bkt.(bucket.ConditionalUploader)}
		opts := compactorOptions(openS3Bucket(t, srv, name, nil), leases[i])
		opts.Compactor.Holder = fmt.Sprintf("compactor-%d", i)
		opts.Compactor.LeaseTTL = ttl
		opts.CompactInterval = 50 * time.Millisecond
		cs[i] = openDB(t, t.TempDir(), opts)
		defer cs[i].Close()
		wg.Go(func() { cs[i].Run(ctx) })
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	q := openSharedQuerier(t, bkt)
	// waitFor polls cond, failing the test if both compactors hold the
	// lease at any point.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if cs[0].Stats().LeaseHeld && cs[1].Stats().LeaseHeld {
				t.Fatal("both compactors hold the lease")
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s within a minute", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	holder := -1
	waitFor("lease holder", func() bool {
		for i, c := range cs {
			if c.Stats().LeaseHeld {
				holder = i
			}
		}
		return holder >= 0
	})
	compacted := func(n int) func() bool {
		return func() bool {
			if err := q.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			return len(blockIDs(q, "anonymous")) == n
		}
	}
	waitFor("compaction", compacted(2))
	// The other never holds it while the holder renews: watch a few TTLs.
	end := time.Now().Add(3 * ttl)
	waitFor("end of watch", func() bool { return time.Now().After(end) })
	if cs[1-holder].Stats().LeaseHeld {
		t.Fatal("the standby holds the lease")
	}

	// Hours 3 and 4; then the holder is cut off.
	for _, i := range []int{3 * 360, 4 * 360} {
		loadTestData(t, w, i, i+1, nil)
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	leases[holder].off.Store(true)
	other := 1 - holder
	waitFor("takeover", func() bool { return cs[other].Stats().LeaseHeld })
	if cs[holder].Stats().LeaseHeld {
		t.Fatal("the compactor cut off from the bucket still holds the lease")
	}
	// Hours 0-1 and 2-3 in 2h blocks, and the fifth hour.
	waitFor("compaction by the new holder", compacted(3))

	cancel()
	wg.Wait()
	data, _, err := bkt.(bucket.ConditionalUploader).GetWithETag(context.Background(), leaseObject)
	if err != nil {
		t.Fatal(err)
	}
	var rec leaseRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Holder != "" {
		t.Fatalf("lease held by %q after its holder stopped, want released", rec.Holder)
	}
}

// secondMarkFails makes the second deletion mark uploaded through it, and
// every upload after, fail: a compactor killed part way through marking
// a compaction's sources.
type secondMarkFails struct {
	bucket.Bucket
	marks int
}

func (b *secondMarkFails) Upload(ctx context.Context, name string, r io.Reader) error {
	if strings.HasSuffix(name, deletionMarkSuffix) {
		b.marks++
	}
	if b.marks >= 2 {
		return fmt.Errorf("upload %s: %w", name, errInjected)
	}
	return b.Bucket.Upload(ctx, name, r)
}

// TestS3CompactorTwoIngesters: two ingesters' blocks on a real S3
// server, merged by a compactor killed part way through marking the
// sources; a querier answers the same before, after that, after another
// compactor's passes, and after the sources' deletion.
func TestS3CompactorTwoIngesters(t *testing.T) {
	srv := s3test.Start(t)
	name := srv.NewBucket(t)
	ctx := context.Background()
	bkt := openS3Bucket(t, srv, name, nil)
	twoIngesters(t, bkt)
	q := openSharedQuerier(t, openS3Bucket(t, srv, name, nil))
	qs := testQueries(0, 3*360)
	want := collectAll(t, q, qs)
	if n := len(blockIDs(q, "anonymous")); n != 6 {
		t.Fatalf("querier holds %d blocks, want 6", n)
	}
	killed := openDB(t, t.TempDir(), compactorOptions(&secondMarkFails{Bucket: openS3Bucket(t, srv, name, nil)}, bkt.(bucket.ConditionalUploader)))
	if err := killed.Compact(ctx); !errors.Is(err, errInjected) {
		t.Fatalf("compactor's pass with its second mark failing: %v", err)
	}
	killed.Close()
	seenByQueriers(t, "one source marked", q, bkt, qs, want)
	c := openDB(t, t.TempDir(), compactorOptions(openS3Bucket(t, srv, name, nil), bkt.(bucket.ConditionalUploader)))
	defer c.Close()
	if err := c.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	seenByQueriers(t, "compacted", q, bkt, qs, want)
	if n := len(blockIDs(q, "anonymous")); n != 3 {
		t.Fatalf("querier holds %d blocks after compaction, want 3", n)
	}
	if err := c.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if n := c.Stats().BlocksDeleted; n != 4*int64(len(testTenants)) {
		t.Fatalf("%d blocks deleted, want 4 per tenant", n)
	}
	seenByQueriers(t, "sources deleted", q, bkt, qs, want)
	if d := cmp.Diff(want, collectAll(t, c, qs)); d != "" {
		t.Fatalf("compactor's own answers (-querier before +compactor):\n%s", d)
	}
}
