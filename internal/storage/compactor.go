package storage

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// A compactor's store (Options.Compactor) is a ReadOnly store that
// changes the bucket: while it holds the lease (lease.go), each pass syncs
// its view of every tenant with the bucket, marks the sources that a
// compacted block replaces (a compactor that stopped before marking them
// left them so), deletes the blocks marked longer than the deletion delay
// ago, compacts the blocks of all the ingesters that are older than the
// minimum age, and marks expired blocks (marks.go). A tenant whose sync
// failed is left for the next pass: a view of the bucket that another
// compactor may have changed since would merge blocks that are gone.
//
// Every step leaves the bucket as a querier can read it: a compacted
// block is uploaded (meta.json last) before its sources are marked, and a
// querier drops the sources of a compacted block it holds; marked blocks
// are deleted only after the deletion delay. A compactor killed between
// any two steps leaves no duplicate and no gap, and the next pass (of
// whichever compactor then holds the lease) finishes the work.

// compactorPass runs one pass over every tenant of the bucket.
func (db *DB) compactorPass(ctx context.Context) error {
	db.compactMu.Lock()
	defer db.compactMu.Unlock()
	if db.closed {
		return errClosed
	}
	if err := db.learnTenants(ctx); err != nil {
		return err
	}
	c := db.opts.Compactor
	var errs []error
	for _, t := range db.allTenants() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := db.syncBlocks(ctx, t, false); err != nil {
			errs = append(errs, fmt.Errorf("tenant %s left for the next pass: %w", t.id, err))
			continue
		}
		if unmarked, err := db.stillThere(ctx, t, t.unmarked); err != nil {
			errs = append(errs, err)
		} else if len(unmarked) > 0 {
			if err := db.markBlocks(ctx, t, unmarked, "replaced by compaction"); err != nil {
				errs = append(errs, err)
			}
		}
		if _, err := db.deleteMarked(ctx, t, c.DeletionDelay); err != nil {
			errs = append(errs, err)
		}
		if err := db.deletePartial(ctx, t, c.PartialUploadAge); err != nil {
			errs = append(errs, err)
		}
		if err := db.compactTenant(ctx, t); err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", t.id, err))
		}
		if err := db.applyRetention(ctx, t); err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", t.id, err))
		}
		if err := db.writeBucketIndex(ctx, t); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// runCompactor is a compactor's Run: it takes the lease, or waits for it,
// retrying every third of its TTL; while it holds it, it runs a pass at
// once and then every CompactInterval, and renews the lease every third
// of its TTL. A renewal that fails, or finds the lease taken, stops the
// pass in progress at once (its context is cancelled) and sends the
// compactor back to waiting. On the way out it releases the lease.
func (db *DB) runCompactor(ctx context.Context) {
	every := db.lease.ttl / 3
	for {
		held, err := db.lease.acquire(ctx)
		if err != nil && ctx.Err() == nil {
			db.logger.Error("compactor lease", "err", err)
		}
		if held {
			db.logger.Info("compactor lease taken; compacting", "holder", db.lease.holder, "ttl", db.lease.ttl)
			db.holdLease(ctx, every)
		} else if err == nil {
			db.logger.Debug("compactor lease held by another compactor; standing by", "holder", db.lease.other)
			// A standby follows the bucket as a querier does, so that
			// the blocks it holds open are the bucket's, not those of
			// its start (a Dir's deleted files stay on disk while open).
			if err := db.Sync(ctx); err != nil && !errors.Is(err, errClosed) && ctx.Err() == nil {
				db.syncFailures.Add(1)
				db.logger.Warn("standby compactor: sync blocks with the bucket", "err", err)
			}
		}
		if ctx.Err() != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), every)
			if err := db.lease.release(rctx); err != nil {
				db.logger.Warn("release compactor lease", "err", err)
			}
			cancel()
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(every):
		}
	}
}

// holdLease compacts while the lease is held, and returns when ctx is done
// or the lease is lost.
func (db *DB) holdLease(ctx context.Context, every time.Duration) {
	db.leaseHeld.Store(true)
	defer db.leaseHeld.Store(false)
	work, stop := context.WithCancel(ctx)
	defer stop()
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		defer stop()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-work.Done():
				return
			case <-tick.C:
			}
			rctx, cancel := context.WithTimeout(work, every)
			err := db.lease.renew(rctx)
			cancel()
			if err != nil {
				if work.Err() == nil {
					db.logger.Error("compactor lease not renewed; compaction stopped", "err", err)
				}
				return
			}
		}
	}()
	tick := time.NewTicker(db.opts.CompactInterval)
	defer tick.Stop()
	for {
		if err := db.compactorPass(work); err != nil && !errors.Is(err, errClosed) && work.Err() == nil {
			db.compactFailures.Add(1)
			db.logger.Error("compactor pass", "err", err)
		}
		select {
		case <-work.Done():
			stop()
			<-renewed
			return
		case <-tick.C:
		}
	}
}

// deletePartial deletes the block directories of t without meta.json
// (and without a deletion mark) made longer than age ago: what an
// instance killed mid-upload left. Zero age deletes none. The caller
// holds DB.compactMu.
func (db *DB) deletePartial(ctx context.Context, t *tenant, age time.Duration) error {
	if age <= 0 {
		return nil
	}
	cutoff := db.opts.Now().Add(-age)
	var errs []error
	for _, id := range t.partial {
		at, err := parseID(id)
		if err != nil || at.After(cutoff) {
			continue
		}
		if err := deleteBlock(ctx, db.bkt, t.blocksDir()+id+"/"); err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: partial upload: %w", t.id, err))
			continue
		}
		db.logger.Info("partial upload deleted", "tenant", t.id, "block", id, "made", at.UTC())
	}
	return errors.Join(errs...)
}

// stillThere returns those of the blocks ids of t whose meta.json is in
// the bucket. A store that lists a directory for a while after its last
// object is deleted (SeaweedFS) shows a compaction's deleted sources
// again, beside their replacement and without their marks, which are
// gone with them: marked and deleted once more at every pass, they would
// never leave. Deletion removes meta.json first, so a block without it
// is deleted or being deleted, not waiting for a mark.
func (db *DB) stillThere(ctx context.Context, t *tenant, ids []string) ([]string, error) {
	var out []string
	for _, id := range ids {
		ok, err := db.bkt.Exists(ctx, t.blocksDir()+id+"/"+metaFile)
		if err != nil {
			return nil, fmt.Errorf("tenant %s: block %s: %w", t.id, id, err)
		}
		if ok {
			out = append(out, id)
		}
	}
	return out, nil
}
