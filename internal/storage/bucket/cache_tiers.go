package bucket

import (
	"bytes"
	clist "container/list"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// cacheMetrics are Cached's metrics.
type cacheMetrics struct {
	requests  *prometheus.CounterVec // tier, result
	bytes     *prometheus.GaugeVec   // tier
	entries   *prometheus.GaugeVec   // tier
	evictions *prometheus.CounterVec // tier
	damaged   prometheus.Counter
}

func newCacheMetrics(reg prometheus.Registerer) *cacheMetrics {
	m := &cacheMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hearth_bucket_cache_requests_total",
			Help: "Lookups in the cache of immutable bucket objects, by tier (memory, disk) and result (hit, miss). A chunk is looked up on disk after a memory miss, a whole object on disk only; a disk miss is a request to the bucket.",
		}, []string{"tier", "result"}),
		bytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hearth_bucket_cache_bytes",
			Help: "Bytes held by the cache of bucket objects, by tier.",
		}, []string{"tier"}),
		entries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hearth_bucket_cache_entries",
			Help: "Entries (whole objects, chunks of objects, sizes) held by the cache of bucket objects, by tier.",
		}, []string{"tier"}),
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hearth_bucket_cache_evictions_total",
			Help: "Entries that the cache of bucket objects evicted to stay within its bounds, by tier.",
		}, []string{"tier"}),
		damaged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hearth_bucket_cache_damaged_total",
			Help: "Files of the disk cache of bucket objects found damaged (checksum, length or name wrong), removed and fetched again.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.bytes, m.entries, m.evictions, m.damaged)
	}
	return m
}

// memTier is the memory tier: entries in least-recently-used order,
// within max bytes.
type memTier struct {
	max int64
	m   *cacheMetrics

	mu    sync.Mutex
	lru   *clist.List // of *memEntry, most recent first
	byKey map[string]*clist.Element
	bytes int64
}

type memEntry struct {
	key  string
	data []byte
}

func newMemTier(max int64, m *cacheMetrics) *memTier {
	return &memTier{max: max, m: m, lru: clist.New(), byKey: map[string]*clist.Element{}}
}

func (t *memTier) get(key string) ([]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.byKey[key]
	if !ok {
		return nil, false
	}
	t.lru.MoveToFront(e)
	return e.Value.(*memEntry).data, true
}

// put keeps data under key, evicting the least recently used entries to
// make room. An entry larger than a quarter of the tier is not kept: one
// large object must not empty the tier.
func (t *memTier) put(key string, data []byte) {
	size := int64(len(data))
	if size > t.max/4 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.byKey[key]; ok {
		t.removeLocked(e)
	}
	t.byKey[key] = t.lru.PushFront(&memEntry{key: key, data: data})
	t.bytes += size
	for t.bytes > t.max {
		t.removeLocked(t.lru.Back())
		t.m.evictions.WithLabelValues("memory").Inc()
	}
	t.gaugesLocked()
}

func (t *memTier) removeLocked(e *clist.Element) {
	me := e.Value.(*memEntry)
	t.lru.Remove(e)
	delete(t.byKey, me.key)
	t.bytes -= int64(len(me.data))
}

func (t *memTier) gaugesLocked() {
	t.m.bytes.WithLabelValues("memory").Set(float64(t.bytes))
	t.m.entries.WithLabelValues("memory").Set(float64(t.lru.Len()))
}

// evictObject removes the entries of the object name. It walks every
// entry: objects are deleted rarely, and the tier holds thousands.
func (t *memTier) evictObject(name string) {
	prefix := entryKey(name, "")
	t.mu.Lock()
	defer t.mu.Unlock()
	for e := t.lru.Front(); e != nil; {
		next := e.Next()
		if strings.HasPrefix(e.Value.(*memEntry).key, prefix) {
			t.removeLocked(e)
		}
		e = next
	}
	t.gaugesLocked()
}

// diskTier is the disk tier: a file per entry under dir, in
// sub-directories by the first two hex digits of the entry's object's
// hash, named "<object hash>-<part>". The least-recently-used order is
// the files' modification times, read when the tier opens.
type diskTier struct {
	dir string
	max int64
	m   *cacheMetrics
	log *slog.Logger

	mu     sync.Mutex
	lru    *clist.List // of *diskEntry, most recent first
	byPath map[string]*clist.Element
	bytes  int64
}

type diskEntry struct {
	rel  string // path under dir
	size int64
}

// diskMagic begins every file of the disk tier; its last byte is the
// format's version.
const diskMagic = "hcache\x00\x01"

// diskTempPrefix begins the names of files being written.
const diskTempPrefix = ".tmp-"

