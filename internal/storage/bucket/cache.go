package bucket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Cached is a Bucket in front of another, usually an object store, that
// keeps copies of immutable objects in memory and on local disk, each
// tier bounded in bytes and evicting the least recently used:
//
//   - Get of an immutable object is served whole from the disk tier, or
//     fetched once and kept there (not in memory: see Get);
//   - ReaderAt of an immutable object reads it in aligned chunks of
//     ChunkBytes, each a cache entry, fetched with one ranged GET when
//     missing: the many small reads of opening a block (Parquet footers,
//     page indexes, the check of every page header) and of a query cost a
//     few GETs per chunk instead of one per read, and none once cached;
//   - the size of an object opened by ReaderAt is an entry too, so that a
//     warm open does not ask the store for it.
//
// Which objects are immutable is the caller's to say (Cacheable): the
// names of every other object, and every operation that lists, writes or
// checks existence, go to the bucket underneath. Deleting or uploading an
// object through Cached evicts it from both tiers. An object deleted by
// another process stays in the cache until evicted: Cacheable must only
// accept objects that the caller reads after checking, in the store, that
// they still exist (a block's data files, read after its meta.json).
//
// The disk tier is a directory of files, each holding one entry with its
// name and a CRC-32C: a file that a crash or the disk damaged is found
// when read, removed and fetched again. It survives restarts; its
// least-recently-used order is the files' modification times, which a hit
// refreshes. Concurrent misses of one entry fetch it once.
type Cached struct {
	Bucket // underneath; what Cached does not override goes to it

	cacheable func(string) bool
	chunk     int64
	timeout   time.Duration
	mem       *memTier  // nil when off
	disk      *diskTier // nil when off
	log       *slog.Logger
	m         *cacheMetrics

	mu     sync.Mutex
	flight map[string]*fetchCall
	// lastWarn is when the disk tier's last failure was logged, in
	// unix nanoseconds.
	lastWarn atomic.Int64
}

// DefaultChunkBytes is the size of the chunks in which Cached reads and
// caches the objects opened with ReaderAt. A compressed page of a block's
// samples is tens of KiB: a chunk holds many, so that walking a column's
// page headers costs a GET per chunk, while a query that reads a few
// pages reads at most a chunk more than it needs.
const DefaultChunkBytes = 1 << 20

// CacheOptions configure NewCached.
type CacheOptions struct {
	// Cacheable says whether the object of a name is immutable, so that
	// Cached may keep it: a name never reused for other content, and read
	// only after its existence is checked through a name that is not
	// cacheable. Nil caches nothing.
	Cacheable func(name string) bool
	// MemoryBytes bounds the memory tier; 0 turns it off.
	MemoryBytes int64
	// Dir is the directory of the disk tier; it is created when missing.
	Dir string
	// DiskBytes bounds the disk tier; 0, or Dir "", turns it off.
	DiskBytes int64
	// ChunkBytes is the size of the chunks of ReaderAt;
	// 0 means DefaultChunkBytes.
	ChunkBytes int64
	// ReadTimeout bounds the fetch of one chunk, its ranged GET and
	// body: ReadAt has no context (the Parquet reader gives none), so
	// without it a store that stops answering holds a query until the
	// HTTP client gives up. 0 leaves it to the client.
	ReadTimeout time.Duration
	// Registerer takes the cache's metrics (hearth_bucket_cache_*); nil
	// keeps them unregistered.
	Registerer prometheus.Registerer
	// Logger takes the damaged disk files found; nil discards.
	Logger *slog.Logger
}

