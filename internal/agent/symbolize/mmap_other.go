//go:build !unix

package symbolize

import (
	"fmt"
	"io"
	"os"
)

// mapFile reads the size bytes of f: without mmap, the copy is the
// mapping.
func mapFile(f *os.File, size int64) (data []byte, release func(), err error) {
	if size <= 0 || size > maxLoadBytes {
		return nil, nil, fmt.Errorf("read %s: size %d", f.Name(), size)
	}
	data = make([]byte, size)
	if _, err := io.ReadFull(io.NewSectionReader(f, 0, size), data); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	return data, func() {}, nil
}

// settle does nothing: the copy is all in memory.
func settle([]byte) {}
