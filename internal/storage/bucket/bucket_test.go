package bucket

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
	"github.com/thanos-io/objstore"

	"github.com/hearth-profiler/hearth/internal/s3test"
)

// What every Bucket promises, checked on each implementation: Dir, Mem, the
// objstore adapter over objstore's in-memory bucket, and over a real S3
// server (versitygw, or the one HEARTH_TEST_S3_ENDPOINT names).

// implementations returns a constructor of an empty bucket of each kind.
func implementations() []struct {
	name string
	new  func(t *testing.T) Bucket
} {
	return []struct {
		name string
		new  func(t *testing.T) Bucket
	}{
		{"dir", func(t *testing.T) Bucket { d, _ := newTestDir(t); return d }},
		{"objstore-inmem", func(t *testing.T) Bucket { return newObjstore(t, objstore.NewInMemBucket()) }},
		{"mem", func(t *testing.T) Bucket { return NewMem("test") }},
		{"s3", newS3},
		{"cached", newCachedTest},
	}
}

func newObjstore(t *testing.T, b objstore.Bucket) *Objstore {
	t.Helper()
	o, err := FromObjstore(b, ObjstoreOptions{SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// newS3 returns a new bucket on a server of its own.
func newS3(t *testing.T) Bucket {
	t.Helper()
	srv := s3test.Start(t)
	b, err := Open(&Config{Type: TypeS3, Config: srv.Config(srv.NewBucket(t))}, Options{SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// contract runs f on a new bucket of each kind.
func contract(t *testing.T, f func(t *testing.T, b Bucket)) {
	for _, impl := range implementations() {
		t.Run(impl.name, func(t *testing.T) { f(t, impl.new(t)) })
	}
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

// objects lists the objects under dir, at every depth. A store may list
// for a while a directory whose objects were all deleted (SeaweedFS
// removes it in the background): it holds none.
func objects(t *testing.T, b Bucket, dir string) []string {
	t.Helper()
	var out []string
	for _, n := range list(t, b, dir) {
		if strings.HasSuffix(n, "/") {
			out = append(out, objects(t, b, n)...)
		} else {
			out = append(out, n)
		}
	}
	return out
}

func TestObjects(t *testing.T) {
	contract(t, func(t *testing.T, d Bucket) {
		ctx := context.Background()
		readAll := reader(t)
		upload(t, d, "a/blocks/1/meta.json", "{}")
		upload(t, d, "a/blocks/1/samples.parquet", "0123456789")
		upload(t, d, "a/blocks/2/index.bin", "x")
		// Names that sort apart from their directory's ("a-" < "a/"),
		// and tenant names as storage escapes them.
		upload(t, d, "a-b/x", "y")
		upload(t, d, "%25/blocks/1/meta.json", "{}")
		upload(t, d, "top", "t")

		if got := readAll(d.Get(ctx, "a/blocks/1/samples.parquet")); got != "0123456789" {
			t.Errorf("Get = %q", got)
		}
		upload(t, d, "top", "replaced")
		if got := readAll(d.Get(ctx, "top")); got != "replaced" {
			t.Errorf("Get after a second Upload = %q", got)
		}

		for _, tc := range []struct {
			dir  string
			want []string
		}{
			{"", []string{"%25/", "a-b/", "a/", "top"}},
			{"a", []string{"a/blocks/"}},
			{"a/blocks/", []string{"a/blocks/1/", "a/blocks/2/"}},
			{"a/blocks/1", []string{"a/blocks/1/meta.json", "a/blocks/1/samples.parquet"}},
			{"%25/blocks", []string{"%25/blocks/1/"}},
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
			if _, err := d.GetRange(ctx, name, 0, 0); !d.IsObjNotFoundErr(err) {
				t.Errorf("GetRange(%q, 0, 0): %v, want a not-found error", name, err)
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
		if d := cmp.Diff([]string{"%25/", "a-b/", "a/", "top"}, list(t, d, "")); d != "" {
			t.Errorf("bad names changed the bucket (-want +got):\n%s", d)
		}
	})
}

func TestGetRange(t *testing.T) {
	contract(t, func(t *testing.T, d Bucket) {
		ctx := context.Background()
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
			{10, -1, ""},
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
		buf := make([]byte, 4)
		if n, err := ra.ReadAt(buf, 8); n != 2 || err != io.EOF || string(buf[:n]) != "89" {
			t.Errorf("ReadAt past the end = %d %q, %v; want 2 \"89\", EOF", n, buf[:n], err)
		}
		if n, err := ra.ReadAt(buf, 10); n != 0 || err != io.EOF {
			t.Errorf("ReadAt at the end = %d, %v; want 0, EOF", n, err)
		}
	})
}

func TestDelete(t *testing.T) {
	contract(t, func(t *testing.T, d Bucket) {
		ctx := context.Background()
		upload(t, d, "t/checkpoint", "c")
		upload(t, d, "t/blocks/1/meta.json", "{}")
		upload(t, d, "t/blocks/1/index.bin", "i")
		upload(t, d, "t/blocks/2/meta.json", "{}")

		// A missing object: a not-found error where the store tells.
		for _, name := range []string{"t/blocks/1/nope", "t/blocks/1"} {
			if err := d.Delete(ctx, name); err != nil && !d.IsObjNotFoundErr(err) {
				t.Errorf("Delete(%q): %v, want nil or a not-found error", name, err)
			}
		}
		for _, n := range []string{"t/blocks/1/meta.json", "t/blocks/1/index.bin"} {
			if err := d.Delete(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Delete(ctx, "t/blocks/1/"); err != nil {
			t.Errorf("Delete(a directory emptied): %v", err)
		}
		if df := cmp.Diff([]string{"t/blocks/2/meta.json"}, objects(t, d, "t/blocks/")); df != "" {
			t.Errorf("objects after deleting a block (-want +got):\n%s", df)
		}
		if _, err := d.Get(ctx, "t/blocks/1/meta.json"); !d.IsObjNotFoundErr(err) {
			t.Errorf("Get of a deleted object: %v, want a not-found error", err)
		}
		for _, n := range []string{"t/blocks/2/meta.json", "t/checkpoint"} {
			if err := d.Delete(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
		if got := objects(t, d, ""); len(got) != 0 {
			t.Errorf("objects after deleting everything: %q", got)
		}
		if err := d.Delete(ctx, "/"); err == nil {
			t.Error("Delete of the root succeeded")
		}
	})
}

// failUploads uploads "old" to t/o, then fails an upload over it and one
// of t/p, with readers that fail half way and at once.
func failUploads(t *testing.T, d Bucket) {
	t.Helper()
	ctx := context.Background()
	upload(t, d, "t/o", "old")
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("new, half"), iotest.ErrReader(boom))
	if err := d.Upload(ctx, "t/o", r); !errors.Is(err, boom) {
		t.Fatalf("Upload from a failing reader: %v", err)
	}
	if err := d.Upload(ctx, "t/p", iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Fatalf("Upload from a failing reader: %v", err)
	}
}

// TestUploadFailure checks that a failed upload leaves nothing: not the
// object, not the old one changed.
func TestUploadFailure(t *testing.T) {
	contract(t, func(t *testing.T, d Bucket) {
		ctx := context.Background()
		readAll := reader(t)
		failUploads(t, d)
		if got := readAll(d.Get(ctx, "t/o")); got != "old" {
			t.Errorf("object after a failed upload = %q, want the old content", got)
		}
		if df := cmp.Diff([]string{"t/o"}, list(t, d, "t/")); df != "" {
			t.Errorf("objects after failed uploads (-want +got):\n%s", df)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := d.Upload(cctx, "t/q", bytes.NewReader(nil)); !errors.Is(err, context.Canceled) {
			t.Errorf("Upload with a cancelled context: %v", err)
		}
		if slices.Contains(list(t, d, "t/"), "t/q") {
			t.Error("Upload with a cancelled context wrote the object")
		}
	})
}

// TestUploadLarge uploads objects of unknown length, from a reader that
// hides its type, below and above what the objstore adapter spools in
// memory, and reads them back whole and in ranges.
func TestUploadLarge(t *testing.T) {
	contract(t, func(t *testing.T, d Bucket) {
		ctx := context.Background()
		readAll := reader(t)
		for _, size := range []int{0, 1 << 20, spoolMemoryBytes + 3<<20} {
			data := make([]byte, size)
			for i := range data {
				data[i] = byte(i * 7 / 3)
			}
			name := "large/" + strings.Repeat("x", size%7+1)
			if err := d.Upload(ctx, name, struct{ io.Reader }{bytes.NewReader(data)}); err != nil {
				t.Fatalf("Upload(%d bytes): %v", size, err)
			}
			if got := readAll(d.Get(ctx, name)); got != string(data) {
				t.Fatalf("Get of %d bytes: %d bytes back, or different ones", size, len(got))
			}
			if a, err := d.Attributes(ctx, name); err != nil || a.Size != int64(size) {
				t.Errorf("Attributes = %+v, %v; want size %d", a, err, size)
			}
			if size > 10 {
				off := int64(size - 10)
				if got := readAll(d.GetRange(ctx, name, off, 5)); got != string(data[off:off+5]) {
					t.Errorf("GetRange(%d, 5) = %q", off, got)
				}
			}
		}
	})
}