// NewCached returns b behind a cache. Closing it closes b. With both
// tiers off it caches nothing, and reads as b does.
func NewCached(b Bucket, opts CacheOptions) (*Cached, error) {
	c := &Cached{
		Bucket:    b,
		cacheable: opts.Cacheable,
		chunk:     opts.ChunkBytes,
		timeout:   opts.ReadTimeout,
		log:       opts.Logger,
		m:         newCacheMetrics(opts.Registerer),
		flight:    map[string]*fetchCall{},
	}
	if c.cacheable == nil {
		c.cacheable = func(string) bool { return false }
	}
	if c.chunk <= 0 {
		c.chunk = DefaultChunkBytes
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if opts.MemoryBytes > 0 {
		c.mem = newMemTier(opts.MemoryBytes, c.m)
	}
	if opts.DiskBytes > 0 && opts.Dir != "" {
		d, err := openDiskTier(opts.Dir, opts.DiskBytes, c.m, c.log)
		if err != nil {
			return nil, fmt.Errorf("bucket %s: cache: %w", b.Name(), err)
		}
		c.disk = d
	}
	return c, nil
}

// on says whether c caches anything at all.
func (c *Cached) on(name string) bool {
	return (c.mem != nil || c.disk != nil) && !strings.Contains(name, "\n") && c.cacheable(name)
}

// Parts of an object that are cache entries, after its name.
const (
	partWhole = "obj"
	partSize  = "size"
	// partChunk is followed by the chunk's number.
	partChunk = "c"
)

// entryKey names an entry: an object's name and a part of it. Names with
// a newline are not cached (on), so the key is unambiguous.
func entryKey(name, part string) string { return name + "\n" + part }

// fetchCall is a fetch that concurrent misses of one entry share.
type fetchCall struct {
	done chan struct{}
	data []byte
	err  error
}

// get returns the entry of key from a tier, or fetches it with fetch and
// keeps it; mem is the memory tier, or nil to keep the entry on disk
// only. The bytes returned are shared: the caller must not change them.
func (c *Cached) get(key string, mem *memTier, fetch func() ([]byte, error)) ([]byte, error) {
	if mem != nil {
		if data, ok := mem.get(key); ok {
			c.m.requests.WithLabelValues("memory", "hit").Inc()
			if c.disk != nil {
				// What memory serves is in use: the disk tier must
				// not evict it first, or a restart would miss it.
				c.disk.touch(key)
			}
			return data, nil
		}
		c.m.requests.WithLabelValues("memory", "miss").Inc()
	}
	c.mu.Lock()
	if call, ok := c.flight[key]; ok {
		c.mu.Unlock()
		<-call.done
		return call.data, call.err
	}
	call := &fetchCall{done: make(chan struct{})}
	c.flight[key] = call
	c.mu.Unlock()

	call.data, call.err = c.load(key, mem, fetch)

	c.mu.Lock()
	delete(c.flight, key)
	c.mu.Unlock()
	close(call.done)
	return call.data, call.err
}

// getCtx is get for a caller whose fetch runs under its context ctx. A
// concurrent miss shares the fetch of whichever caller came first: when
// that one's context ends, the others fetch again under their own.
func (c *Cached) getCtx(ctx context.Context, key string, mem *memTier, fetch func() ([]byte, error)) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		data, err := c.get(key, mem, fetch)
		if err == nil || ctx.Err() != nil || attempt == 2 ||
			!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			return data, err
		}
	}
}

// load reads the entry of key from the disk tier, or fetches it, and
// keeps it in the tiers that miss it.
func (c *Cached) load(key string, mem *memTier, fetch func() ([]byte, error)) ([]byte, error) {
	if c.disk != nil {
		if data, ok := c.disk.get(key); ok {
			c.m.requests.WithLabelValues("disk", "hit").Inc()
			if mem != nil {
				mem.put(key, data)
			}
			return data, nil
		}
		c.m.requests.WithLabelValues("disk", "miss").Inc()
	}
	data, err := fetch()
	if err != nil {
		return nil, err
	}
	if c.disk != nil {
		if err := c.disk.put(key, data); err != nil {
			// The cache is an optimisation: a full or failing disk
			// must not fail the read, nor fill the log with a line
			// per read.
			if now := time.Now().UnixNano(); now-c.lastWarn.Load() > int64(time.Minute) {
				c.lastWarn.Store(now)
				c.log.Warn("bucket cache: cannot keep an object on disk (said at most once a minute)", "key", key, "err", err)
			}
		}
	}
	if mem != nil {
		mem.put(key, data)
	}
	return data, nil
}

