package storage

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hearth-profiler/hearth/internal/storage/bucket"
)

// metaGets counts the GETs of meta.json through a bucket.
type metaGets struct {
	bucket.Bucket
	n atomic.Int64
}

func (b *metaGets) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if strings.HasSuffix(name, "/"+metaFile) {
		b.n.Add(1)
	}
	return b.Bucket.Get(ctx, name)
}

// TestBucketIndex: after a compactor's pass, a querier opening the bucket
// takes every block's meta from the tenant's bucket index, reading no
// meta.json; a block uploaded since is found by its own listing, its
// meta.json read. A damaged or missing index costs only the GETs: the
// querier answers the same.
func TestBucketIndex(t *testing.T) {
	ctx := context.Background()
	d, err := bucket.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	twoIngesters(t, d)
	c := openDB(t, t.TempDir(), compactorOptions(d, d))
	defer c.Close()
	if err := c.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	qs := testQueries(0, 3*360+1)
	want := collectAll(t, c, qs)

	mg := &metaGets{Bucket: d}
	q := openSharedQuerier(t, mg)
	if n := mg.n.Load(); n != 0 {
		t.Errorf("querier read %d meta.json with a bucket index", n)
	}
	if d := cmp.Diff(want, collectAll(t, q, qs)); d != "" {
		t.Fatalf("querier over the index (-compactor +querier):\n%s", d)
	}

	// A block newer than the index.
	w := openIngester(t, t.TempDir(), d)
	loadTestData(t, w, 3*360, 3*360+1, nil)
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := q.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := mg.n.Load(); n != int64(len(testTenants)) {
		t.Errorf("querier read %d meta.json for a block per tenant newer than the index, want %d", n, len(testTenants))
	}
	want = collectAll(t, q, qs)
	if got := len(blockIDs(q, "anonymous")); got != 4 {
		t.Fatalf("querier holds %d blocks, want 4", got)
	}

	for _, damage := range []struct {
		name string
		do   func(name string) error
	}{
		{"garbage", func(name string) error { return d.Upload(ctx, name, bytes.NewReader([]byte("not gzip"))) }},
		{"missing", func(name string) error { return d.Delete(ctx, name) }},
	} {
		for _, tn := range testTenants {
			if err := damage.do(c.lookupTenant(tn).bucketIndexName()); err != nil {
				t.Fatal(err)
			}
		}
		mg.n.Store(0)
		fresh := openSharedQuerier(t, mg)
		if n := mg.n.Load(); n != 4*int64(len(testTenants)) {
			t.Errorf("%s index: querier read %d meta.json, want every block's", damage.name, n)
		}
		if d := cmp.Diff(want, collectAll(t, fresh, qs)); d != "" {
			t.Fatalf("%s index: querier's answers (-before +after):\n%s", damage.name, d)
		}
		fresh.Close()
	}
}
