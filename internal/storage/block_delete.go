package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hearth-profiler/hearth/internal/storage/bucket"
)

// deleteBlock deletes the block in the bucket directory dir: meta.json
// first, which ends the block's existence, then its other objects, then
// what a local directory keeps of it. A crash or an error part way leaves
// objects without meta.json, which Open deletes; so does a retry. A
// block that is already partly or wholly gone is not an error.
func deleteBlock(ctx context.Context, bkt bucket.Bucket, dir string) error {
	if err := bkt.Delete(ctx, dir+metaFile); err != nil && !bkt.IsObjNotFoundErr(err) {
		return fmt.Errorf("delete block %s: %w", dir, err)
	}
	if err := deleteAll(ctx, bkt, dir); err != nil {
		return fmt.Errorf("delete block %s: %w", dir, err)
	}
	return nil
}

// deleteAll deletes every object under the bucket directory dir (ending in
// "/"), then the directory itself.
func deleteAll(ctx context.Context, bkt bucket.Bucket, dir string) error {
	var names []string
	if err := bkt.Iter(ctx, dir, func(name string) error {
		names = append(names, name)
		return nil
	}); err != nil {
		return err
	}
	for _, name := range names {
		var err error
		if strings.HasSuffix(name, "/") {
			err = deleteAll(ctx, bkt, name)
		} else if err = bkt.Delete(ctx, name); bkt.IsObjNotFoundErr(err) {
			err = nil
		}
		if err != nil {
			return err
		}
	}
	if err := bkt.Delete(ctx, dir); err != nil && !bkt.IsObjNotFoundErr(err) {
		return err
	}
	return nil
}

// retryDeletes deletes the blocks of t whose deletion failed before. The
// caller holds DB.compactMu.
func (db *DB) retryDeletes(ctx context.Context, t *tenant) error {
	var errs []error
	left := t.undeleted[:0]
	for _, dir := range t.undeleted {
		if err := deleteBlock(ctx, db.bkt, dir); err != nil {
			errs = append(errs, err)
			left = append(left, dir)
		}
	}
	t.undeleted = left
	return errors.Join(errs...)
}

// removeBlock deletes a block that is out of the query path, or keeps it
// in t.undeleted for the next retry. The caller holds DB.compactMu.
func (db *DB) removeBlock(ctx context.Context, t *tenant, dir string) error {
	if err := deleteBlock(ctx, db.bkt, dir); err != nil {
		t.undeleted = append(t.undeleted, dir)
		return err
	}
	return nil
}