// evict removes every entry of the object name from both tiers.
func (c *Cached) evict(name string) {
	if c.mem != nil {
		c.mem.evictObject(name)
	}
	if c.disk != nil {
		c.disk.evictObject(name)
	}
}

// Get returns a reader of the whole object, from the disk tier when the
// object is cacheable. Whole objects skip the memory tier: their readers
// (a block's symbols, index and spans) decode them and keep what they
// decoded while the block is open, so their bytes in memory too would
// double them for a hit that comes only when a block is opened again.
func (c *Cached) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if c.disk == nil || !c.on(name) {
		return c.Bucket.Get(ctx, name)
	}
	data, err := c.getCtx(ctx, entryKey(name, partWhole), nil, func() ([]byte, error) {
		rc, err := c.Bucket.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		data, err := io.ReadAll(rc)
		if err != nil {
			return nil, fmt.Errorf("bucket %s: get %s: %w", c.Name(), name, err)
		}
		return data, nil
	})
	if err != nil {
		return nil, err
	}
	return &cachedObject{Reader: bytes.NewReader(data), name: name, size: int64(len(data))}, nil
}

// cachedObject reads a whole object from the cache. Stat tells its size,
// as a local file's does, so that a reader that reads it whole allocates
// its buffer once rather than growing one.
type cachedObject struct {
	*bytes.Reader
	name string
	size int64
}

func (o *cachedObject) Close() error { return nil }

// Stat returns the object's size.
func (o *cachedObject) Stat() (fs.FileInfo, error) { return objectInfo{o}, nil }

type objectInfo struct{ o *cachedObject }

func (i objectInfo) Name() string       { return path.Base(i.o.name) }
func (i objectInfo) Size() int64        { return i.o.size }
func (i objectInfo) Mode() fs.FileMode  { return 0o444 }
func (i objectInfo) ModTime() time.Time { return time.Time{} }
func (i objectInfo) IsDir() bool        { return false }
func (i objectInfo) Sys() any           { return nil }

// ReaderAt opens the object for random reads, through the cache's chunks
// when it is cacheable.
func (c *Cached) ReaderAt(ctx context.Context, name string) (ReaderAt, error) {
	if !c.on(name) {
		return c.Bucket.ReaderAt(ctx, name)
	}
	raw, err := c.getCtx(ctx, entryKey(name, partSize), c.mem, func() ([]byte, error) {
		a, err := c.Bucket.Attributes(ctx, name)
		if err != nil {
			return nil, err
		}
		return strconv.AppendInt(nil, a.Size, 10), nil
	})
	if err != nil {
		return nil, err
	}
	size, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || size < 0 {
		return nil, fmt.Errorf("bucket %s: cache: size of %s: %q", c.Name(), name, raw)
	}
	return &chunkReaderAt{c: c, name: name, size: size}, nil
}

// Upload writes the object and evicts what the cache held of it.
func (c *Cached) Upload(ctx context.Context, name string, r io.Reader) error {
	if c.on(name) {
		defer c.evict(name)
	}
	return c.Bucket.Upload(ctx, name, r)
}

// Delete removes the object and evicts what the cache held of it, even
// when the store fails: the object may be gone all the same.
func (c *Cached) Delete(ctx context.Context, name string) error {
	if c.on(name) {
		c.evict(name)
	}
	return c.Bucket.Delete(ctx, name)
}

// chunkReaderAt reads a cacheable object by chunks of the cache.
type chunkReaderAt struct {
	c    *Cached
	name string
	size int64
}

func (r *chunkReaderAt) Size() int64 { return r.size }

func (r *chunkReaderAt) Close() error { return nil }

