package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hearth-profiler/hearth/internal/storage/bucket"
)

// A compactor deletes blocks of a shared bucket in two phases, as Thanos'
// and Mimir's compactors do: it first writes a deletion mark for the
// block, which queriers see at their next sync and drop the block for;
// only after CompactorOptions.DeletionDelay does it delete the block
// (meta.json first, then its other objects), then the mark. A querier
// that has not synced since the mark, or is reading the block, has had
// time to stop before the block goes.
//
// Marks are kept apart from the blocks, one object per block in the
// tenant's markers directory (Mimir's layout of its global markers), so
// that a querier learns them all with one LIST per tenant instead of one
// request per block:
//
//	<tenant>/markers/<id>-deletion-mark.json  {"id":…,"deletion_time":…,"version":1}
//
// A block directory without meta.json whose block has a mark is what an
// interrupted deletion left; the compactor finishes it.

const (
	markersSubdir      = "markers/"
	deletionMarkSuffix = "-deletion-mark.json"
	deletionMarkV1     = 1
)

// deletionMark is a deletion mark object, in the fields of Thanos'
// deletion-mark.json.
type deletionMark struct {
	ID string `json:"id"`
	// DeletionTime is when the block was marked, in unix seconds.
	DeletionTime int64 `json:"deletion_time"`
	Version      int   `json:"version"`
}

// markersDir is the bucket directory of t's deletion marks.
func (t *tenant) markersDir() string { return tenantDirName(t.id) + "/" + markersSubdir }

func (t *tenant) markName(id string) string { return t.markersDir() + id + deletionMarkSuffix }

// listMarks returns the IDs of t's blocks that carry a deletion mark.
func listMarks(ctx context.Context, bkt bucket.Bucket, t *tenant) (map[string]bool, error) {
	dir := t.markersDir()
	marked := map[string]bool{}
	err := bkt.Iter(ctx, dir, func(name string) error {
		id, ok := strings.CutSuffix(strings.TrimPrefix(name, dir), deletionMarkSuffix)
		if ok {
			if _, err := parseID(id); err == nil {
				marked[id] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tenant %s: list deletion marks: %w", t.id, err)
	}
	return marked, nil
}

// writeMark marks block id of t for deletion at now.
func writeMark(ctx context.Context, bkt bucket.Bucket, t *tenant, id string, now time.Time) error {
	raw, err := json.Marshal(deletionMark{ID: id, DeletionTime: now.Unix(), Version: deletionMarkV1})
	if err != nil {
		return err
	}
	if err := bkt.Upload(ctx, t.markName(id), bytes.NewReader(raw)); err != nil {
		return fmt.Errorf("tenant %s: mark block %s for deletion: %w", t.id, id, err)
	}
	return nil
}

// readMark returns when block id of t was marked for deletion.
func readMark(ctx context.Context, bkt bucket.Bucket, t *tenant, id string) (time.Time, error) {
	raw, err := getObject(ctx, bkt, t.markName(id))
	if err != nil {
		return time.Time{}, err
	}
	var m deletionMark
	if err := json.Unmarshal(raw, &m); err != nil {
		return time.Time{}, fmt.Errorf("decode deletion mark of block %s: %w", id, err)
	}
	if m.ID != id {
		return time.Time{}, fmt.Errorf("deletion mark of block %s names block %q", id, m.ID)
	}
	return time.Unix(m.DeletionTime, 0), nil
}

// deleteMarked deletes the blocks of t marked for deletion longer than
// delay ago (meta.json first, then the rest, then the mark), and returns
// how many it deleted. A mark that cannot be read is left alone and
// logged: its block stays out of queries, which is all a mark does
// before its deletion. The caller holds DB.compactMu.
func (db *DB) deleteMarked(ctx context.Context, t *tenant, delay time.Duration) (int, error) {
	now := db.opts.Now()
	var errs []error
	n := 0
	for id := range t.marked {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		at, ok := t.markTimes[id]
		if !ok {
			var err error
			at, err = readMark(ctx, db.bkt, t, id)
			if db.bkt.IsObjNotFoundErr(err) {
				continue // deleted since the listing
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("tenant %s: %w", t.id, err))
				continue
			}
			if t.markTimes == nil {
				t.markTimes = map[string]time.Time{}
			}
			t.markTimes[id] = at
		}
		if now.Sub(at) < delay {
			continue
		}
		if err := deleteBlock(ctx, db.bkt, t.blocksDir()+id+"/"); err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", t.id, err))
			continue
		}
		if err := db.bkt.Delete(ctx, t.markName(id)); err != nil && !db.bkt.IsObjNotFoundErr(err) {
			errs = append(errs, fmt.Errorf("tenant %s: delete deletion mark of block %s: %w", t.id, id, err))
			continue
		}
		delete(t.marked, id)
		delete(t.markTimes, id)
		n++
		db.blocksDeleted.Add(1)
		db.logger.Info("block deleted after its deletion delay", "tenant", t.id, "block", id, "marked", at.UTC())
	}
	return n, errors.Join(errs...)
}

// markBlocks marks the blocks ids of t for deletion; those it could not
// mark are left to the next pass, whose sync finds them again. The caller
// holds DB.compactMu.
func (db *DB) markBlocks(ctx context.Context, t *tenant, ids []string, why string) error {
	now := db.opts.Now()
	var errs []error
	for _, id := range ids {
		if err := writeMark(ctx, db.bkt, t, id, now); err != nil {
			errs = append(errs, err)
			continue
		}
		if t.marked == nil {
			t.marked = map[string]bool{}
		}
		t.marked[id] = true
		db.blocksMarked.Add(1)
		db.logger.Info("block marked for deletion", "tenant", t.id, "block", id, "why", why)
	}
	return errors.Join(errs...)
}
