package storage

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// errClosed is returned by maintenance on a closed DB.
var errClosed = errors.New("storage is closed")

// Run cuts heads into blocks every Options.CheckInterval, and compacts and
// applies retention every Options.CompactInterval, until ctx is done. It
// logs what fails and tries again on the next tick. Cuts and compaction
// run in goroutines of their own: a compaction of a day of blocks takes
// minutes, and heads must be cut meanwhile. Call Run once per DB, in its
// own goroutine, and cancel ctx before Close.
//
// A ReadOnly store's Run calls Sync every Options.SyncInterval instead.
func (db *DB) Run(ctx context.Context) error {
	if db.opts.Compactor != nil {
		db.runCompactor(ctx)
		return nil
	}
	if db.opts.ReadOnly {
		db.runSync(ctx)
		return nil
	}
	var wg sync.WaitGroup
	wg.Go(func() { db.runCompaction(ctx) })
	if db.instance != "" && db.opts.KeepUploaded > 0 {
		wg.Go(func() { db.runDropUploaded(ctx) })
	}
	defer wg.Wait()
	cutTick := time.NewTicker(db.opts.CheckInterval)
	defer cutTick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-cutTick.C:
		case <-db.cutSoon:
		}
		if err := db.noteCut(db.cutHeads(ctx, false)); err != nil && !errors.Is(err, errClosed) {
			db.cutFailures.Add(1)
			db.logger.Error("cut heads", "err", err)
		}
	}
}

func (db *DB) runCompaction(ctx context.Context) {
	tick := time.NewTicker(db.opts.CompactInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := db.Compact(ctx); err != nil && !errors.Is(err, errClosed) {
			db.compactFailures.Add(1)
			db.logger.Error("compact", "err", err)
		}
	}
}

// Flush cuts every non-empty head now and writes its block, then
// truncates the log. After it returns nil, everything appended before the
// call is in blocks.
//
// A ReadOnly store has nothing to flush.
func (db *DB) Flush(ctx context.Context) error {
	if db.opts.ReadOnly {
		return nil
	}
	return db.noteCut(db.cutHeads(ctx, true))
}

// cutFailure is since when cuts have failed, and the last error.
type cutFailure struct {
	since time.Time
	err   string
}

// noteCut keeps, for Stats and readiness, whether blocks are being
// written: a failed cut starts (or continues) a failure, a cut that
// succeeds ends it. It returns err.
func (db *DB) noteCut(err error) error {
	switch {
	case err == nil:
		db.cutFailing.Store(nil)
	case errors.Is(err, errClosed) || errors.Is(err, context.Canceled):
	default:
		f := &cutFailure{since: time.Now(), err: err.Error()}
		if old := db.cutFailing.Load(); old != nil {
			f.since = old.since
		}
		db.cutFailing.Store(f)
	}
	return err
}

// due says whether t's head should be cut. The caller holds t.mu.
func (db *DB) due(t *tenant, now time.Time) bool {
	h := t.head
	if h.empty() {
		return false
	}
	return h.span() >= int64(db.opts.BlockDuration) ||
		h.memBytes() >= db.opts.MaxHeadBytes ||
		now.Sub(t.lastAppend) >= db.opts.BlockDuration
}

