package storage

import (
	"context"
	"errors"
	"slices"
)

// applyRetention deletes t's blocks whose newest profile is older than
// now - Options.Retention. They leave the query path first, then the
// bucket (meta.json first); a deletion that fails is retried by the next
// Compact.
func (db *DB) applyRetention(ctx context.Context, t *tenant) error {
	if db.opts.Retention <= 0 {
		return nil
	}
	cutoff := db.opts.Now().Add(-db.opts.Retention).UnixNano()
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
