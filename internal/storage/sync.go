package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// A store opened with Options.ReadOnly (a querier) holds no head and
// writes nothing: it serves the blocks it finds in the bucket, and Sync
// brings its view in line with the bucket again, as other instances (the
// ingesters) upload blocks and a compactor replaces and deletes them.
// Open loads a store's blocks with the same code, syncBlocks, once.

// ErrReadOnly is returned by the appends of a store opened with
// Options.ReadOnly.
var ErrReadOnly = errors.New("storage is read-only: this instance serves the blocks of its bucket and takes no writes")

// Sync lists the bucket's tenants and blocks, opens the blocks it does not
// hold yet, once their meta.json is there, and drops those gone from the
// bucket or replaced by a compacted block it holds. A query that is
// reading a dropped block finishes first: the swap waits for it, and the
// block is closed after. A block that cannot be read is left out and
// logged, never fatal: retried at the next Sync when the bucket failed
// to serve it, left out for good when it is damaged. It is for a ReadOnly
// store, whose blocks nothing else changes; Run calls it every
// Options.SyncInterval.
func (db *DB) Sync(ctx context.Context) error {
	if !db.opts.ReadOnly {
		return errors.New("storage: Sync is for a read-only store")
	}
	db.compactMu.Lock()
	defer db.compactMu.Unlock()
	if db.closed {
		return errClosed
	}
	if err := db.learnTenants(ctx); err != nil {
		return err
	}
	var errs []error
	for _, t := range db.allTenants() {
		if err := db.syncBlocks(ctx, t, false); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// runSync calls Sync every Options.SyncInterval until ctx is done.
func (db *DB) runSync(ctx context.Context) {
	tick := time.NewTicker(db.opts.SyncInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := db.Sync(ctx); err != nil && !errors.Is(err, errClosed) && ctx.Err() == nil {
			db.syncFailures.Add(1)
			db.logger.Error("sync blocks with the bucket", "err", err)
		}
	}
}

// learnTenants adds to the store every tenant the bucket has a
// directory of, so that a sync or a compactor's pass reaches the blocks
// that other instances uploaded for tenants it has not seen. The caller
// holds DB.compactMu.
func (db *DB) learnTenants(ctx context.Context) error {
	names, err := db.bucketTenants(ctx)
	if err != nil {
		return err
	}
	for _, name := range names {
		if id, err := parseTenantDirName(name); err == nil {
			db.tenant(id)
		}
	}
	return nil
}

// bucketTenants lists the tenant directories at the bucket's root,
// without their trailing "/".
func (db *DB) bucketTenants(ctx context.Context) ([]string, error) {
	var names []string
	err := db.bkt.Iter(ctx, "", func(name string) error {
		if n, ok := strings.CutSuffix(name, "/"); ok {
			names = append(names, n)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list tenants in bucket %s: %w", db.bkt.Name(), err)
	}
	return names, nil
}

// syncBlocks brings t.blocks in line with t's blocks in the bucket: it
// opens those it does not hold, and drops those gone from the bucket and
// those replaced by a compacted block it holds (a compaction's sources
// stay listed until the new block is in, and both would count twice).
//
// At Open (atOpen), an error of the bucket fails it (but for a ReadOnly
// store's reading of one block, which costs that block until the next
// Sync, as later), and a store that
// owns its bucket (neither ReadOnly nor SharedBucket) also removes what a
// crash left behind: block directories without meta.json (an upload or a
// deletion cut short), directories of the temporary names Hearth used
// before blocks went through a bucket, and the sources of a compacted
// block that was written but whose sources were not all deleted yet;
// what it cannot delete is left to compaction (deleteLater). It
// quarantines damaged blocks. A store that shares its bucket deletes and
// moves nothing there: a directory without meta.json may be another
// instance's upload in progress.
//
// Later (a ReadOnly store's Sync), a bucket's error costs the block it
// was reading, which the next Sync tries again; it is returned after the
// rest is done. A querier that could not start for one block the bucket
// failed to serve once would be down for a blip.
func (db *DB) syncBlocks(ctx context.Context, t *tenant, atOpen bool) error {
	owner := atOpen && !db.opts.ReadOnly && !db.opts.SharedBucket
	// strict: an error reading a block fails the call.
	strict := atOpen && !db.opts.ReadOnly
	bdir := t.blocksDir()
	// A block marked for deletion (by a compactor, see marks.go) is not
	// opened, and dropped if held: it will be deleted once queriers
	// have had time to do so. The marks are listed before the blocks: a
	// compactor uploads a compacted block before it marks the sources,
	// so a listing of blocks made after a listing that shows the marks
	// shows the block that replaces them.
	marked, err := listMarks(ctx, db.bkt, t)
	if err != nil {
		return err
	}
	t.marked = marked
	var ids, leftovers []string
	err = db.bkt.Iter(ctx, bdir, func(name string) error {
		rel := strings.TrimPrefix(name, bdir)
		id, isDir := strings.CutSuffix(rel, "/")
		switch {
		case isDir && strings.HasSuffix(id, tmpSuffix):
			leftovers = append(leftovers, name)
		case !isDir:
			if atOpen {
				db.logger.Warn("skipping unknown entry in blocks", "tenant", t.id, "block", rel)
			}
		default:
			if _, err := parseID(id); err != nil {
				if atOpen {
					db.logger.Warn("skipping unknown entry in blocks", "tenant", t.id, "block", rel)
				}
				return nil
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("tenant %s: list blocks: %w", t.id, err)
	}
	for _, dir := range leftovers {
		if !owner {
			break
		}
		db.logger.Info("removing leftover temporary block", "tenant", t.id, "block", strings.TrimPrefix(dir, bdir))
		if err := deleteAll(ctx, db.bkt, dir); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("tenant %s: remove %s: %w", t.id, dir, err)
			}
			db.deleteLater(t, dir, err)
		}
	}
	// Nothing but Sync changes a ReadOnly store's blocks, and Sync holds
	// compactMu; at Open there are none yet.
	t.blocksMu.RLock()
	held := make(map[string]*block, len(t.blocks))
	for _, b := range t.blocks {
		held[b.meta.ID] = b
	}
	t.blocksMu.RUnlock()

	var errs []error
	t.partial = t.partial[:0]
	// unreadable handles a block that could not be read: err from the
	// bucket fails the Open, or waits for the next Sync; a damaged block
	// is quarantined by an owner, else left out for good.
	unreadable := func(id string, err error) error {
		if !damaged(err) {
			err = fmt.Errorf("tenant %s: block %s: %w", t.id, id, err)
			if strict {
				return err
			}
			db.logger.Warn("block left out of queries until the next sync: the bucket did not serve it", "tenant", t.id, "block", id, "err", err)
			errs = append(errs, err)
			return nil
		}
		if owner {
			if qerr := db.quarantineBlock(ctx, t, id, err); qerr != nil {
				db.logger.Error("damaged block left in place, unread", "tenant", t.id, "block", id, "err", qerr)
			}
			return nil
		}
		if t.damaged == nil {
			t.damaged = map[string]bool{}
		}
		t.damaged[id] = true
		db.damagedReads.Add(1)
		db.logger.Error("damaged block left out of queries; it is not read again", "tenant", t.id, "block", id, "err", err)
		return nil
	}
	listed := make(map[string]bool, len(ids))
	for _, id := range ids {
		listed[id] = true
	}
	// replaced are the blocks that a listed compacted block replaces:
	// first those of the blocks held, whose sources need not be read
	// at all, then those of the blocks opened below.
	replaced := map[string]bool{}
	for id, b := range held {
		if listed[id] && !marked[id] {
			for _, src := range b.meta.Compaction.Sources {
				replaced[src] = true
			}
		}
	}
	metas := map[string]*blockMeta{}
	// A ReadOnly store takes the metas of the blocks it opens from the
	// bucket index, when there is one (bucket_index.go).
	var index map[string]*blockMeta
	indexRead := !db.opts.ReadOnly
	for _, id := range ids {
		if held[id] != nil || t.damaged[id] || marked[id] || replaced[id] {
			continue
		}
		if !indexRead {
			index, _ = db.readBucketIndex(ctx, t)
			indexRead = true
		}
		if m := index[id]; m != nil {
			metas[id] = m
			continue
		}
		m, err := readMeta(ctx, db.bkt, bdir+id+"/")
		if db.bkt.IsObjNotFoundErr(err) {
			if !owner {
				// Not uploaded yet, or what an instance killed
				// mid-upload left, which a compactor removes
				// once it is old (compactorPass).
				t.partial = append(t.partial, id)
				continue
			}
			db.logger.Info("removing block without meta.json", "tenant", t.id, "block", id)
			if err := deleteBlock(ctx, db.bkt, bdir+id+"/"); err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("tenant %s: %w", t.id, err)
				}
				db.deleteLater(t, bdir+id+"/", err)
			}
			continue
		}
		if err != nil {
			if err := unreadable(id, err); err != nil {
				return err
			}
			continue
		}
		metas[id] = m
	}
	// Every block is opened before any is dropped as replaced by
	// compaction: a compacted block that turns out damaged must not take
	// its sources with it.
	opened := map[string]*block{}
	for _, id := range ids {
		m := metas[id]
		if m == nil {
			continue
		}
		b, err := openBlock(ctx, db.bkt, bdir+id+"/", m)
		if err != nil {
			if err := unreadable(id, err); err != nil {
				closeAll(opened)
				return err
			}
			continue
		}
		opened[id] = b
	}
	for _, b := range opened {
		for _, src := range b.meta.Compaction.Sources {
			replaced[src] = true
		}
	}
	var keep, dropped []*block
	for id, b := range held {
		if !listed[id] || replaced[id] || marked[id] {
			dropped = append(dropped, b)
			continue
		}
		keep = append(keep, b)
	}
	var gone []string // opened, but replaced
	for _, id := range ids {
		b := opened[id]
		if b == nil {
			continue
		}
		if replaced[id] {
			b.close()
			gone = append(gone, id)
			continue
		}
		keep = append(keep, b)
	}
	for _, id := range gone {
		if !owner {
			break
		}
		db.logger.Info("removing block replaced by compaction", "tenant", t.id, "block", id)
		if err := deleteBlock(ctx, db.bkt, bdir+id+"/"); err != nil {
			if ctx.Err() != nil {
				for _, b := range keep {
					b.close()
				}
				return fmt.Errorf("tenant %s: %w", t.id, err)
			}
			db.deleteLater(t, bdir+id+"/", err)
		}
	}
	// Sources still in the bucket without a mark: a compactor stopped
	// between uploading their replacement and marking them. The
	// compactor marks them (compactorPass).
	t.unmarked = t.unmarked[:0]
	for _, id := range ids {
		if replaced[id] && !marked[id] {
			t.unmarked = append(t.unmarked, id)
		}
	}
	sortBlocks(keep)
	// Queries hold blocksMu for reading while they run: the swap waits
	// for those that may read a dropped block, and later ones do not see
	// it.
	t.blocksMu.Lock()
	t.blocks = keep
	t.blocksMu.Unlock()
	for _, b := range dropped {
		b.close()
	}
	if !atOpen && (len(opened) > 0 || len(dropped) > 0) {
		db.logger.Info("blocks synced with the bucket", "tenant", t.id, "opened", len(opened), "dropped", len(dropped), "blocks", len(keep))
	}
	if atOpen {
		return nil // a ReadOnly store's blocks left out, logged above
	}
	return errors.Join(errs...)
}
