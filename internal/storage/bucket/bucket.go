// Package bucket is where storage keeps its blocks: a small object-store
// interface in the shape of thanos-io/objstore's Bucket; Dir, its
// implementation over a local directory (the default); Objstore, the one
// over a bucket of objstore (S3 and the stores compatible with it); and
// Config, the storage.bucket section of the configuration file that Open
// turns into one of them.
//
// Object names are slash-separated paths relative to the bucket's root,
// such as "team-a/blocks/01KAPQ7G6V6N1X5Z0D8C3J5M2A/meta.json". There are
// no directories as such: a "directory" is the common prefix of some
// objects' names, and Iter lists one level of them.
package bucket

import (
	"context"
	"io"
	"time"
)

// Bucket stores objects by name. Implementations are safe for concurrent
// use. An object is written whole by one Upload: a reader sees the old
// object, none, or the new one, never a part.
type Bucket interface {
	// Iter calls f with the name of every object and every sub-directory
	// directly under dir, in lexical order; the names of sub-directories
	// end in "/". dir is "" for the root, with or without a trailing "/"
	// otherwise. Iter stops at the first error f returns and returns it. A
	// dir that holds nothing is not an error: f is not called. A
	// directory whose objects were all deleted may still be listed for a
	// while, on a store that removes it in the background (SeaweedFS).
	Iter(ctx context.Context, dir string, f func(name string) error) error

	// Get returns a reader of the whole object. Reading a missing object
	// is an error for which IsObjNotFoundErr is true.
	Get(ctx context.Context, name string) (io.ReadCloser, error)

	// GetRange returns a reader of length bytes of the object from off;
	// length -1 means up to its end. A range past the end of the object is
	// cut at the end. Errors are as for Get.
	GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error)

	// ReaderAt opens the object for random reads, which the Parquet
	// samples of a block need. Errors are as for Get.
	ReaderAt(ctx context.Context, name string) (ReaderAt, error)

	// Exists says whether the object exists.
	Exists(ctx context.Context, name string) (bool, error)

	// Attributes returns the object's size and modification time. Errors
	// are as for Get.
	Attributes(ctx context.Context, name string) (ObjectAttributes, error)

	// Upload writes the object from r, replacing any object of that name.
	// The object is durable and visible when Upload returns nil. After an
	// error it is never partial, but it may be the new one all the same:
	// an object store can store it and lose its answer, and Dir has
	// renamed it into place when the directory's fsync fails. A caller
	// for whom that matters deletes it.
	Upload(ctx context.Context, name string, r io.Reader) error

	// Delete removes the object; it is durable when Delete returns.
	// Deleting a missing object returns an error for which
	// IsObjNotFoundErr is true, or nil where the store does not tell
	// (S3 does not).
	//
	// A name ending in "/" is a directory whose objects were all deleted:
	// a bucket with real directories (Dir) removes what a crash may have
	// left of it (empty directories, files of interrupted uploads); a
	// bucket without them has nothing to do and returns nil.
	Delete(ctx context.Context, name string) error

	// IsObjNotFoundErr says whether err means that an object is missing.
	IsObjNotFoundErr(err error) bool

	// Name names the bucket in logs and errors.
	Name() string

	// Close releases the bucket's resources.
	Close() error
}

// ReaderAt is an open object read at random offsets.
type ReaderAt interface {
	io.ReaderAt
	io.Closer
	// Size is the object's length in bytes.
	Size() int64
}

// ObjectAttributes describe an object.
type ObjectAttributes struct {
	// Size is the object's length in bytes.
	Size int64
	// LastModified is when the object was last uploaded.
	LastModified time.Time
}
