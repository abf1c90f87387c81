package bucket

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func newTestDir(t *testing.T) (*Dir, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "bucket")
	d, err := NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	return d, root
}

// files lists the files and directories under root, as paths relative to
// it.
func files(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if p != root {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

// TestDirFiles checks what Dir adds to the contract of every Bucket:
// objects are files readable by others, and ReaderAt is the file itself.
func TestDirFiles(t *testing.T) {
	ctx := context.Background()
	d, root := newTestDir(t)
	upload(t, d, "a/o", "0123456789")
	fi, err := os.Stat(filepath.Join(root, "a/o"))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("object file mode %v, %v; want 0644", fi.Mode(), err)
	}
	ra, err := d.ReaderAt(ctx, "a/o")
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	if _, ok := ra.(*fileReaderAt); !ok {
		t.Errorf("ReaderAt is a %T, want the file itself", ra)
	}
}

func TestDirDelete(t *testing.T) {
	ctx := context.Background()
	d, root := newTestDir(t)
	upload(t, d, "t/checkpoint", "c")
	upload(t, d, "t/blocks/1/meta.json", "{}")
	upload(t, d, "t/blocks/1/index.bin", "i")
	upload(t, d, "t/blocks/2/meta.json", "{}")

	if err := d.Delete(ctx, "t/blocks/1/nope"); !d.IsObjNotFoundErr(err) {
		t.Errorf("Delete(missing): %v, want a not-found error", err)
	}
	if err := d.Delete(ctx, "t/blocks/1"); !d.IsObjNotFoundErr(err) {
		t.Errorf("Delete(a directory without its slash): %v, want a not-found error", err)
	}
	if err := d.Delete(ctx, "t/blocks/1/"); err == nil {
		t.Error("Delete(a directory holding objects) succeeded")
	}
	for _, n := range []string{"t/blocks/1/meta.json", "t/blocks/1/index.bin"} {
		if err := d.Delete(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	// The block's directory went with its last object; blocks/ stays, as
	// it holds another block.
	want := []string{"t", "t/blocks", "t/blocks/2", "t/blocks/2/meta.json", "t/checkpoint"}
	if df := cmp.Diff(want, files(t, root)); df != "" {
		t.Errorf("files after deleting a block (-want +got):\n%s", df)
	}
	if err := d.Delete(ctx, "t/blocks/2/meta.json"); err != nil {
		t.Fatal(err)
	}
	if df := cmp.Diff([]string{"t", "t/checkpoint"}, files(t, root)); df != "" {
		t.Errorf("files after deleting the last block (-want +got):\n%s", df)
	}
	if err := d.Delete(ctx, "t/checkpoint"); err != nil {
		t.Fatal(err)
	}
	if df := cmp.Diff([]string(nil), files(t, root)); df != "" {
		t.Errorf("files after deleting everything (-want +got):\n%s", df)
	}
	if _, err := os.Stat(root); err != nil {
		t.Errorf("the root went too: %v", err)
	}
	if err := d.Delete(ctx, "/"); err == nil {
		t.Error("Delete of the root succeeded")
	}
}

// TestDirCrashDebris checks what Dir does with what a crash leaves: a
// temporary file of an interrupted upload, alone or beside objects, and
// empty directories.
func TestDirCrashDebris(t *testing.T) {
	ctx := context.Background()
	d, root := newTestDir(t)
	upload(t, d, "t/blocks/1/samples.parquet", "s")
	upload(t, d, "t/blocks/2/meta.json", "{}")
	for _, p := range []string{"t/blocks/1/" + tempPrefix + "123", "t/blocks/3/" + tempPrefix + "456"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "t/blocks/4/x/y"), 0o755); err != nil {
		t.Fatal(err)
	}
	if df := cmp.Diff([]string{"t/blocks/1/samples.parquet"}, list(t, d, "t/blocks/1/")); df != "" {
		t.Errorf("Iter lists a temporary file (-want +got):\n%s", df)
	}
	// The last object of block 1 takes the debris beside it along.
	if err := d.Delete(ctx, "t/blocks/1/samples.parquet"); err != nil {
		t.Fatal(err)
	}
	// Directories that hold no object go when named.
	for _, n := range []string{"t/blocks/3/", "t/blocks/4/", "t/blocks/5/"} {
		if err := d.Delete(ctx, n); err != nil {
			t.Errorf("Delete(%q): %v", n, err)
		}
	}
	want := []string{"t", "t/blocks", "t/blocks/2", "t/blocks/2/meta.json"}
	if df := cmp.Diff(want, files(t, root)); df != "" {
		t.Errorf("files after cleaning up (-want +got):\n%s", df)
	}
}

// TestDirUploadFailure checks what the contract's TestUploadFailure cannot
// see: a failed upload leaves no temporary file, and a cancelled one no
// object.
func TestDirUploadFailure(t *testing.T) {
	ctx := context.Background()
	d, root := newTestDir(t)
	failUploads(t, d)
	if df := cmp.Diff([]string{"t", "t/o"}, files(t, root)); df != "" {
		t.Errorf("files after failed uploads (-want +got):\n%s", df)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := d.Upload(cctx, "t/q", bytes.NewReader(nil)); !errors.Is(err, context.Canceled) {
		t.Errorf("Upload with a cancelled context: %v", err)
	}
	if slices.Contains(files(t, root), "t/q") {
		t.Error("Upload with a cancelled context wrote the object")
	}
}
