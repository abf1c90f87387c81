package bucket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/thanos-io/objstore"
)

// Objstore is a Bucket over a bucket of thanos-io/objstore: S3 and the
// stores compatible with it (SeaweedFS, Ceph RGW, MinIO, versitygw), or
// any other provider of that library. It gives the provider the
// guarantees that Bucket promises and object stores differ on:
//
//   - Iter lists one level in lexical order, sub-directories ending in
//     "/" (S3 answers objects and prefixes apart, page by page);
//   - GetRange of an empty range, or of one past the object's end, is an
//     empty reader (S3 answers 416);
//   - ReaderAt reads with one ranged GET per ReadAt, at the offsets asked,
//     knowing the object's size from Attributes: a query reads only the
//     pages it needs;
//   - Upload of a reader of unknown length (a block's samples stream
//     through a pipe) is first spooled, in memory up to spoolMemoryBytes
//     and past that in a file of the spool directory, so that the
//     provider uploads an object of known size: in one PUT, or in parts
//     of a bounded size, rather than through the 512 MiB part buffer that
//     the S3 client allocates for a stream of unknown length;
//   - every error of the store other than a missing object is an
//     *UnavailableError, which says that the store did not answer rather
//     than that the object is bad.
//
// S3's PUT is atomic and durable when it is acknowledged, so Upload is
// too. An object store has no directories: deleting a name ending in "/"
// does nothing, and deleting a missing object succeeds.
type Objstore struct {
	b        objstore.Bucket
	name     string
	spoolDir string
	// cond makes the conditional writes (ConditionalUploader) in the
	// bucket condBucket; nil when the provider is not S3.
	cond       *minio.Client
	condBucket string
}

var _ Bucket = (*Objstore)(nil)

// spoolMemoryBytes is how much of an upload of unknown length is held in
// memory; a longer one is spooled to a file. It is the S3 client's own
// threshold for a single PUT.
const spoolMemoryBytes = 16 << 20

// ObjstoreOptions configure FromObjstore.
type ObjstoreOptions struct {
	// Name names the bucket in logs and errors; "" means the provider's
	// name and the bucket's, as "s3:hearth".
	Name string
	// SpoolDir is the local directory where uploads of unknown length
	// longer than spoolMemoryBytes are spooled; "" means the system's
	// temporary directory. FromObjstore creates it, and removes what an
	// earlier process left in it.
	SpoolDir string
}

// FromObjstore returns the Bucket over b. Closing it closes b.
func FromObjstore(b objstore.Bucket, opts ObjstoreOptions) (*Objstore, error) {
	o := &Objstore{b: b, name: opts.Name, spoolDir: opts.SpoolDir}
	if o.name == "" {
		o.name = strings.ToLower(string(b.Provider())) + ":" + b.Name()
	}
	if o.spoolDir != "" {
		if err := os.MkdirAll(o.spoolDir, 0o755); err != nil {
			return nil, fmt.Errorf("bucket %s: create spool dir: %w", o.name, err)
		}
		// Files of uploads that a crash cut short.
		old, _ := filepath.Glob(filepath.Join(o.spoolDir, tempPrefix+"*"))
		for _, f := range old {
			os.Remove(f)
		}
	}
	return o, nil
}

// Name names the bucket.
func (o *Objstore) Name() string { return o.name }

// Close closes the provider's bucket.
func (o *Objstore) Close() error { return o.b.Close() }

// IsObjNotFoundErr says whether err, or an error it wraps, is the
// provider's error for a missing object.
func (o *Objstore) IsObjNotFoundErr(err error) bool {
	// The S3 provider looks through github.com/pkg/errors wrapping only.
	for e := err; e != nil; e = errors.Unwrap(e) {
		if o.b.IsObjNotFoundErr(e) {
			return true
		}
	}
	return false
}

// UnavailableError is the error of an operation that the bucket could not
// carry out for a reason of its own: the store did not answer in time,
// could not be reached, refused the credentials or failed. It says
// nothing about the object, so a caller must not take it for damage; the
// operation may succeed later.
type UnavailableError struct {
	Bucket string
	Op     string // list, get, stat, upload, delete
	Name   string // the object or directory; "" for the bucket's root
	Err    error
}

