package storage

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"
)

// The bucket index: after each pass, a compactor writes per tenant one
// object listing the metas of the tenant's blocks and its deletion marks,
// as Cortex's and Mimir's compactors write bucket-index.json.gz. A
// ReadOnly store's sync (a querier's) reads it once when it has blocks to
// open, and takes their metas from it instead of one GET of meta.json per
// block; it still lists the blocks and the marks itself, so a block
// uploaded since the index was written is found, and its meta.json read.
// An index that is missing, cannot be read or does not decode is not an
// error: the sync reads each meta.json, as without one.

// bucketIndexFile is the name of a tenant's bucket index, in its
// directory.
const bucketIndexFile = "bucket-index.json.gz"

const bucketIndexV1 = 1

// maxBucketIndexBytes bounds what a sync reads of an index, decompressed:
// a meta is about 400 bytes, so some 100,000 blocks.
const maxBucketIndexBytes = 64 << 20

// bucketIndex is the content of a bucket index.
type bucketIndex struct {
	Version int `json:"version"`
	// UpdatedAt is when the compactor wrote it, in unix seconds.
	UpdatedAt int64 `json:"updated_at"`
	// Blocks are the metas of the tenant's blocks, marked ones left
	// out, as meta.json holds them.
	Blocks []json.RawMessage `json:"blocks"`
	// DeletionMarks are the IDs of the blocks marked for deletion.
	DeletionMarks []string `json:"block_deletion_marks"`
}

func (t *tenant) bucketIndexName() string { return tenantDirName(t.id) + "/" + bucketIndexFile }

// writeBucketIndex writes t's bucket index from the compactor's view: the
// blocks it holds and the marks it knows. The caller holds DB.compactMu.
func (db *DB) writeBucketIndex(ctx context.Context, t *tenant) error {
	ix := bucketIndex{Version: bucketIndexV1, UpdatedAt: db.opts.Now().Unix(), Blocks: []json.RawMessage{}, DeletionMarks: []string{}}
	t.blocksMu.RLock()
	for _, b := range t.blocks {
		raw, err := json.Marshal(&b.meta)
		if err != nil {
			t.blocksMu.RUnlock()
			return fmt.Errorf("tenant %s: bucket index: %w", t.id, err)
		}
		ix.Blocks = append(ix.Blocks, raw)
	}
	t.blocksMu.RUnlock()
	for id := range t.marked {
		ix.DeletionMarks = append(ix.DeletionMarks, id)
	}
	slices.Sort(ix.DeletionMarks)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(&ix); err != nil {
		return fmt.Errorf("tenant %s: bucket index: %w", t.id, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("tenant %s: bucket index: %w", t.id, err)
	}
	if err := db.bkt.Upload(ctx, t.bucketIndexName(), &buf); err != nil {
		return fmt.Errorf("tenant %s: write bucket index: %w", t.id, err)
	}
	return nil
}

// readBucketIndex returns the metas of t's bucket index by block ID, and
// when it was written; nil when there is no index or it cannot be used,
// which is logged.
func (db *DB) readBucketIndex(ctx context.Context, t *tenant) (map[string]*blockMeta, time.Time) {
	metas, at, err := readBucketIndex(ctx, db, t)
	if err != nil {
		if !db.bkt.IsObjNotFoundErr(err) {
			db.logger.Warn("bucket index not used; reading each block's meta.json", "tenant", t.id, "err", err)
		}
		return nil, time.Time{}
	}
	return metas, at
}

func readBucketIndex(ctx context.Context, db *DB, t *tenant) (map[string]*blockMeta, time.Time, error) {
	rc, err := db.bkt.Get(ctx, t.bucketIndexName())
	if err != nil {
		return nil, time.Time{}, err
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("read bucket index: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, maxBucketIndexBytes+1))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("read bucket index: %w", err)
	}
	if len(raw) > maxBucketIndexBytes {
		return nil, time.Time{}, fmt.Errorf("bucket index larger than %d bytes", maxBucketIndexBytes)
	}
	var ix bucketIndex
	if err := json.Unmarshal(raw, &ix); err != nil {
		return nil, time.Time{}, fmt.Errorf("decode bucket index: %w", err)
	}
	if ix.Version != bucketIndexV1 {
		return nil, time.Time{}, fmt.Errorf("bucket index: unknown version %d", ix.Version)
	}
	metas := make(map[string]*blockMeta, len(ix.Blocks))
	for _, b := range ix.Blocks {
		m, err := decodeMeta(b)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("bucket index: %w", err)
		}
		metas[m.ID] = m
	}
	return metas, time.Unix(ix.UpdatedAt, 0), nil
}
