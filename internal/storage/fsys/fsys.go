// Package fsys is the seam through which storage changes files on a local
// disk: the directory bucket's uploads and deletions, and each tenant's
// checkpoint. Every call that creates, writes, syncs, renames or removes
// goes through an FS, so that a test can make any one of them fail as a
// full or failing disk would, or copy the disk aside at that instant as a
// crash would leave it. Reads go straight to the os package.
package fsys

import (
	"io"
	"os"
	"path/filepath"
)

// FS is the set of calls that change files. Implementations are safe for
// concurrent use.
type FS interface {
	// Create creates or truncates the file at path for writing.
	Create(path string, perm os.FileMode) (File, error)
	// CreateTemp creates a new file in dir, as os.CreateTemp does.
	CreateTemp(dir, pattern string) (File, error)
	// Mkdir creates one directory.
	Mkdir(path string, perm os.FileMode) error
	// MkdirAll creates a directory and its missing parents.
	MkdirAll(path string, perm os.FileMode) error
	// Rename renames a file or directory, replacing newpath.
	Rename(oldpath, newpath string) error
	// Remove removes a file or an empty directory.
	Remove(path string) error
	// RemoveAll removes path and everything under it.
	RemoveAll(path string) error
	// SyncDir fsyncs a directory, so that the creations, renames and
	// removals in it reach the disk.
	SyncDir(dir string) error
}

// File is a file open for writing.
type File interface {
	io.Writer
	// Name is the path the file was opened with.
	Name() string
	Chmod(mode os.FileMode) error
	Sync() error
	Close() error
}

// OS is the FS of the operating system.
type OS struct{}

var _ FS = OS{}

// Create implements FS.
func (OS) Create(path string, perm os.FileMode) (File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, perm)
}

// CreateTemp implements FS.
func (OS) CreateTemp(dir, pattern string) (File, error) { return os.CreateTemp(dir, pattern) }

// Mkdir implements FS.
func (OS) Mkdir(path string, perm os.FileMode) error { return os.Mkdir(path, perm) }

// MkdirAll implements FS.
func (OS) MkdirAll(path string, perm os.FileMode) error { return os.MkdirAll(path, perm) }

// Rename implements FS.
func (OS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// Remove implements FS.
func (OS) Remove(path string) error { return os.Remove(path) }

// RemoveAll implements FS.
func (OS) RemoveAll(path string) error { return os.RemoveAll(path) }

// SyncDir implements FS.
func (OS) SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// WriteFile writes data to path and fsyncs it. On an error the file may
// hold part of data: callers that need all or nothing use ReplaceFile.
func WriteFile(fs FS, path string, data []byte, perm os.FileMode) error {
	f, err := fs.Create(path, perm)
	if err != nil {
		return err
	}
	n, err := f.Write(data)
	if err == nil && n < len(data) {
		err = io.ErrShortWrite
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ReplaceFile writes data to path through the fsynced temporary file tmp
// and a rename, then fsyncs the directory: path holds its old content or
// the new, never a part, and the new one is durable once ReplaceFile
// returns nil.
//
// An error from the directory's fsync comes after the rename: path may then
// hold the new content, or, after a crash, the old. Callers must treat a
// failed ReplaceFile as leaving either.
func ReplaceFile(fs FS, path, tmp string, data []byte) error {
	if err := WriteFile(fs, tmp, data, 0o644); err != nil {
		fs.Remove(tmp)
		return err
	}
	if err := fs.Rename(tmp, path); err != nil {
		fs.Remove(tmp)
		return err
	}
	return fs.SyncDir(filepath.Dir(path))
}
