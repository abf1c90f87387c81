package storage

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/hearth-profiler/hearth/internal/storage/bucket"
	"github.com/hearth-profiler/hearth/internal/storage/fsys"
)

// Quarantine: what fails its checks when the store opens is moved out of
// the way, with a file that says why, so that one damaged file costs that
// file and never the server's start. A block goes to the bucket directory
// "<tenant>/quarantine/<id>/" (inside the tenant's directory, so that it is
// never taken for a tenant or a block), a checkpoint to the local
// "<tenant>/quarantine/checkpoint-<unix nanoseconds>". Nothing is deleted:
// an operator can look at it, and move it back once repaired.

const (
	quarantineDir = "quarantine/"
	reasonFile    = "reason.txt"
)

// quarantineBlock copies the objects of the block in the bucket directory
// dir into the tenant's quarantine with a reason file, then deletes the
// block. A failure to copy leaves the block where it is, and is returned:
// the caller must still not use it.
func (db *DB) quarantineBlock(ctx context.Context, t *tenant, id string, why error) error {
	dir := t.blocksDir() + id + "/"
	dst := tenantDirName(t.id) + "/" + quarantineDir + id + "/"
	db.quarantined.Add(1)
	db.logger.Error("block quarantined: it failed its checks, and the store opens without it",
		"tenant", t.id, "block", id, "moved_to", dst, "err", why)
	var names []string
	if err := db.bkt.Iter(ctx, dir, func(name string) error {
		if !strings.HasSuffix(name, "/") {
			names = append(names, name)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("quarantine block %s: %w", id, err)
	}
	for _, name := range names {
		if err := db.copyObject(ctx, name, dst+strings.TrimPrefix(name, dir)); err != nil {
			return fmt.Errorf("quarantine block %s: %w", id, err)
		}
	}
	reason := fmt.Sprintf("%s\nblock %s of tenant %q failed its checks when the store opened:\n%v\n",
		db.opts.Now().UTC().Format(time.RFC3339), id, t.id, why)
	if err := db.bkt.Upload(ctx, dst+reasonFile, strings.NewReader(reason)); err != nil {
		return fmt.Errorf("quarantine block %s: %w", id, err)
	}
	if err := deleteBlock(ctx, db.bkt, dir); err != nil {
		return fmt.Errorf("quarantine block %s: %w", id, err)
	}
	return nil
}

func (db *DB) copyObject(ctx context.Context, from, to string) error {
	rc, err := db.bkt.Get(ctx, from)
	if err != nil {
		return err
	}
	defer rc.Close()
	return db.bkt.Upload(ctx, to, rc)
}

// quarantineCheckpoint moves a tenant's damaged checkpoint file aside. The
// tenant then replays the whole log: records in segments below its newest
// block's only rebuild the delta state, so nothing is stored twice.
func (db *DB) quarantineCheckpoint(t *tenant, why error) error {
	db.quarantined.Add(1)
	dir := filepath.Join(t.dir, strings.TrimSuffix(quarantineDir, "/"))
	name := fmt.Sprintf("checkpoint-%d", db.opts.Now().UnixNano())
	db.logger.Error("checkpoint quarantined: it failed its checks; the log is replayed from its start",
		"tenant", t.id, "moved_to", filepath.Join(dir, name), "err", why)
	if err := db.opts.fs.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("quarantine checkpoint: %w", err)
	}
	reason := fmt.Sprintf("%s\nthe checkpoint of tenant %q failed its checks when the store opened:\n%v\n",
		db.opts.Now().UTC().Format(time.RFC3339), t.id, why)
	if err := fsys.WriteFile(db.opts.fs, filepath.Join(dir, name+"."+reasonFile), []byte(reason), 0o644); err != nil {
		return fmt.Errorf("quarantine checkpoint: %w", err)
	}
	if err := db.opts.fs.Rename(filepath.Join(t.dir, checkpointFile), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("quarantine checkpoint: %w", err)
	}
	return db.opts.fs.SyncDir(t.dir)
}

// damaged says whether err, met while reading a file at Open, means the
// file itself is bad rather than that the store cannot work now: a
// cancelled start, or a bucket that did not answer (an object store out
// of reach, refusing the credentials, failing), which would otherwise
// quarantine every block it failed to serve.
func damaged(err error) bool {
	return err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) &&
		!bucket.IsUnavailable(err)
}
