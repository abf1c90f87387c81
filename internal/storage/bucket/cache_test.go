package bucket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/thanos-io/objstore"
)

// newCachedTest returns a Cached that caches every object, in both tiers,
// in front of objstore's in-memory bucket, with chunks small enough that
// the contract's objects span several: what every Bucket promises holds
// through the cache.
func newCachedTest(t *testing.T) Bucket {
	t.Helper()
	c, err := NewCached(newObjstore(t, objstore.NewInMemBucket()), CacheOptions{
		Cacheable:   func(string) bool { return true },
		MemoryBytes: 1 << 20,
		Dir:         t.TempDir(),
		DiskBytes:   1 << 20,
		ChunkBytes:  5,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// counting is a Bucket that counts the reads that reach it, and can hold
// them until released.
type counting struct {
	Bucket
	gets, ranges, attrs atomic.Int64
	hold                chan struct{} // when set, reads wait for it to close
}

func (c *counting) wait() {
	if c.hold != nil {
		<-c.hold
	}
}

func (c *counting) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	c.gets.Add(1)
	c.wait()
	return c.Bucket.Get(ctx, name)
}

func (c *counting) GetRange(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	c.ranges.Add(1)
	c.wait()
	return c.Bucket.GetRange(ctx, name, off, n)
}

func (c *counting) Attributes(ctx context.Context, name string) (ObjectAttributes, error) {
	c.attrs.Add(1)
	return c.Bucket.Attributes(ctx, name)
}

func (c *counting) requests() int64 { return c.gets.Load() + c.ranges.Load() + c.attrs.Load() }

// immutable is the Cacheable of the tests: names under "blocks/".
func immutable(name string) bool { return len(name) > 7 && name[:7] == "blocks/" }

type cacheFixture struct {
	inner *counting
	dir   string
	opts  CacheOptions
}

func newCacheFixture(t *testing.T) *cacheFixture {
	t.Helper()
	d, _ := newTestDir(t)
	return &cacheFixture{
		inner: &counting{Bucket: d},
		dir:   t.TempDir(),
		opts: CacheOptions{
			Cacheable:   immutable,
			MemoryBytes: 1 << 20,
			DiskBytes:   1 << 20,
			ChunkBytes:  1000,
		},
	}
}

// open returns a new Cached over the fixture's bucket and cache directory,
// as a process started again would.
func (f *cacheFixture) open(t *testing.T) (*Cached, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts := f.opts
	opts.Dir = f.dir
	opts.Registerer = reg
	c, err := NewCached(f.inner, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, reg
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func getAll(t *testing.T, b Bucket, name string) []byte {
	t.Helper()
	rc, err := b.Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func hits(c *Cached, tier, result string) float64 {
	return testutil.ToFloat64(c.m.requests.WithLabelValues(tier, result))
}

// TestCachedServesFromTiers reads an object and chunks of another
// through a cache, then through a new cache on the same directory (a
// restarted process), then with the memory tier alone: each reads what
// the bucket holds, and asks the bucket only for what no tier holds.
func TestCachedServesFromTiers(t *testing.T) {
	f := newCacheFixture(t)
	ctx := context.Background()
	whole := randomBytes(1, 2500)
	ranged := randomBytes(2, 4321)
	upload(t, f.inner, "blocks/a/symbols.bin", string(whole))
	upload(t, f.inner, "blocks/a/samples.parquet", string(ranged))

	read := func(c *Cached) {
		t.Helper()
		if got := getAll(t, c, "blocks/a/symbols.bin"); !bytes.Equal(got, whole) {
			t.Fatal("Get through the cache differs from the object")
		}
		r, err := c.ReaderAt(ctx, "blocks/a/samples.parquet")
		if err != nil {
			t.Fatal(err)
		}
		if r.Size() != int64(len(ranged)) {
			t.Fatalf("size %d, want %d", r.Size(), len(ranged))
		}
		// Reads within a chunk, across chunks, at the end and past it.
		for _, rg := range [][2]int{{0, 10}, {990, 20}, {1500, 2700}, {4300, 21}, {4300, 100}, {0, 4321}} {
			p := make([]byte, rg[1])
			n, err := r.ReadAt(p, int64(rg[0]))
			want := ranged[rg[0]:min(rg[0]+rg[1], len(ranged))]
			if n != len(want) || !bytes.Equal(p[:n], want) {
				t.Fatalf("ReadAt(%d, %d): %d bytes, want %d, or other bytes", rg[1], rg[0], n, len(want))
			}
			if wantEOF := rg[0]+rg[1] > len(ranged); wantEOF != (err == io.EOF) || !wantEOF && err != nil {
				t.Fatalf("ReadAt(%d, %d): err %v", rg[1], rg[0], err)
			}
		}
		if _, err := r.ReadAt(make([]byte, 1), 5000); err != io.EOF {
			t.Fatalf("ReadAt past the end: %v, want EOF", err)
		}
	}

	c1, _ := f.open(t)
	read(c1)
	// One Get, one Attributes, one GET per chunk of the 5 chunks.
	if g, a, r := f.inner.gets.Load(), f.inner.attrs.Load(), f.inner.ranges.Load(); g != 1 || a != 1 || r != 5 {
		t.Fatalf("cold: %d gets, %d attributes, %d ranged gets; want 1, 1, 5", g, a, r)
	}
	read(c1)
	if n := f.inner.requests(); n != 7 {
		t.Fatalf("warm: %d requests to the bucket, want still 7", n)
	}
	if hits(c1, "memory", "hit") == 0 {
		t.Fatal("no memory hit counted")
	}

	// A cached object tells its size, as a file does, to a reader that
	// reads it whole.
	rc, err := c1.Get(ctx, "blocks/a/symbols.bin")
	if err != nil {
		t.Fatal(err)
	}
	st, ok := rc.(interface{ Stat() (fs.FileInfo, error) })
	if !ok {
		t.Fatal("a cached object has no Stat")
	}
	if fi, err := st.Stat(); err != nil || fi.Size() != int64(len(whole)) {
		t.Fatalf("Stat of a cached object: %v, %v; want size %d", fi, err, len(whole))
	}
	rc.Close()

	c2, _ := f.open(t)
	read(c2)
	if n := f.inner.requests(); n != 7 {
		t.Fatalf("restarted: %d requests to the bucket, want still 7", n)
	}
	if got := hits(c2, "disk", "hit"); got != 7 {
		t.Fatalf("restarted: %v disk hits, want 7 (object, size, 5 chunks)", got)
	}

	f.opts.DiskBytes = 0
	c3, _ := f.open(t)
	read(c3)
	if n := f.inner.requests(); n != 14 {
		t.Fatalf("memory only, cold: %d requests to the bucket, want 14", n)
	}
}

// TestCachedDamagedDiskFiles damages the cache's files in the ways a
// crash or a disk does (a flipped byte, a file cut short, an empty one,
// one swapped for another entry's), then reads through a new cache: each
// damaged file is found, counted and fetched again, and the read is right.
func TestCachedDamagedDiskFiles(t *testing.T) {
	damage := map[string]func(t *testing.T, p string, all []string){
		"flipped": func(t *testing.T, p string, _ []string) {
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0x10
			os.WriteFile(p, b, 0o644)
		},
		"truncated": func(t *testing.T, p string, _ []string) {
			fi, _ := os.Stat(p)
			os.Truncate(p, fi.Size()-3)
		},
		"empty": func(t *testing.T, p string, _ []string) { os.Truncate(p, 0) },
		"swapped": func(t *testing.T, p string, all []string) {
			for _, q := range all {
				if q != p {
					b, _ := os.ReadFile(q)
					os.WriteFile(p, b, 0o644)
					return
				}
			}
			t.Fatal("no other file")
		},
	}
	for what, fn := range damage {
		t.Run(what, func(t *testing.T) {
			f := newCacheFixture(t)
			data := randomBytes(3, 1800)
			upload(t, f.inner, "blocks/b/index.bin", string(data))
			upload(t, f.inner, "blocks/b/spans.bin", "other")
			c, _ := f.open(t)
			getAll(t, c, "blocks/b/index.bin")
			getAll(t, c, "blocks/b/spans.bin")
			var files []string
			filepath.Walk(f.dir, func(p string, fi os.FileInfo, err error) error {
				if err == nil && fi.Mode().IsRegular() {
					files = append(files, p)
				}
				return nil
			})
			if len(files) != 2 {
				t.Fatalf("%d files in the cache, want 2", len(files))
			}
			target := filepath.Join(f.dir, relPath(entryKey("blocks/b/index.bin", partWhole)))
			fn(t, target, files)

			before := f.inner.gets.Load()
			c2, _ := f.open(t)
			if got := getAll(t, c2, "blocks/b/index.bin"); !bytes.Equal(got, data) {
				t.Fatal("read through a damaged cache differs from the object")
			}
			if n := f.inner.gets.Load() - before; n != 1 {
				t.Fatalf("%d gets from the bucket, want 1", n)
			}
			if n := testutil.ToFloat64(c2.m.damaged); n != 1 {
				t.Fatalf("%v damaged files counted, want 1", n)
			}
			// Fetched again, and kept again, whole.
			c3, _ := f.open(t)
			if got := getAll(t, c3, "blocks/b/index.bin"); !bytes.Equal(got, data) {
				t.Fatal("read after the repair differs from the object")
			}
			if n := f.inner.gets.Load() - before; n != 1 {
				t.Fatalf("%d gets from the bucket after the repair, want still 1", n)
			}
		})
	}
}

// TestCachedEvictsLeastRecent fills the disk tier with whole objects past
// its bound: it stays within it, and what it evicts is what was read
// longest ago, in a restarted process too.
func TestCachedEvictsLeastRecent(t *testing.T) {
	f := newCacheFixture(t)
	f.opts.DiskBytes = 3 * (1000 + 200)
	for i := range 4 {
		upload(t, f.inner, fmt.Sprintf("blocks/c/o%d", i), string(randomBytes(uint64(i), 1000)))
	}
	c, reg := f.open(t)
	getAll(t, c, "blocks/c/o0")
	getAll(t, c, "blocks/c/o1")
	getAll(t, c, "blocks/c/o2")
	getAll(t, c, "blocks/c/o0") // o1 is now the least recent
	getAll(t, c, "blocks/c/o3") // evicts o1
	if b := testutil.ToFloat64(c.m.bytes.WithLabelValues("disk")); b > float64(f.opts.DiskBytes) || b == 0 {
		t.Fatalf("disk tier holds %v bytes, want some within its %d", b, f.opts.DiskBytes)
	}
	if n := testutil.ToFloat64(c.m.evictions.WithLabelValues("disk")); n != 1 {
		t.Fatalf("%v disk evictions, want 1", n)
	}
	// Whole objects skip memory: disk hits and misses only.
	if n, err := testutil.GatherAndCount(reg, "hearth_bucket_cache_requests_total"); err != nil || n != 2 {
		t.Fatalf("%d series of hearth_bucket_cache_requests_total (%v), want 2", n, err)
	}

	c2, _ := f.open(t)
	before := f.inner.gets.Load()
	for _, name := range []string{"blocks/c/o0", "blocks/c/o2", "blocks/c/o3"} {
		getAll(t, c2, name)
	}
	if n := f.inner.gets.Load() - before; n != 0 {
		t.Fatalf("%d gets of objects the disk tier should hold", n)
	}
	getAll(t, c2, "blocks/c/o1")
	if n := f.inner.gets.Load() - before; n != 1 {
		t.Fatalf("%d gets of the evicted object, want 1", n)
	}
}

// TestCachedMemoryEvictsLeastRecent reads the chunks of an object through
// a memory tier that holds four of its five: it stays within its bound and
// evicts the chunk read longest ago.
func TestCachedMemoryEvictsLeastRecent(t *testing.T) {
	f := newCacheFixture(t)
	f.opts.DiskBytes = 0
	f.opts.MemoryBytes = 4100 // four chunks of 1000 bytes, and the size
	upload(t, f.inner, "blocks/m/samples.parquet", string(randomBytes(7, 5000)))
	c, _ := f.open(t)
	r, err := c.ReaderAt(context.Background(), "blocks/m/samples.parquet")
	if err != nil {
		t.Fatal(err)
	}
	read := func(chunks ...int) int64 {
		t.Helper()
		before := f.inner.ranges.Load()
		for _, k := range chunks {
			if _, err := r.ReadAt(make([]byte, 10), int64(k)*1000); err != nil {
				t.Fatal(err)
			}
		}
		return f.inner.ranges.Load() - before
	}
	if n := read(0, 1, 2, 0, 3, 4); n != 5 { // evicts the size, then chunk 1
		t.Fatalf("%d GETs for 5 chunks, want 5", n)
	}
	if b := testutil.ToFloat64(c.m.bytes.WithLabelValues("memory")); b > 4100 {
		t.Fatalf("memory tier holds %v bytes, over its 4100", b)
	}
	if n := read(0, 2, 3, 4); n != 0 {
		t.Fatalf("%d GETs of chunks the memory tier should hold", n)
	}
	if n := read(1); n != 1 {
		t.Fatalf("%d GETs of the evicted chunk, want 1", n)
	}
	if n := testutil.ToFloat64(c.m.evictions.WithLabelValues("memory")); n != 3 {
		t.Fatalf("%v memory evictions, want 3 (the size, chunk 1, then chunk 0)", n)
	}
}

// TestCachedConcurrentMisses reads one object and one chunk from many
// goroutines at once while the bucket holds its answers: each is fetched
// once.
func TestCachedConcurrentMisses(t *testing.T) {
	f := newCacheFixture(t)
	data := randomBytes(5, 3000)
	upload(t, f.inner, "blocks/d/symbols.bin", string(data))
	upload(t, f.inner, "blocks/d/samples.parquet", string(data))
	c, _ := f.open(t)
	r, err := c.ReaderAt(context.Background(), "blocks/d/samples.parquet")
	if err != nil {
		t.Fatal(err)
	}
	f.inner.hold = make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for range 20 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			rc, err := c.Get(context.Background(), "blocks/d/symbols.bin")
			if err == nil {
				var got []byte
				got, err = io.ReadAll(rc)
				if err == nil && !bytes.Equal(got, data) {
					err = fmt.Errorf("Get read other bytes")
				}
			}
			errs <- err
		}()
		go func() {
			defer wg.Done()
			p := make([]byte, 100)
			_, err := r.ReadAt(p, 1100)
			if err == nil && !bytes.Equal(p, data[1100:1200]) {
				err = fmt.Errorf("ReadAt read other bytes")
			}
			errs <- err
		}()
	}
	// Let the goroutines pile up on the fetch before it answers.
	for f.inner.gets.Load() == 0 || f.inner.ranges.Load() == 0 {
		runtime.Gosched()
	}
	close(f.inner.hold)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if g, r := f.inner.gets.Load(), f.inner.ranges.Load(); g != 1 || r != 1 {
		t.Fatalf("%d gets and %d ranged gets for concurrent misses, want 1 and 1", g, r)
	}
}

// TestCachedDeleteAndPassThrough deletes a cached object through the
// cache, which then reads it as missing, and overwrites an object that is
// not cacheable, which it then reads anew.
func TestCachedDeleteAndPassThrough(t *testing.T) {
	f := newCacheFixture(t)
	ctx := context.Background()
	upload(t, f.inner, "blocks/e/index.bin", "index")
	upload(t, f.inner, "blocks/e/samples.parquet", "samples")
	upload(t, f.inner, "team/bucket-index.json", "v1")
	c, _ := f.open(t)
	getAll(t, c, "blocks/e/index.bin")
	r, err := c.ReaderAt(ctx, "blocks/e/samples.parquet")
	if err != nil {
		t.Fatal(err)
	}
	r.ReadAt(make([]byte, 3), 0)
	for _, name := range []string{"blocks/e/index.bin", "blocks/e/samples.parquet"} {
		if err := c.Delete(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Get(ctx, "blocks/e/index.bin"); !c.IsObjNotFoundErr(err) {
		t.Fatalf("Get of a deleted object: %v, want not found", err)
	}
	if _, err := c.ReaderAt(ctx, "blocks/e/samples.parquet"); !c.IsObjNotFoundErr(err) {
		t.Fatalf("ReaderAt of a deleted object: %v, want not found", err)
	}
	if n := testutil.ToFloat64(c.m.bytes.WithLabelValues("disk")); n != 0 {
		t.Fatalf("disk tier holds %v bytes after the deletions, want 0", n)
	}

	if got := string(getAll(t, c, "team/bucket-index.json")); got != "v1" {
		t.Fatalf("got %q", got)
	}
	upload(t, f.inner, "team/bucket-index.json", "v2")
	if got := string(getAll(t, c, "team/bucket-index.json")); got != "v2" {
		t.Fatalf("an object that is not cacheable read %q after its upload, want v2", got)
	}
}

// stuck is a Bucket whose ranged reads, while on, wait for their context
// to end, as a store that takes requests and never answers makes them.
type stuck struct {
	Bucket
	on atomic.Bool
}

func (s *stuck) GetRange(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	if s.on.Load() {
		<-ctx.Done()
		return nil, fmt.Errorf("bucket stuck: get %s: %w", name, ctx.Err())
	}
	return s.Bucket.GetRange(ctx, name, off, n)
}

// TestCachedReadTimeout reads a chunk from a store that does not answer:
// the read fails within the cache's ReadTimeout with an error that says
// the store is unavailable (never that the object is damaged), keeps
// nothing, and the same read succeeds once the store answers.
func TestCachedReadTimeout(t *testing.T) {
	d, _ := newTestDir(t)
	data := randomBytes(9, 3000)
	upload(t, d, "blocks/f/samples.parquet", string(data))
	s := &stuck{Bucket: d}
	c, err := NewCached(s, CacheOptions{Cacheable: immutable, MemoryBytes: 1 << 20, Dir: t.TempDir(), DiskBytes: 1 << 20,
		ChunkBytes: 1000, ReadTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.ReaderAt(context.Background(), "blocks/f/samples.parquet")
	if err != nil {
		t.Fatal(err)
	}
	s.on.Store(true)
	p := make([]byte, 100)
	if _, err := r.ReadAt(p, 1500); !IsUnavailable(err) {
		t.Fatalf("ReadAt from a store that does not answer: %v; want an UnavailableError", err)
	}
	s.on.Store(false)
	if _, err := r.ReadAt(p, 1500); err != nil || !bytes.Equal(p, data[1500:1600]) {
		t.Fatalf("ReadAt once the store answers: %v, or other bytes", err)
	}
}

// gated is a Bucket whose Gets wait for hold to close or their context
// to end, and say on entered that they have started.
type gated struct {
	Bucket
	hold    chan struct{}
	entered chan struct{}
}

func (g *gated) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	g.entered <- struct{}{}
	select {
	case <-g.hold:
		return g.Bucket.Get(ctx, name)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestCachedCanceledFetchNotShared cancels the caller whose fetch another
// caller of the same object waits for: the first fails with its
// cancellation, the second reads the object under its own context.
func TestCachedCanceledFetchNotShared(t *testing.T) {
	d, _ := newTestDir(t)
	upload(t, d, "blocks/g/index.bin", "index")
	g := &gated{Bucket: d, hold: make(chan struct{}), entered: make(chan struct{}, 4)}
	c, err := NewCached(g, CacheOptions{Cacheable: immutable, Dir: t.TempDir(), DiskBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ctxA, cancelA := context.WithCancel(context.Background())
	errA := make(chan error, 1)
	go func() {
		_, err := c.Get(ctxA, "blocks/g/index.bin")
		errA <- err
	}()
	<-g.entered // A's fetch is under way
	got := make(chan string, 1)
	go func() {
		rc, err := c.Get(context.Background(), "blocks/g/index.bin")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(rc)
		got <- string(b)
	}()
	cancelA()
	if err := <-errA; !errors.Is(err, context.Canceled) {
		t.Fatalf("the canceled caller: %v, want its cancellation", err)
	}
	<-g.entered // B's own fetch
	close(g.hold)
	if s := <-got; s != "index" {
		t.Fatalf("the other caller read %q, want the object", s)
	}
}

// TestCachedDiskFailing makes the disk tier unable to write an entry (a
// file where its directory must go, as a full or broken disk fails it):
// reads go on from the bucket, and answer right.
func TestCachedDiskFailing(t *testing.T) {
	f := newCacheFixture(t)
	data := randomBytes(10, 2000)
	upload(t, f.inner, "blocks/h/symbols.bin", string(data))
	c, _ := f.open(t)
	sub := filepath.Join(f.dir, filepath.Dir(relPath(entryKey("blocks/h/symbols.bin", partWhole))))
	if err := os.WriteFile(sub, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got := getAll(t, c, "blocks/h/symbols.bin"); !bytes.Equal(got, data) {
			t.Fatal("read with a failing disk tier differs from the object")
		}
	}
	if n := f.inner.gets.Load(); n != 2 {
		t.Fatalf("%d gets from the bucket, want 2: nothing kept", n)
	}
}
