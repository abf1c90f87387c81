// Package storage keeps profiles: per tenant a head in memory guarded by a
// write-ahead log on local disk, cut by time and size into immutable blocks
// in a bucket (package bucket: by default the local directory DIR/tenants),
// which a compactor merges into bigger ones and retention deletes.
//
// Every write is in the log before Append returns, so a client that was told
// its profile arrived finds it again after kill -9 and a restart: Open
// replays the log into the head. When a head is cut, its block's objects
// are uploaded, meta.json last, which makes the block exist; only then is
// the log truncated. Blocks are deleted meta.json first, and Open removes
// block directories without one. Queries fan out to the head, heads being
// written out, and the blocks that overlap their time range.
// docs/storage-format.md describes the files and the crash-safety
// protocol.
//
//	db, err := storage.Open(dir, logger, opts)
//	go db.Run(ctx) // cuts, compaction, retention
//	...
//	db.Flush(ctx)  // optional: write every head out before closing
//	db.Close()
//
// Opened with Options.ReadOnly, a store is a querier's: it holds no log
// and no head, serves the blocks of its bucket, and Run re-lists the
// bucket (Sync) to follow the blocks that other instances upload and
// delete. Options.SharedBucket is for an ingester beside others: it
// deletes nothing in the bucket. Options.Compactor makes a ReadOnly store
// the compactor of a shared bucket: under a lease object in the bucket
// (lease.go), it merges every ingester's blocks, applies retention, and
// deletes in two phases, a deletion mark first (marks.go, compactor.go).
//
// A DB is safe for concurrent use.
package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearth-profiler/hearth/internal/storage/bucket"
	"github.com/hearth-profiler/hearth/internal/storage/fsys"
	"github.com/hearth-profiler/hearth/internal/storage/wal"
)

// DB is an open store.
type DB struct {
	dir    string
	logger *slog.Logger
	opts   Options
	wal    *wal.WAL
	ids    idGenerator
	bkt    bucket.Bucket
	// ownBucket is set when Open made bkt, and Close closes it.
	ownBucket bool
	// instance names this store in the blocks it cuts, when it shares
	// its bucket (Options.SharedBucket); "" otherwise.
	instance string

	mu      sync.RWMutex
	tenants map[string]*tenant

	// cutMu serializes cuts and compactMu compaction and retention, so
	// that a long compaction does not hold back the cuts that keep heads
	// within MaxHeadBytes (writes are refused as behind past twice that).
	// Close takes both, compactMu first; nothing else holds both.
	cutMu     sync.Mutex
	compactMu sync.Mutex
	// closed is written under both cutMu and compactMu, read under either.
	closed bool
	// lastCut is the log segment the last cut started; every record of a
	// tenant whose head is empty is below it and in a block.
	lastCut int
	// cutSoon wakes Run when a head outgrows MaxHeadBytes between ticks,
	// so that memory stays near the limit under a fast stream of writes.
	cutSoon chan struct{}
	// appends counts Append calls, for Run to see when writes pause.
	appends atomic.Int64
	// cutFailures and compactFailures count failed runs of Run's work.
	cutFailures, compactFailures atomic.Int64
	// cutFailing is set while cuts fail (a bucket out of reach, a full
	// disk), nil when the last one succeeded.
	cutFailing atomic.Pointer[cutFailure]
	// quarantined counts the files moved aside as damaged.
	quarantined atomic.Int64
	// damagedReads counts blocks left out of queries because their data
	// was damaged.
	damagedReads atomic.Int64
	// behindRefusals counts appends refused with ErrBehind.
	behindRefusals atomic.Int64
	// syncFailures counts a ReadOnly store's syncs that failed.
	syncFailures atomic.Int64
	// snapIDs names the blocks written for HeadSnapshot.
	snapIDs idGenerator
	// blocksMarked and blocksDeleted count a compactor's deletion marks
	// and the marked blocks it deleted.
	blocksMarked, blocksDeleted atomic.Int64
	// lease is a compactor's side of the bucket's lease; nil for other
	// stores. leaseHeld is set while it holds it.
	lease     *lease
	leaseHeld atomic.Bool
}

