package bucket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"
)

// Mem is a Bucket in memory. A querier holds in one the blocks that an
// ingester wrote of its heads for one query (storage.HeadSnapshot), and
// unit tests use it as an in-process object store. Objects are kept as
// the byte slices uploaded; nothing is persisted.
type Mem struct {
	name string
	mu   sync.RWMutex
	objs map[string]memObject
}

type memObject struct {
	data []byte
	mod  time.Time
}

// NewMem returns an empty Mem named name in logs and errors.
func NewMem(name string) *Mem { return &Mem{name: name, objs: map[string]memObject{}} }

// errMemNotFound is the error of a missing object.
var errMemNotFound = fs.ErrNotExist

// Name returns the bucket's name.
func (m *Mem) Name() string { return m.name }

// Close does nothing: the objects go with the Mem.
func (m *Mem) Close() error { return nil }

// IsObjNotFoundErr says whether err means that an object is missing.
func (m *Mem) IsObjNotFoundErr(err error) bool { return errors.Is(err, errMemNotFound) }

func (m *Mem) get(name string) ([]byte, error) {
	m.mu.RLock()
	o, ok := m.objs[name]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("bucket %s: %s: %w", m.name, name, errMemNotFound)
	}
	return o.data, nil
}

// Get returns a reader of the whole object.
func (m *Mem) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	b, err := m.get(name)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// GetRange returns a reader of length bytes from off; -1 is to the end.
func (m *Mem) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	b, err := m.get(name)
	if err != nil {
		return nil, err
	}
	if off < 0 || (length < 0 && length != -1) {
		return nil, fmt.Errorf("bucket %s: %s: bad range %d+%d", m.name, name, off, length)
	}
	off = min(off, int64(len(b)))
	end := int64(len(b))
	if length >= 0 {
		end = min(end, off+length)
	}
	return io.NopCloser(bytes.NewReader(b[off:end])), nil
}

// ReaderAt opens the object for random reads.
func (m *Mem) ReaderAt(ctx context.Context, name string) (ReaderAt, error) {
	b, err := m.get(name)
	if err != nil {
		return nil, err
	}
	return memReaderAt{bytes.NewReader(b)}, nil
}

type memReaderAt struct{ *bytes.Reader }

func (memReaderAt) Close() error { return nil }

// Exists says whether the object exists.
func (m *Mem) Exists(ctx context.Context, name string) (bool, error) {
	_, err := m.get(name)
	return err == nil, nil
}

// Attributes returns the object's size and upload time.
func (m *Mem) Attributes(ctx context.Context, name string) (ObjectAttributes, error) {
	m.mu.RLock()
	o, ok := m.objs[name]
	m.mu.RUnlock()
	if !ok {
		return ObjectAttributes{}, fmt.Errorf("bucket %s: %s: %w", m.name, name, errMemNotFound)
	}
	return ObjectAttributes{Size: int64(len(o.data)), LastModified: o.mod}, nil
}

// Iter lists the objects and sub-directories directly under dir.
func (m *Mem) Iter(ctx context.Context, dir string, f func(name string) error) error {
	prefix := strings.TrimSuffix(dir, "/")
	if prefix != "" {
		prefix += "/"
	}
	seen := map[string]bool{}
	m.mu.RLock()
	for name := range m.objs {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			continue
		}
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			seen[prefix+rest[:i+1]] = true
		} else {
			seen[name] = true
		}
	}
	m.mu.RUnlock()
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := f(n); err != nil {
			return err
		}
	}
	return nil
}

// Upload stores the object read from r, whole.
func (m *Mem) Upload(ctx context.Context, name string, r io.Reader) error {
	if !validName(name) {
		return fmt.Errorf("bucket %s: invalid object name %q", m.name, name)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("bucket %s: upload %s: %w", m.name, name, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	m.objs[name] = memObject{data: b, mod: time.Now()}
	m.mu.Unlock()
	return nil
}

// Delete removes the object; a name ending in "/" has nothing to remove.
func (m *Mem) Delete(ctx context.Context, name string) error {
	if dir, ok := strings.CutSuffix(name, "/"); ok {
		if !validName(dir) {
			return fmt.Errorf("bucket %s: invalid directory name %q", m.name, name)
		}
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objs[name]; !ok {
		return fmt.Errorf("bucket %s: %s: %w", m.name, name, errMemNotFound)
	}
	delete(m.objs, name)
	return nil
}

// Objects returns the names of every object, sorted.
func (m *Mem) Objects() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	names := make([]string, 0, len(m.objs))
	for n := range m.objs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Bytes returns the content of an object, which the caller must not
// change, and whether it exists.
func (m *Mem) Bytes(name string) ([]byte, bool) {
	b, err := m.get(name)
	return b, err == nil
}
