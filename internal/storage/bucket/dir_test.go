package bucket

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

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

func upload(t *testing.T, b Bucket, name, content string) {
	t.Helper()
	if err := b.Upload(context.Background(), name, strings.NewReader(content)); err != nil {
		t.Fatalf("Upload(%s): %v", name, err)
	}
}

// reader returns a function that reads all of what Get or GetRange
// returned.
func reader(t *testing.T) func(io.ReadCloser, error) string {
	return func(rc io.ReadCloser, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
}

func list(t *testing.T, b Bucket, dir string) []string {
	t.Helper()
	var names []string
	if err := b.Iter(context.Background(), dir, func(n string) error {
		names = append(names, n)
		return nil
	}); err != nil {
		t.Fatalf("Iter(%q): %v", dir, err)
	}
	return names
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

func TestDirObjects(t *testing.T) {
	ctx := context.Background()
	d, root := newTestDir(t)
	readAll := reader(t)
	upload(t, d, "a/blocks/1/meta.json", "{}")
	upload(t, d, "a/blocks/1/samples.parquet", "0123456789")
	upload(t, d, "a/blocks/2/index.bin", "x")
	upload(t, d, "top", "t")

	if got := readAll(d.Get(ctx, "a/blocks/1/samples.parquet")); got != "0123456789" {
		t.Errorf("Get = %q", got)
	}
	upload(t, d, "top", "replaced")
	if got := readAll(d.Get(ctx, "top")); got != "replaced" {
		t.Errorf("Get after a second Upload = %q", got)
	}
	fi, err := os.Stat(filepath.Join(root, "top"))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("object file mode %v, %v; want 0644", fi.Mode(), err)
	}

	for _, tc := range []struct {
		dir  string
		want []string
	}{
		{"", []string{"a/", "top"}},
		{"a", []string{"a/blocks/"}},
		{"a/blocks/", []string{"a/blocks/1/", "a/blocks/2/"}},
		{"a/blocks/1", []string{"a/blocks/1/meta.json", "a/blocks/1/samples.parquet"}},
		{"nope/", nil},
		{"top", nil},
	} {
		if d := cmp.Diff(tc.want, list(t, d, tc.dir)); d != "" {
			t.Errorf("Iter(%q) (-want +got):\n%s", tc.dir, d)
		}
	}
	stop := errors.New("stop")
	n := 0
	if err := d.Iter(ctx, "", func(string) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("Iter with f failing: called %d times, %v; want once, the error of f", n, err)
	}

	for _, name := range []string{"nope", "a/blocks/1", "a/blocks/1/", "top/x", "a/blocks/3/meta.json"} {
		_, err := d.Get(ctx, name)
		if name == "a/blocks/1/" {
			if err == nil {
				t.Errorf("Get(%q) succeeded", name)
			}
			continue
		}
		if !d.IsObjNotFoundErr(err) {
			t.Errorf("Get(%q): %v, want a not-found error", name, err)
		}
		if _, err := d.GetRange(ctx, name, 0, 1); !d.IsObjNotFoundErr(err) {
			t.Errorf("GetRange(%q): %v, want a not-found error", name, err)
		}
		if _, err := d.ReaderAt(ctx, name); !d.IsObjNotFoundErr(err) {
			t.Errorf("ReaderAt(%q): %v, want a not-found error", name, err)
		}
		if _, err := d.Attributes(ctx, name); !d.IsObjNotFoundErr(err) {
			t.Errorf("Attributes(%q): %v, want a not-found error", name, err)
		}
		if ok, err := d.Exists(ctx, name); ok || err != nil {
			t.Errorf("Exists(%q) = %v, %v; want false, nil", name, ok, err)
		}
	}
	if ok, err := d.Exists(ctx, "a/blocks/1/meta.json"); !ok || err != nil {
		t.Errorf("Exists(meta.json) = %v, %v", ok, err)
	}
	if a, err := d.Attributes(ctx, "a/blocks/1/samples.parquet"); err != nil || a.Size != 10 || a.LastModified.IsZero() {
		t.Errorf("Attributes = %+v, %v", a, err)
	}
	if d.IsObjNotFoundErr(errors.New("other")) || d.IsObjNotFoundErr(nil) {
		t.Error("IsObjNotFoundErr true for another error")
	}

	for _, name := range []string{"", "/abs", "a//b", "a/../b", "./a", "a/.", "a/" + tempPrefix + "x", "a/"} {
		if err := d.Upload(ctx, name, strings.NewReader("x")); err == nil {
			t.Errorf("Upload(%q) succeeded", name)
		}
	}
	if d := cmp.Diff([]string{"a/", "top"}, list(t, d, "")); d != "" {
		t.Errorf("bad names changed the bucket (-want +got):\n%s", d)
	}
}

func TestDirGetRange(t *testing.T) {
	ctx := context.Background()
	d, _ := newTestDir(t)
	readAll := reader(t)
	upload(t, d, "o", "0123456789")
	for _, tc := range []struct {
		off, length int64
		want        string
	}{
		{0, -1, "0123456789"},
		{0, 10, "0123456789"},
		{2, 3, "234"},
		{7, -1, "789"},
		{7, 100, "789"},
		{10, 1, ""},
		{20, -1, ""},
		{3, 0, ""},
	} {
		if got := readAll(d.GetRange(ctx, "o", tc.off, tc.length)); got != tc.want {
			t.Errorf("GetRange(%d, %d) = %q, want %q", tc.off, tc.length, got, tc.want)
		}
	}
	for _, r := range [][2]int64{{-1, 2}, {0, -2}} {
		if _, err := d.GetRange(ctx, "o", r[0], r[1]); err == nil || d.IsObjNotFoundErr(err) {
			t.Errorf("GetRange(%d, %d): %v, want an invalid-range error", r[0], r[1], err)
		}
	}
	ra, err := d.ReaderAt(ctx, "o")
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	if ra.Size() != 10 {
		t.Errorf("Size = %d", ra.Size())
	}
	if err := iotest.TestReader(io.NewSectionReader(ra, 0, ra.Size()), []byte("0123456789")); err != nil {
		t.Error(err)
	}
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

// TestDirUploadFailure checks that a failed upload leaves nothing: not the
// object, not the old one changed, not its temporary file.
func TestDirUploadFailure(t *testing.T) {
	ctx := context.Background()
	d, root := newTestDir(t)
	readAll := reader(t)
	upload(t, d, "t/o", "old")
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("new, half"), iotest.ErrReader(boom))
	if err := d.Upload(ctx, "t/o", r); !errors.Is(err, boom) {
		t.Fatalf("Upload from a failing reader: %v", err)
	}
	if err := d.Upload(ctx, "t/p", iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Fatalf("Upload from a failing reader: %v", err)
	}
	if got := readAll(d.Get(ctx, "t/o")); got != "old" {
		t.Errorf("object after a failed upload = %q, want the old content", got)
	}
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