// Open opens the store in dir: it cleans up what a crash left behind, opens
// the blocks, loads each tenant's checkpoint and replays the write-ahead
// log from there.
func Open(dir string, logger *slog.Logger, opts Options) (_ *DB, err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.Decode == nil {
		return nil, errors.New("open storage: Options.Decode is required")
	}
	opts.setDefaults()
	// db is not the named result: the deferred clean-up below needs it
	// after a failed return has set the result to nil.
	db := &DB{dir: dir, logger: logger, opts: opts, tenants: make(map[string]*tenant), cutSoon: make(chan struct{}, 1)}
	if err := opts.fs.MkdirAll(filepath.Join(dir, "tenants"), 0o755); err != nil {
		return nil, fmt.Errorf("create tenants dir: %w", err)
	}
	db.bkt = opts.Bucket
	if db.bkt == nil {
		if db.bkt, err = bucket.NewDirFS(filepath.Join(dir, "tenants"), opts.fs); err != nil {
			return nil, fmt.Errorf("open bucket: %w", err)
		}
		db.ownBucket = true
	}
	defer func() {
		if err != nil {
			db.closeBlocks()
			if db.ownBucket {
				db.bkt.Close()
			}
		}
	}()
	if c := opts.Compactor; c != nil {
		if !opts.ReadOnly {
			return nil, errors.New("open storage: a compactor's store (Options.Compactor) must be ReadOnly: it takes no writes")
		}
		lb := c.Lease
		if lb == nil {
			var ok bool
			if lb, ok = db.bkt.(bucket.ConditionalUploader); !ok {
				return nil, fmt.Errorf("open storage: bucket %s has no conditional writes, which the compactor's lease needs", db.bkt.Name())
			}
		}
		holder := c.Holder
		if holder == "" {
			holder = defaultHolder()
		}
		db.lease = &lease{bkt: lb, holder: holder, ttl: c.LeaseTTL, now: time.Now}
	}
	if opts.SharedBucket && !opts.ReadOnly {
		if db.instance, err = instanceName(dir, opts.fs); err != nil {
			return nil, err
		}
	}
	ctx := context.Background()
	if err := db.loadTenants(ctx); err != nil {
		return nil, err
	}
	if opts.ReadOnly {
		return db, nil
	}
	// A block holds its tenant's records of the log segments below its
	// WALSegment, and replay skips those. A log started afresh beside
	// blocks (a new local disk, with the blocks in an object store) must
	// not number its segments below theirs, or replay would skip records
	// that no block holds.
	first := 0
	for _, t := range db.tenants {
		for _, b := range t.blocks {
			if seg, ok := db.logSegment(b); ok {
				first = max(first, seg)
			}
		}
	}
	w, err := wal.Open(filepath.Join(dir, "wal"), logger, wal.Options{
		SegmentBytes: opts.WALSegmentBytes, Sync: opts.WALSync, FS: opts.walFS, FirstSegment: first,
	})
	if err != nil {
		return nil, fmt.Errorf("open wal: %w", err)
	}
	db.wal = w
	if err := db.replay(); err != nil {
		w.Close()
		return nil, err
	}
	if db.instance != "" && opts.KeepUploaded > 0 {
		db.trimIngesterView()
	}
	return db, nil
}

