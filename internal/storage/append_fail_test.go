package storage

import (
	"context"
	"errors"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/hearth-profiler/hearth/internal/storage/wal"
)

// fullFS creates segment files on which every write fails as on a full disk.
type fullFS struct{}

type fullFile struct{ wal.File }

func (fullFS) Create(path string) (wal.File, error) {
	f, err := wal.OSFS{}.Create(path)
	return fullFile{f}, err
}

func (fullFile) Write([]byte) (int, error) { return 0, syscall.ENOSPC }

// TestAppendUnavailable checks that an Append the log could not write, or
// one after Close, returns an error that errors.Is recognises as
// ErrUnavailable, still carrying its cause.
func TestAppendUnavailable(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir, testOptions())
	ctx := context.Background()
	if err := db.Append(ctx, "t1", []byte("before"), nil); err != nil {
		t.Fatal(err)
	}
	good := db.wal
	full, err := wal.Open(filepath.Join(dir, "wal"), nil, wal.Options{FS: fullFS{}})
	if err != nil {
		t.Fatal(err)
	}
	db.wal = full
	err = db.Append(ctx, "t1", []byte("lost"), nil)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, wal.ErrWrite) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append on a full disk returned %v, want ErrUnavailable wrapping wal.ErrWrite and ENOSPC", err)
	}
	full.Close()
	db.wal = good
	db.Close()
	if err := db.Append(ctx, "t1", []byte("late"), nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append after Close returned %v, want ErrUnavailable", err)
	}
}
