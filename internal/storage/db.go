// Package storage keeps profiles: per tenant a head in memory guarded by a
// write-ahead log, cut by time and size into immutable blocks on disk,
// which a compactor merges into bigger ones and retention deletes.
//
// Every write is in the log before Append returns, so a client that was told
// its profile arrived finds it again after kill -9 and a restart: Open
// replays the log into the head. When a head is cut, its block is written
// to a temporary directory, synced and renamed into place; only then is the
// log truncated. Queries fan out to the head, heads being written out, and
// the blocks that overlap their time range. docs/storage-format.md
// describes the files and the crash-safety protocol.
//
//	db, err := storage.Open(dir, logger, opts)
//	go db.Run(ctx) // cuts, compaction, retention
//	...
//	db.Flush(ctx)  // optional: write every head out before closing
//	db.Close()
//
// A DB is safe for concurrent use.
package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hearth-profiler/hearth/internal/storage/wal"
)

// DB is an open store.
type DB struct {
	dir    string
	logger *slog.Logger
	opts   Options
	wal    *wal.WAL
	ids    idGenerator

	mu      sync.RWMutex
	tenants map[string]*tenant

	// maintMu serializes cuts, compaction, retention and Close.
	maintMu sync.Mutex
	closed  bool
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
}

// Open opens the store in dir: it cleans up what a crash left behind, opens
// the blocks, loads each tenant's checkpoint and replays the write-ahead
// log from there.
func Open(dir string, logger *slog.Logger, opts Options) (*DB, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.Decode == nil {
		return nil, errors.New("open storage: Options.Decode is required")
	}
	opts.setDefaults()
	db := &DB{dir: dir, logger: logger, opts: opts, tenants: make(map[string]*tenant), cutSoon: make(chan struct{}, 1)}
	if err := os.MkdirAll(filepath.Join(dir, "tenants"), 0o755); err != nil {
		return nil, fmt.Errorf("create tenants dir: %w", err)
	}
	if err := db.loadTenants(); err != nil {
		db.closeBlocks()
		return nil, err
	}
	w, err := wal.Open(filepath.Join(dir, "wal"), logger, wal.Options{
		SegmentBytes: opts.WALSegmentBytes, Sync: opts.WALSync,
	})
	if err != nil {
		db.closeBlocks()
		return nil, fmt.Errorf("open wal: %w", err)
	}
	db.wal = w
	if err := db.replay(); err != nil {
		w.Close()
		db.closeBlocks()
		return nil, err
	}
	return db, nil
}

// loadTenants opens every tenant's blocks and checkpoint.
func (db *DB) loadTenants() error {
	ents, err := os.ReadDir(filepath.Join(db.dir, "tenants"))
	if err != nil {
		return fmt.Errorf("list tenants: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		id, err := parseTenantDirName(e.Name())
		if err != nil {
			db.logger.Warn("skipping unknown directory in tenants", "dir", e.Name())
			continue
		}
		t := newTenant(db.dir, id)
		if err := db.loadBlocks(t); err != nil {
			return err
		}
		raw, err := os.ReadFile(filepath.Join(t.dir, checkpointFile))
		switch {
		case err == nil:
			cp, err := decodeCheckpoint(raw)
			if err != nil {
				return fmt.Errorf("tenant %s: %w", id, err)
			}
			t.cpSegment, t.delta = cp.walSegment, cp.delta
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("tenant %s: read checkpoint: %w", id, err)
		}
		os.Remove(filepath.Join(t.dir, checkpointFile+tmpSuffix))
		db.tenants[id] = t
	}
	return nil
}

// loadBlocks opens a tenant's blocks after removing what a crash left:
// temporary directories, and the sources of a compacted block that was
// written but whose sources were not all deleted yet.
func (db *DB) loadBlocks(t *tenant) error {
	bdir := t.blocksDir()
	ents, err := os.ReadDir(bdir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tenant %s: list blocks: %w", t.id, err)
	}
	metas := map[string]*blockMeta{}
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, tmpSuffix) {
			db.logger.Info("removing leftover temporary block", "tenant", t.id, "block", name)
			if err := os.RemoveAll(filepath.Join(bdir, name)); err != nil {
				return fmt.Errorf("tenant %s: remove %s: %w", t.id, name, err)
			}
			continue
		}
		if _, err := parseID(name); err != nil || !e.IsDir() {
			db.logger.Warn("skipping unknown entry in blocks", "tenant", t.id, "block", name)
			continue
		}
		m, err := readMeta(filepath.Join(bdir, name))
		if err != nil {
			return fmt.Errorf("tenant %s: block %s: %w", t.id, name, err)
		}
		metas[name] = m
	}
	replaced := map[string]bool{}
	for _, m := range metas {
		for _, src := range m.Compaction.Sources {
			replaced[src] = true
		}
	}
	ids := make([]string, 0, len(metas))
	for id := range metas {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if replaced[id] {
			db.logger.Info("removing block replaced by compaction", "tenant", t.id, "block", id)
			if err := removeBlockDir(bdir, id); err != nil {
				return fmt.Errorf("tenant %s: %w", t.id, err)
			}
			continue
		}
		b, err := openBlock(filepath.Join(bdir, id))
		if err != nil {
			return fmt.Errorf("tenant %s: open block %s: %w", t.id, id, err)
		}
		t.blocks = append(t.blocks, b)
	}
	sortBlocks(t.blocks)
	return nil
}

// removeBlockDir deletes a block: first a rename out of the block
// namespace, so that a crash mid-delete leaves a temporary directory rather
// than a partial block.
func removeBlockDir(bdir, id string) error {
	tmp := filepath.Join(bdir, id+tmpSuffix)
	if err := os.Rename(filepath.Join(bdir, id), tmp); err != nil {
		return fmt.Errorf("remove block %s: %w", id, err)
	}
	if err := syncDir(bdir); err != nil {
		return fmt.Errorf("remove block %s: %w", id, err)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove block %s: %w", id, err)
	}
	return nil
}

// Close waits for maintenance in progress, then closes the log and the
// blocks. Data in heads stays in the log for the next Open; call Flush
// first to write it into blocks instead.
func (db *DB) Close() error {
	db.maintMu.Lock()
	defer db.maintMu.Unlock()
	if db.closed {
		return nil
	}
	db.closed = true
	err := db.wal.Close()
	db.closeBlocks()
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