// cutHeads freezes the heads that are due (all non-empty ones with all),
// writes their blocks, and truncates the log below what every tenant still
// needs.
func (db *DB) cutHeads(ctx context.Context, all bool) error {
	db.cutMu.Lock()
	defer db.cutMu.Unlock()
	if db.closed {
		return errClosed
	}
	tenants := db.allTenants()
	if err := db.freeze(tenants, all); err != nil {
		return err
	}
	var errs []error
	for _, t := range tenants {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := db.writeFrozen(ctx, t); err != nil {
			errs = append(errs, err)
		}
	}
	if err := db.truncateWAL(tenants); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// freeze cuts the due heads under one log cut: the tenants' locks are held
// together across wal.Cut, so every record of theirs below the new segment
// is in the frozen heads and every later one goes to the new heads. A
// tenant whose previous
// frozen head is not yet written is not cut again, so that blocks and
// checkpoints advance in log order.
func (db *DB) freeze(tenants []*tenant, all bool) error {
	now := db.opts.Now()
	var locked []*tenant
	defer func() {
		for _, t := range locked {
			t.mu.Unlock()
		}
	}()
	for _, t := range tenants {
		t.mu.Lock()
		if len(t.frozen) == 0 && !t.head.empty() && (all || db.due(t, now)) {
			locked = append(locked, t)
			continue
		}
		t.mu.Unlock()
	}
	if len(locked) == 0 {
		return nil
	}
	seg, err := db.wal.Cut()
	if err != nil {
		return fmt.Errorf("cut wal: %w", err)
	}
	db.lastCut = seg
	for _, t := range locked {
		t.frozen = append(t.frozen, &frozenHead{head: t.head, walSegment: seg, delta: maps.Clone(t.delta)})
		t.head = newHead()
	}
	return nil
}

// writeFrozen writes t's frozen heads as blocks, oldest first: block, then
// the block replaces the frozen head in queries, then checkpoint.
func (db *DB) writeFrozen(ctx context.Context, t *tenant) error {
	if t.failedCut != "" {
		if err := deleteBlock(ctx, db.bkt, t.failedCut); err != nil {
			return fmt.Errorf("tenant %s: block of an earlier cut: %w", t.id, err)
		}
		t.failedCut = ""
	}
	for {
		t.mu.RLock()
		var fh *frozenHead
		if len(t.frozen) > 0 {
			fh = t.frozen[0]
		}
		t.mu.RUnlock()
		if fh == nil {
			return nil
		}
		start := time.Now()
		id := db.ids.next(db.opts.Now())
		dir := t.blocksDir() + id + "/"
		meta, undeleted, err := writeHeadBlock(ctx, fh.head, db.bkt, t.blocksDir(), id, fh.walSegment, db.instance)
		if err != nil {
			if undeleted != nil {
				t.failedCut = dir
			}
			return fmt.Errorf("tenant %s: %w", t.id, errors.Join(err, undeleted))
		}
		b, err := openBlock(ctx, db.bkt, dir, meta)
		if err != nil {
			// Take the block back, keep the frozen head, retry on the
			// next tick.
			err = fmt.Errorf("tenant %s: block %s: %w", t.id, id, err)
			if rerr := deleteBlock(context.WithoutCancel(ctx), db.bkt, dir); rerr != nil {
				t.failedCut = dir
				err = errors.Join(err, rerr)
			}
			return err
		}
		t.blocksMu.Lock()
		t.mu.Lock()
		t.blocks = append(t.blocks, b)
		sortBlocks(t.blocks)
		if db.instance != "" {
			// Counted in HeadSnapshot until KeepUploaded has passed.
			if t.uploadedAt == nil {
				t.uploadedAt = map[string]time.Time{}
			}
			t.uploadedAt[id] = db.opts.Now()
		}
		t.frozen = slices.Delete(t.frozen, 0, 1) // clears the slot: the written head must not stay reachable
		t.mu.Unlock()
		t.blocksMu.Unlock()
		// The block is kept even if its checkpoint cannot be written. A
		// failed write may have replaced the file all the same (its
		// rename done, the directory's fsync failed), and a checkpoint
		// past the frozen head's records with the block deleted would
		// lose them at the next start. With the block kept, either
		// checkpoint is right: replay sends the records below the
		// block's walSegment through a scratch head only. cpSegment
		// stays, so the log keeps what the old checkpoint needs until a
		// later cut writes one.
		if err := db.writeCheckpoint(t, fh.walSegment, fh.delta); err != nil {
			return fmt.Errorf("tenant %s: block %s written, its checkpoint not: %w", t.id, id, err)
		}
		t.cpSegment = fh.walSegment
		db.logger.Info("block written", "tenant", t.id, "block", id,
			"series", meta.Stats.Series, "profiles", meta.Stats.Profiles, "samples", meta.Stats.Samples,
			"events", meta.events().Rows, "bytes", meta.Stats.Bytes, "dur", time.Since(start))
	}
}

// truncateWAL deletes the log segments that no tenant needs for replay:
// those below every tenant's checkpoint segment. A tenant with nothing in
// memory has all its records in blocks; its checkpoint moves up to the
// last cut so that an idle tenant does not hold the log back.
func (db *DB) truncateWAL(tenants []*tenant) error {
	low := -1
	for _, t := range tenants {
		if t.cpSegment < db.lastCut {
			t.mu.Lock()
			if t.head.empty() && len(t.frozen) == 0 {
				if err := db.writeCheckpoint(t, db.lastCut, t.delta); err != nil {
					t.mu.Unlock()
					return fmt.Errorf("tenant %s: %w", t.id, err)
				}
				t.cpSegment = db.lastCut
			}
			t.mu.Unlock()
		}
		if low < 0 || t.cpSegment < low {
			low = t.cpSegment
		}
	}
	if low <= 0 {
		return nil
	}
	if err := db.wal.Truncate(low); err != nil {
		return fmt.Errorf("truncate wal below %d: %w", low, err)
	}
	return nil
}
