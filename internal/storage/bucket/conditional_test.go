package bucket

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// TestConditionalUploads: of the writers racing to create an object, or
// to replace the one they all read, exactly one wins and the others get
// ErrPreconditionFailed; a stale ETag loses, on a real S3 server (bare,
// and behind the cache) and on a Dir.
func TestConditionalUploads(t *testing.T) {
	for _, impl := range []struct {
		name string
		new  func(t *testing.T) Bucket
	}{
		{"dir", func(t *testing.T) Bucket { d, _ := newTestDir(t); return d }},
		{"s3", newS3},
		// The cache in front of S3, as a server has it: the lease must
		// find the conditional writes behind it.
		{"cached s3", func(t *testing.T) Bucket {
			c, err := NewCached(newS3(t), CacheOptions{Cacheable: func(string) bool { return true },
				MemoryBytes: 1 << 20, Dir: t.TempDir(), DiskBytes: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
	} {
		t.Run(impl.name, func(t *testing.T) {
			b := impl.new(t)
			cu, ok := b.(ConditionalUploader)
			if !ok {
				t.Fatalf("%T has no conditional writes", b)
			}
			ctx := context.Background()
			const name = "lease.json"
			if _, _, err := cu.GetWithETag(ctx, name); !cu.IsObjNotFoundErr(err) {
				t.Fatalf("GetWithETag of a missing object: %v, want not found", err)
			}
			// race runs n writers of f at once and returns the ETags of
			// those that won.
			race := func(n int, f func(i int) (string, error)) []string {
				var mu sync.Mutex
				var won []string
				var wg sync.WaitGroup
				for i := range n {
					wg.Go(func() {
						etag, err := f(i)
						if err != nil && !errors.Is(err, ErrPreconditionFailed) {
							t.Errorf("writer %d: %v", i, err)
						}
						if err == nil {
							mu.Lock()
							won = append(won, etag)
							mu.Unlock()
						}
					})
				}
				wg.Wait()
				return won
			}
			won := race(4, func(i int) (string, error) {
				return cu.UploadIfAbsent(ctx, name, []byte{'a' + byte(i)})
			})
			if len(won) != 1 {
				t.Fatalf("%d writers created the object, want 1", len(won))
			}
			data, etag, err := cu.GetWithETag(ctx, name)
			if err != nil || etag == "" || len(data) != 1 {
				t.Fatalf("GetWithETag: %q %q %v", data, etag, err)
			}
			if etag != won[0] {
				t.Errorf("ETag read %q, the winner's upload gave %q", etag, won[0])
			}
			won = race(4, func(i int) (string, error) {
				return cu.UploadIfMatch(ctx, name, []byte{'p' + byte(i)}, etag)
			})
			if len(won) != 1 {
				t.Fatalf("%d writers replaced the object of one ETag, want 1", len(won))
			}
			if _, err := cu.UploadIfMatch(ctx, name, []byte("stale"), etag); !errors.Is(err, ErrPreconditionFailed) {
				t.Fatalf("UploadIfMatch with a stale ETag: %v, want ErrPreconditionFailed", err)
			}
			if _, err := cu.UploadIfAbsent(ctx, name, []byte("again")); !errors.Is(err, ErrPreconditionFailed) {
				t.Fatalf("UploadIfAbsent over an object: %v, want ErrPreconditionFailed", err)
			}
			if _, err := cu.UploadIfMatch(ctx, "missing.json", []byte("x"), etag); !errors.Is(err, ErrPreconditionFailed) {
				t.Fatalf("UploadIfMatch of a missing object: %v, want ErrPreconditionFailed", err)
			}
			if names := list(t, b, ""); len(names) != 1 || names[0] != name {
				t.Fatalf("bucket lists %v, want only %s", names, name)
			}
		})
	}
}

// TestCachedWithoutConditionalWrites: the cache in front of a bucket
// without conditional writes says so, rather than writing at will.
func TestCachedWithoutConditionalWrites(t *testing.T) {
	c := newCachedTest(t).(*Cached)
	if _, err := c.UploadIfAbsent(context.Background(), "lease.json", []byte("x")); !errors.Is(err, ErrNoConditionalWrites) {
		t.Fatalf("UploadIfAbsent: %v, want ErrNoConditionalWrites", err)
	}
	if ok, err := c.Exists(context.Background(), "lease.json"); ok || err != nil {
		t.Fatalf("the refused upload left an object (exists %t, %v)", ok, err)
	}
}