// loadTenants opens every tenant's blocks and checkpoint. A tenant is
// known by its local directory (checkpoint) or its directory in the
// bucket (blocks); with the default bucket they are one directory.
func (db *DB) loadTenants(ctx context.Context) error {
	names := map[string]bool{}
	if !db.opts.ReadOnly {
		ents, err := os.ReadDir(filepath.Join(db.dir, "tenants"))
		if err != nil {
			return fmt.Errorf("list tenants: %w", err)
		}
		for _, e := range ents {
			if e.IsDir() {
				names[e.Name()] = true
			}
		}
	}
	inBucket, err := db.bucketTenants(ctx)
	if err != nil {
		return err
	}
	for _, n := range inBucket {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, name := range sorted {
		id, err := parseTenantDirName(name)
		if err != nil {
			db.logger.Warn("skipping unknown directory in tenants", "dir", name)
			continue
		}
		t := newTenant(db.dir, id)
		if err := db.syncBlocks(ctx, t, true); err != nil {
			return err
		}
		if db.opts.ReadOnly {
			db.tenants[id] = t
			continue
		}
		raw, err := os.ReadFile(filepath.Join(t.dir, checkpointFile))
		if err == nil {
			var cp *checkpoint
			if cp, err = decodeCheckpoint(raw); err == nil {
				t.cpSegment, t.delta = cp.walSegment, cp.delta
			}
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			if qerr := db.quarantineCheckpoint(t, err); qerr != nil {
				// Replaying the log from its start needs nothing of
				// the file; the next cut replaces it.
				db.logger.Error("damaged checkpoint left in place, unread", "tenant", id, "err", qerr)
			}
		}
		db.opts.fs.Remove(filepath.Join(t.dir, checkpointFile+tmpSuffix))
		db.tenants[id] = t
	}
	return nil
}

// deleteLater leaves what Open could not delete of a crash's debris (a
// block directory without meta.json, a block replaced by compaction) to
// the next Compact, which retries it before compacting that tenant again.
// The store opens without it either way: it is not a block, or its
// profiles are in the block that replaced it, so failing the start for a
// deletion would stop the server for nothing.
func (db *DB) deleteLater(t *tenant, dir string, err error) {
	db.logger.Warn("could not remove what a crash left; compaction will retry", "tenant", t.id, "dir", dir, "err", err)
	t.undeleted = append(t.undeleted, dir)
}

func closeAll(bs map[string]*block) {
	for _, b := range bs {
		b.close()
	}
}

// Close waits for maintenance in progress, then closes the log and the
// blocks. Data in heads stays in the log for the next Open; call Flush
// first to write it into blocks instead.
func (db *DB) Close() error {
	db.compactMu.Lock()
	defer db.compactMu.Unlock()
	db.cutMu.Lock()
	defer db.cutMu.Unlock()
	if db.closed {
		return nil
	}
	db.closed = true
	var err error
	if db.wal != nil {
		err = db.wal.Close()
	}
	db.closeBlocks()
	if db.ownBucket {
		err = errors.Join(err, db.bkt.Close())
	}
	return err
}

func (db *DB) closeBlocks() {
	for _, t := range db.tenants {
		t.blocksMu.Lock()
		for _, b := range t.blocks {
			b.close()
		}
		t.blocks = nil
		t.blocksMu.Unlock()
	}
}

// instanceFile holds the name of a store that shares its bucket.
const instanceFile = "instance"

// instanceName returns the name of the store in dir, kept in
// DIR/instance, and makes one the first time. It goes into the meta.json
// of the blocks the store cuts, so that its log's replay goes by the
// segments of its own blocks alone: another instance's blocks count the
// segments of another log, and a number above this log's would make
// replay skip records that no block holds.
func instanceName(dir string, fs fsys.FS) (string, error) {
	path := filepath.Join(dir, instanceFile)
	raw, err := os.ReadFile(path)
	if err == nil {
		if name := strings.TrimSpace(string(raw)); name != "" {
			return name, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read instance name: %w", err)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	name := hex.EncodeToString(b[:])
	if err := fsys.ReplaceFile(fs, path, path+tmpSuffix, []byte(name+"\n")); err != nil {
		return "", fmt.Errorf("write instance name: %w", err)
	}
	return name, nil
}

// logSegment returns the segment of this store's log below which b holds
// every record of its tenant, and false when b says nothing of this log.
// It is b's WALSegment, unless the store shares its bucket: then b's
// WALSegment counts another instance's log unless this one cut b, and a
// block a compactor merged says it per instance (Instances).
func (db *DB) logSegment(b *block) (int, bool) {
	if db.instance == "" || b.meta.Instance == db.instance {
		return b.meta.WALSegment, true
	}
	seg, ok := b.meta.Instances[db.instance]
	return seg, ok
}