// ReadAt copies from the chunks that [off, off+len(p)) covers, each
// fetched with one ranged GET when no tier holds it, within the cache's
// ReadTimeout.
func (r *chunkReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("bucket %s: read %s: negative offset %d", r.c.Name(), r.name, off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if off >= r.size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), r.size-off)
	var n int64
	for n < want {
		pos := off + n
		k := pos / r.c.chunk
		data, err := r.chunk(k)
		if err != nil {
			return int(n), err
		}
		n += int64(copy(p[n:want], data[pos-k*r.c.chunk:]))
	}
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

// chunk returns chunk k of the object.
func (r *chunkReaderAt) chunk(k int64) ([]byte, error) {
	start := k * r.c.chunk
	length := min(r.c.chunk, r.size-start)
	data, err := r.c.get(entryKey(r.name, partChunk+strconv.FormatInt(k, 10)), r.c.mem, func() ([]byte, error) {
		return r.fetch(start, length)
	})
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != length {
		// A size entry and a chunk entry that disagree: the object was
		// replaced, against Cacheable's promise. Drop both, and fail
		// this read as the store's, not the block's, fault: the next
		// one reads the object anew.
		r.c.evict(r.name)
		return nil, &UnavailableError{Bucket: r.c.Name(), Op: "get", Name: r.name,
			Err: fmt.Errorf("cache: chunk %d holds %d bytes, want %d: the object changed; evicted", k, len(data), length)}
	}
	return data, nil
}

// fetch reads length bytes at start from the bucket, within the cache's
// ReadTimeout.
func (r *chunkReaderAt) fetch(start, length int64) ([]byte, error) {
	ctx := context.Background()
	if r.c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.c.timeout)
		defer cancel()
	}
	buf, err := func() ([]byte, error) {
		rc, err := r.c.Bucket.GetRange(ctx, r.name, start, length)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		buf := make([]byte, length)
		m, err := io.ReadFull(rc, buf)
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			// Objects that Cacheable accepts are never replaced: a
			// shorter one is damaged.
			return nil, fmt.Errorf("bucket %s: read %s: %d bytes at %d, want %d: object shorter than its %d bytes",
				r.c.Name(), r.name, m, start, length, r.size)
		}
		return buf, err
	}()
	if err != nil && ctx.Err() == context.DeadlineExceeded {
		// The store's fault, never the object's.
		return nil, &UnavailableError{Bucket: r.c.Name(), Op: "get", Name: r.name,
			Err: fmt.Errorf("no answer within %s", r.c.timeout)}
	}
	return buf, err
}

// The conditional writes of the bucket underneath, for the compactor's
// lease, which would otherwise not find them behind the cache. The lease
// is not an immutable object, so nothing of it is cached; an object
// written here is evicted all the same, as by Upload.

// GetWithETag is ConditionalUploader's, of the bucket underneath; it
// fails with ErrNoConditionalWrites when that bucket has none.
func (c *Cached) GetWithETag(ctx context.Context, name string) ([]byte, string, error) {
	cu, ok := c.Bucket.(ConditionalUploader)
	if !ok {
		return nil, "", ErrNoConditionalWrites
	}
	return cu.GetWithETag(ctx, name)
}

// UploadIfAbsent is ConditionalUploader's, of the bucket underneath.
func (c *Cached) UploadIfAbsent(ctx context.Context, name string, data []byte) (string, error) {
	cu, ok := c.Bucket.(ConditionalUploader)
	if !ok {
		return "", ErrNoConditionalWrites
	}
	if c.on(name) {
		defer c.evict(name)
	}
	return cu.UploadIfAbsent(ctx, name, data)
}

// UploadIfMatch is ConditionalUploader's, of the bucket underneath.
func (c *Cached) UploadIfMatch(ctx context.Context, name string, data []byte, etag string) (string, error) {
	cu, ok := c.Bucket.(ConditionalUploader)
	if !ok {
		return "", ErrNoConditionalWrites
	}
	if c.on(name) {
		defer c.evict(name)
	}
	return cu.UploadIfMatch(ctx, name, data, etag)
}
