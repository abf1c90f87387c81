package bucket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/hearth-profiler/hearth/internal/storage/fsys"
)

// tempPrefix starts the names of the files that Dir.Upload writes before
// renaming them into place. Iter does not list them, and object names may
// not use it.
const tempPrefix = ".upload-"

// Dir is a Bucket over a local directory: the object "a/b/c" is the file
// ROOT/a/b/c, so a directory written by Hearth before the bucket existed is
// a bucket as it is.
//
// Upload writes a temporary file beside the object, fsyncs it, renames it
// into place and fsyncs the directory (and every directory it had to
// create): a reader never sees a partial object, and an object is on disk
// once Upload returns, even across a power cut. Delete fsyncs the directory
// too, so deletions land on disk in the order they were made, and it
// removes the directories it leaves empty, as an object store has no empty
// directories to list.
//
// A crash during an Upload can leave its temporary file. Iter never lists
// it; Delete removes it with the last object of its directory, or when
// given the directory's name ending in "/". For the same reason, an Upload
// into a directory whose last object is being deleted at the same time may
// fail (it never leaves a partial object); storage never does both at once.
type Dir struct {
	root string
	fs   fsys.FS
}

var _ Bucket = (*Dir)(nil)

// NewDir returns the bucket rooted at the directory root, creating it if it
// does not exist.
func NewDir(root string) (*Dir, error) { return NewDirFS(root, fsys.OS{}) }

// NewDirFS is NewDir making every change to the directory through fs, for
// tests that inject faults.
func NewDirFS(root string, fs fsys.FS) (*Dir, error) {
	root = filepath.Clean(root)
	if err := fs.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("create bucket dir: %w", err)
	}
	return &Dir{root: root, fs: fs}, nil
}

// Name returns the bucket's root directory.
func (d *Dir) Name() string { return d.root }

// Close does nothing: a Dir holds no resources.
func (d *Dir) Close() error { return nil }

// IsObjNotFoundErr says whether err means that an object is missing.
func (d *Dir) IsObjNotFoundErr(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// validName reports whether name is an object name: slash-separated
// non-empty elements, none of them ".", ".." or a temporary file's name.
func validName(name string) bool {
	if name == "" {
		return false
	}
	for el := range strings.SplitSeq(name, "/") {
		if el == "" || el == "." || el == ".." || strings.HasPrefix(el, tempPrefix) {
			return false
		}
	}
	return true
}

// path returns the file of the object name.
func (d *Dir) path(name string) (string, error) {
	if !validName(name) {
		return "", fmt.Errorf("bucket %s: invalid object name %q", d.root, name)
	}
	return filepath.Join(d.root, filepath.FromSlash(name)), nil
}

// dirPath returns the directory of a prefix: "" or "a/b", with or without
// a trailing slash.
func (d *Dir) dirPath(dir string) (string, error) {
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		return d.root, nil
	}
	return d.path(dir)
}

// notFound is the error for a name that is a directory, not an object.
func notFound(op, path string) error {
	return &fs.PathError{Op: op, Path: path, Err: fs.ErrNotExist}
}

// open opens the object's file, refusing directories.
func (d *Dir) open(ctx context.Context, name string) (*os.File, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	p, err := d.path(name)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err == nil && fi.IsDir() {
		err = notFound("open", p)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// Get returns a reader of the whole object.
func (d *Dir) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	f, _, err := d.open(ctx, name)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// GetRange returns a reader of length bytes of the object from off, or up
// to its end when length is -1.
func (d *Dir) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if off < 0 || length < -1 {
		return nil, fmt.Errorf("bucket %s: get %s: invalid range %d+%d", d.root, name, off, length)
	}
	f, _, err := d.open(ctx, name)
	if err != nil {
		return nil, err
	}
	if length == -1 {
		length = 1<<63 - 1
	}
	return &sectionReadCloser{SectionReader: io.NewSectionReader(f, off, length), f: f}, nil
}

type sectionReadCloser struct {
	*io.SectionReader
	f *os.File
}

func (r *sectionReadCloser) Close() error { return r.f.Close() }

// ReaderAt opens the object for random reads straight from its file, so
// that a query reads only the pages it needs, through the page cache.
func (d *Dir) ReaderAt(ctx context.Context, name string) (ReaderAt, error) {
	f, size, err := d.open(ctx, name)
	if err != nil {
		return nil, err
	}
	return &fileReaderAt{File: f, size: size}, nil
}

type fileReaderAt struct {
	*os.File
	size int64
}

func (r *fileReaderAt) Size() int64 { return r.size }

// Exists says whether the object exists.
func (d *Dir) Exists(ctx context.Context, name string) (bool, error) {
	_, err := d.Attributes(ctx, name)
	if d.IsObjNotFoundErr(err) {
		return false, nil
	}
	return err == nil, err
}

// Attributes returns the object's size and modification time.
func (d *Dir) Attributes(ctx context.Context, name string) (ObjectAttributes, error) {
	if err := ctx.Err(); err != nil {
		return ObjectAttributes{}, err
	}
	p, err := d.path(name)
	if err != nil {
		return ObjectAttributes{}, err
	}
	fi, err := os.Stat(p)
	if err == nil && fi.IsDir() {
		err = notFound("stat", p)
	}
	if err != nil {
		return ObjectAttributes{}, err
	}
	return ObjectAttributes{Size: fi.Size(), LastModified: fi.ModTime()}, nil
}

// Iter lists the objects and sub-directories directly under dir.
func (d *Dir) Iter(ctx context.Context, dir string, f func(name string) error) error {
	p, err := d.dirPath(dir)
	if err != nil {
		return err
	}
	ents, err := os.ReadDir(p)
	if d.IsObjNotFoundErr(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bucket %s: list %s: %w", d.root, dir, err)
	}
	prefix := strings.TrimSuffix(dir, "/")
	if prefix != "" {
		prefix += "/"
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		name := prefix + e.Name()
		if e.IsDir() {
			name += "/"
		}
		names = append(names, name)
	}
	// ReadDir sorts file names; with a directory's "/" added, "a/"
	// sorts after "a-b", as an object store lists them.
	slices.Sort(names)
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := f(name); err != nil {
			return err
		}
	}
	return nil
}

