package storage

import (
	"context"
	"errors"
	"slices"
	"time"
)

// retention returns t's retention: Options.RetentionFor's, when set, else
// Options.Retention. Zero keeps everything.
func (db *DB) retention(t *tenant) time.Duration {
	if f := db.opts.RetentionFor; f != nil {
		return f(t.id)
	}
	return db.opts.Retention
}

// applyRetention deletes t's blocks whose newest profile is older than
// now minus t's retention. They leave the query path first, then the
// bucket (meta.json first); a deletion that fails is retried by the next
// Compact. A compactor marks them for deletion instead (marks.go).
func (db *DB) applyRetention(ctx context.Context, t *tenant) error {
	ret := db.retention(t)
	if ret <= 0 {
		return nil
	}
	cutoff := db.opts.Now().Add(-ret).UnixNano()
	t.blocksMu.Lock()
	var old []*block
	t.blocks = slices.DeleteFunc(t.blocks, func(b *block) bool {
		if b.meta.MaxT < cutoff {
			old = append(old, b)
			return true
		}
		return false
	})
	t.blocksMu.Unlock()
	if db.opts.Compactor != nil {
		ids := make([]string, len(old))
		for i, b := range old {
			ids[i] = b.meta.ID
			b.close()
		}
		// One not marked is found again by the next pass's sync.
		return db.markBlocks(ctx, t, ids, "retention")
	}
	var errs []error
	for _, b := range old {
		b.close()
		if err := db.removeBlock(ctx, t, b.dir); err != nil {
			errs = append(errs, err)
			continue
		}
		db.logger.Info("block deleted by retention", "tenant", t.id, "block", b.meta.ID)
	}
	return errors.Join(errs...)
}