// diskOverhead is the bytes of a file besides its key and data: the
// magic, the key's length and the CRC-32C.
const diskOverhead = len(diskMagic) + 4 + 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// openDiskTier opens the tier in dir, creating dir, and takes in the
// files of an earlier process, oldest first, evicting past max.
func openDiskTier(dir string, max int64, m *cacheMetrics, log *slog.Logger) (*diskTier, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	t := &diskTier{dir: dir, max: max, m: m, log: log, lru: clist.New(), byPath: map[string]*clist.Element{}}
	type found struct {
		rel   string
		size  int64
		mtime time.Time
	}
	var files []found
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if strings.HasPrefix(d.Name(), diskTempPrefix) {
			// A write that a crash cut short.
			os.Remove(p)
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		files = append(files, found{rel: rel, size: fi.Size(), mtime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read disk cache %s: %w", dir, err)
	}
	slices.SortFunc(files, func(a, b found) int { return a.mtime.Compare(b.mtime) })
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, f := range files {
		t.addLocked(f.rel, f.size)
	}
	t.shrinkLocked()
	t.gaugesLocked()
	return t, nil
}

// objectHash names the files of an object's entries.
func objectHash(name string) string {
	h := sha256.Sum256([]byte(name))
	return hex.EncodeToString(h[:16])
}

// relPath is the path under the tier's directory of the entry of key.
func relPath(key string) string {
	name, part, _ := strings.Cut(key, "\n")
	h := objectHash(name)
	return filepath.Join(h[:2], h+"-"+part)
}

func (t *diskTier) addLocked(rel string, size int64) {
	if e, ok := t.byPath[rel]; ok {
		t.removeLocked(e)
	}
	t.byPath[rel] = t.lru.PushFront(&diskEntry{rel: rel, size: size})
	t.bytes += size
}

func (t *diskTier) removeLocked(e *clist.Element) {
	de := e.Value.(*diskEntry)
	t.lru.Remove(e)
	delete(t.byPath, de.rel)
	t.bytes -= de.size
}

// shrinkLocked evicts the least recently used entries past max.
func (t *diskTier) shrinkLocked() {
	for t.bytes > t.max && t.lru.Len() > 0 {
		e := t.lru.Back()
		rel := e.Value.(*diskEntry).rel
		t.removeLocked(e)
		os.Remove(filepath.Join(t.dir, rel))
		t.m.evictions.WithLabelValues("disk").Inc()
	}
}

func (t *diskTier) gaugesLocked() {
	t.m.bytes.WithLabelValues("disk").Set(float64(t.bytes))
	t.m.entries.WithLabelValues("disk").Set(float64(t.lru.Len()))
}

// touch makes the entry of key the most recently used, if held, without
// reading it.
func (t *diskTier) touch(key string) {
	rel := relPath(key)
	t.mu.Lock()
	if e, ok := t.byPath[rel]; ok {
		t.lru.MoveToFront(e)
	}
	t.mu.Unlock()
}

// get reads the entry of key, checking it. A damaged file is removed:
// it is a miss.
func (t *diskTier) get(key string) ([]byte, bool) {
	rel := relPath(key)
	t.mu.Lock()
	_, ok := t.byPath[rel]
	t.mu.Unlock()
	if !ok {
		return nil, false
	}
	p := filepath.Join(t.dir, rel)
	raw, err := os.ReadFile(p)
	if err == nil {
		var data []byte
		if data, err = decodeDiskEntry(raw, key); err == nil {
			t.mu.Lock()
			if e, ok := t.byPath[rel]; ok {
				t.lru.MoveToFront(e)
			}
			t.mu.Unlock()
			// The order of the next start; failing to keep it loses
			// nothing but that.
			now := time.Now()
			os.Chtimes(p, now, now)
			return data, true
		}
		t.m.damaged.Inc()
		t.log.Warn("bucket cache: damaged file removed; the object is fetched again", "file", p, "err", err)
	} else if !errors.Is(err, fs.ErrNotExist) {
		t.log.Warn("bucket cache: cannot read a file; the object is fetched again", "file", p, "err", err)
	}
	t.mu.Lock()
	if e, ok := t.byPath[rel]; ok {
		t.removeLocked(e)
	}
	os.Remove(p)
	t.gaugesLocked()
	t.mu.Unlock()
	return nil, false
}

// decodeDiskEntry returns the data of a file of the tier, checking its
// magic, its checksum and that it holds key.
func decodeDiskEntry(raw []byte, key string) ([]byte, error) {
	if len(raw) < diskOverhead || string(raw[:len(diskMagic)]) != diskMagic {
		return nil, errors.New("not a cache file, or cut short")
	}
	body, sum := raw[:len(raw)-4], binary.LittleEndian.Uint32(raw[len(raw)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, errors.New("checksum mismatch")
	}
	rest := body[len(diskMagic):]
	klen := int64(binary.LittleEndian.Uint32(rest))
	rest = rest[4:]
	if klen > int64(len(rest)) || string(rest[:klen]) != key {
		return nil, errors.New("holds another entry")
	}
	return rest[klen:], nil
}

// put writes the entry of key: to a temporary file renamed into place,
// so that a reader never sees a part of it. It is not synced: a file
// that a crash cuts short fails its checksum.
func (t *diskTier) put(key string, data []byte) error {
	size := int64(diskOverhead + len(key) + len(data))
	if size > t.max {
		return nil
	}
	rel := relPath(key)
	p := filepath.Join(t.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p), diskTempPrefix+"*")
	if err != nil {
		return err
	}
	var hdr bytes.Buffer
	hdr.WriteString(diskMagic)
	hdr.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(key))))
	hdr.WriteString(key)
	crc := crc32.Update(crc32.Checksum(hdr.Bytes(), castagnoli), castagnoli, data)
	_, err = f.Write(hdr.Bytes())
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		_, err = f.Write(binary.LittleEndian.AppendUint32(nil, crc))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.addLocked(rel, size)
	t.shrinkLocked()
	t.gaugesLocked()
	return nil
}

// evictObject removes the files of the object name.
func (t *diskTier) evictObject(name string) {
	h := objectHash(name)
	t.mu.Lock()
	defer t.mu.Unlock()
	files, _ := filepath.Glob(filepath.Join(t.dir, h[:2], h+"-*"))
	for _, p := range files {
		rel, err := filepath.Rel(t.dir, p)
		if err != nil {
			continue
		}
		if e, ok := t.byPath[rel]; ok {
			t.removeLocked(e)
		}
		os.Remove(p)
	}
	t.gaugesLocked()
}