// copyBufferBytes is the buffer Upload copies through: large enough that
// streaming a big object costs few system calls.
const copyBufferBytes = 256 << 10

// Upload writes the object atomically and durably.
func (d *Dir) Upload(ctx context.Context, name string, r io.Reader) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := d.path(name)
	if err != nil {
		return err
	}
	dir := filepath.Dir(p)
	if err := d.mkdirAll(dir); err != nil {
		return fmt.Errorf("bucket %s: upload %s: %w", d.root, name, err)
	}
	f, err := d.fs.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("bucket %s: upload %s: %w", d.root, name, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			d.fs.Remove(f.Name())
			err = fmt.Errorf("bucket %s: upload %s: %w", d.root, name, err)
		}
	}()
	// Hide the file's ReadFrom, which would copy through a 32 KiB buffer
	// from anything but a file or socket.
	if _, err := io.CopyBuffer(struct{ io.Writer }{f}, r, make([]byte, copyBufferBytes)); err != nil {
		return err
	}
	// CreateTemp makes files only their owner can read; objects are
	// readable by others, as the files Hearth wrote before were, so that
	// other tools can open a block.
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := d.fs.Rename(f.Name(), p); err != nil {
		return err
	}
	return d.fs.SyncDir(dir)
}

// mkdirAll creates dir and its missing parents up to the root, fsyncing
// the parent of each one it creates: an object whose directory entry is on
// disk but whose directory is not would vanish in a power cut.
func (d *Dir) mkdirAll(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	parent := filepath.Dir(dir)
	if dir != d.root && parent != dir {
		if err := d.mkdirAll(parent); err != nil {
			return err
		}
	}
	if err := d.fs.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return d.fs.SyncDir(parent)
}

// Delete removes the object, or what remains of a directory (name ending
// in "/") whose objects were all deleted.
func (d *Dir) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if strings.HasSuffix(name, "/") {
		return d.deleteDir(name)
	}
	p, err := d.path(name)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(p)
	if err == nil && fi.IsDir() {
		err = notFound("remove", p)
	}
	if err == nil {
		err = d.fs.Remove(p)
	}
	if err == nil {
		err = d.fs.SyncDir(filepath.Dir(p))
	}
	if err == nil {
		err = d.prune(filepath.Dir(p))
	}
	if err != nil {
		return fmt.Errorf("bucket %s: delete %s: %w", d.root, name, err)
	}
	return nil
}

// deleteDir removes a directory that holds no object: only directories
// and temporary files, left by a crash.
func (d *Dir) deleteDir(name string) error {
	p, err := d.dirPath(name)
	if err != nil {
		return err
	}
	if p == d.root {
		return fmt.Errorf("bucket %s: delete %q: the root is not deleted", d.root, name)
	}
	err = filepath.WalkDir(p, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() && !strings.HasPrefix(e.Name(), tempPrefix) {
			return fmt.Errorf("%s holds object %s", name, path)
		}
		return nil
	})
	if d.IsObjNotFoundErr(err) {
		return nil
	}
	if err == nil {
		err = d.fs.RemoveAll(p)
	}
	if err == nil {
		err = d.fs.SyncDir(filepath.Dir(p))
	}
	if err == nil {
		err = d.prune(filepath.Dir(p))
	}
	if err != nil {
		return fmt.Errorf("bucket %s: delete %s: %w", d.root, name, err)
	}
	return nil
}

// prune removes dir and its parents below the root while they hold
// nothing but temporary files.
func (d *Dir) prune(dir string) error {
	for dir != d.root && strings.HasPrefix(dir, d.root+string(filepath.Separator)) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if e.IsDir() || !strings.HasPrefix(e.Name(), tempPrefix) {
				return nil
			}
		}
		for _, e := range ents {
			if err := d.fs.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
		if err := d.fs.Remove(dir); err != nil {
			// Something was created in it meanwhile: it stays.
			if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
				return nil
			}
			return err
		}
		dir = filepath.Dir(dir)
		if err := d.fs.SyncDir(dir); err != nil {
			return err
		}
	}
	return nil
}