func (e *UnavailableError) Error() string {
	msg := e.Err.Error()
	// The S3 client's network errors quote the whole request URL, query
	// and all; what went wrong is at the end.
	var ue *url.Error
	if errors.As(e.Err, &ue) {
		msg = ue.Err.Error()
	}
	if e.Name == "" {
		return fmt.Sprintf("bucket %s: %s: %s", e.Bucket, e.Op, msg)
	}
	return fmt.Sprintf("bucket %s: %s %s: %s", e.Bucket, e.Op, e.Name, msg)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// IsUnavailable says whether err is, or wraps, an *UnavailableError.
func IsUnavailable(err error) bool {
	var ue *UnavailableError
	return errors.As(err, &ue)
}

// fail returns err of op on name as it is when it means a missing object
// or the end of the caller's context, and as an *UnavailableError
// otherwise.
func (o *Objstore) fail(ctx context.Context, op, name string, err error) error {
	if o.IsObjNotFoundErr(err) {
		return err
	}
	if cerr := ctx.Err(); cerr != nil && errors.Is(err, cerr) {
		return fmt.Errorf("bucket %s: %s %s: %w", o.name, op, name, err)
	}
	return &UnavailableError{Bucket: o.name, Op: op, Name: name, Err: err}
}

func (o *Objstore) checkName(name string) error {
	if !validName(name) {
		return fmt.Errorf("bucket %s: invalid object name %q", o.name, name)
	}
	return nil
}

// Iter lists the objects and sub-directories directly under dir, in
// lexical order.
func (o *Objstore) Iter(ctx context.Context, dir string, f func(name string) error) error {
	dir = strings.TrimSuffix(dir, "/")
	if dir != "" {
		if err := o.checkName(dir); err != nil {
			return err
		}
		dir += "/"
	}
	var names []string
	if err := o.b.Iter(ctx, dir, func(name string) error {
		names = append(names, name)
		return nil
	}); err != nil {
		return o.fail(ctx, "list", dir, err)
	}
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

// Get returns a reader of the whole object.
func (o *Objstore) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := o.checkName(name); err != nil {
		return nil, err
	}
	rc, err := o.b.Get(ctx, name)
	if err == io.EOF {
		// The S3 provider reads the first bytes before it returns, and
		// an empty object has none.
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	if err != nil {
		return nil, o.fail(ctx, "get", name, err)
	}
	return &bodyReader{rc: rc, o: o, ctx: ctx, name: name}, nil
}

// bodyReader reports the errors of reading an object's body, a connection
// that broke part way, as the bucket's.
type bodyReader struct {
	rc   io.ReadCloser
	o    *Objstore
	ctx  context.Context
	name string
}

func (r *bodyReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if err != nil && err != io.EOF {
		err = r.o.fail(r.ctx, "get", r.name, err)
	}
	return n, err
}

func (r *bodyReader) Close() error { return r.rc.Close() }

// GetRange returns a reader of length bytes of the object from off, or up
// to its end when length is -1.
func (o *Objstore) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if err := o.checkName(name); err != nil {
		return nil, err
	}
	if off < 0 || length < -1 {
		return nil, fmt.Errorf("bucket %s: get %s: invalid range %d+%d", o.name, name, off, length)
	}
	if length == 0 {
		// S3 has no empty range; the object must exist all the same.
		if _, err := o.Attributes(ctx, name); err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	rc, err := o.b.GetRange(ctx, name, off, length)
	if err == io.EOF {
		return io.NopCloser(bytes.NewReader(nil)), nil // as in Get
	}
	if err != nil {
		if o.IsObjNotFoundErr(err) || ctx.Err() != nil {
			return nil, o.fail(ctx, "get", name, err)
		}
		// A range that starts at or past the end: S3 refuses it, where
		// Bucket promises an empty reader.
		if a, aerr := o.b.Attributes(ctx, name); aerr == nil && off >= a.Size {
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
		return nil, o.fail(ctx, "get", name, err)
	}
	return &bodyReader{rc: rc, o: o, ctx: ctx, name: name}, nil
}

// ReaderAt opens the object for random reads: each ReadAt is one ranged
// GET of the bytes asked.
func (o *Objstore) ReaderAt(ctx context.Context, name string) (ReaderAt, error) {
	a, err := o.Attributes(ctx, name)
	if err != nil {
		return nil, err
	}
	return &rangeReaderAt{o: o, name: name, size: a.Size}, nil
}

type rangeReaderAt struct {
	o    *Objstore
	name string
	size int64
}

func (r *rangeReaderAt) Size() int64 { return r.size }

func (r *rangeReaderAt) Close() error { return nil }

// ReadAt reads len(p) bytes from off with one GET. It has no context of
// its own: a read that the store does not answer ends with the HTTP
// client's timeouts.
func (r *rangeReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("bucket %s: read %s: negative offset %d", r.o.name, r.name, off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if off >= r.size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), r.size-off)
	ctx := context.Background()
	rc, err := r.o.b.GetRange(ctx, r.name, off, n)
	if err != nil {
		return 0, r.o.fail(ctx, "get", r.name, err)
	}
	defer rc.Close()
	m, err := io.ReadFull(rc, p[:n])
	if err != nil {
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			// The object is shorter than it was when opened: objects
			// of a block are never replaced, so it is damaged.
			return m, fmt.Errorf("bucket %s: read %s: %d bytes at %d, want %d: object shorter than its %d bytes",
				r.o.name, r.name, m, off, n, r.size)
		}
		return m, r.o.fail(ctx, "get", r.name, err)
	}
	if m < len(p) {
		return m, io.EOF
	}
	return m, nil
}

// Exists says whether the object exists.
func (o *Objstore) Exists(ctx context.Context, name string) (bool, error) {
	if err := o.checkName(name); err != nil {
		return false, err
	}
	ok, err := o.b.Exists(ctx, name)
	if err != nil {
		return false, o.fail(ctx, "stat", name, err)
	}
	return ok, nil
}

// Attributes returns the object's size and modification time.
func (o *Objstore) Attributes(ctx context.Context, name string) (ObjectAttributes, error) {
	if err := o.checkName(name); err != nil {
		return ObjectAttributes{}, err
	}
	a, err := o.b.Attributes(ctx, name)
	if err != nil {
		return ObjectAttributes{}, o.fail(ctx, "stat", name, err)
	}
	return ObjectAttributes{Size: a.Size, LastModified: a.LastModified}, nil
}

// Upload writes the object from r; it is durable once Upload returns nil.
func (o *Objstore) Upload(ctx context.Context, name string, r io.Reader) error {
	if err := o.checkName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := objstore.TryToGetSize(r); err != nil {
		body, done, err := o.spool(r)
		if err != nil {
			return fmt.Errorf("bucket %s: upload %s: %w", o.name, name, err)
		}
		defer done()
		r = body
	}
	if err := o.b.Upload(ctx, name, r); err != nil {
		return o.fail(ctx, "upload", name, err)
	}
	return nil
}

// spool reads r to its end into memory or, past spoolMemoryBytes, into a
// file, and returns a reader of what it read whose length the provider
// can tell, and a function that releases it.
func (o *Objstore) spool(r io.Reader) (io.Reader, func(), error) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(r, spoolMemoryBytes+1)); err != nil {
		return nil, nil, err
	}
	if buf.Len() <= spoolMemoryBytes {
		return bytes.NewReader(buf.Bytes()), func() {}, nil
	}
	dir := o.spoolDir
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return nil, nil, fmt.Errorf("spool: %w", err)
	}
	done := func() {
		f.Close()
		os.Remove(f.Name())
	}
	if _, err := io.Copy(f, io.MultiReader(&buf, r)); err != nil {
		done()
		return nil, nil, fmt.Errorf("spool: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		done()
		return nil, nil, fmt.Errorf("spool: %w", err)
	}
	return f, done, nil
}

// Delete removes the object. A name ending in "/" is a directory, which
// an object store does not have: there is nothing to do.
func (o *Objstore) Delete(ctx context.Context, name string) error {
	if strings.HasSuffix(name, "/") {
		if err := o.checkName(strings.TrimSuffix(name, "/")); err != nil {
			return err
		}
		return nil
	}
	if err := o.checkName(name); err != nil {
		return err
	}
	if err := o.b.Delete(ctx, name); err != nil {
		return o.fail(ctx, "delete", name, err)
	}
	return nil
}
