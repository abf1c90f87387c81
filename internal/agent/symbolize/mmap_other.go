//go:build !unix

package symbolize

import "os"

// mapFile reads the size bytes of f: without mmap, the copy is the
// mapping.
func mapFile(f *os.File, size int64) (data []byte, release func(), err error) {
	data, err = readFile(f, size)
	if err != nil {
		return nil, nil, err
	}
	return data, func() {}, nil
}

// settle does nothing: the copy is all in memory.
func settle([]byte) {}
