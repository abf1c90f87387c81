//go:build unix

package symbolize

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps the size bytes of f read-only. The mapping outlives f's
// descriptor; release unmaps it.
//
// A binary is mapped rather than read so that its pclntab, often tens of
// megabytes, is file-backed memory of which only the pages a lookup
// touches are resident, and which the kernel can drop under pressure,
// instead of a heap copy that counts in full. Random access is advised:
// a lookup reads a few scattered pages, and read-ahead would bring in
// their neighbours for nothing.
func mapFile(f *os.File, size int64) (data []byte, release func(), err error) {
	if size <= 0 || int64(int(size)) != size {
		return nil, nil, fmt.Errorf("map %s: size %d", f.Name(), size)
	}
	data, err = unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_PRIVATE)
	if err != nil {
		// A file system that cannot map files (some FUSE ones) can
		// still be read.
		if data, rerr := readFile(f, size); rerr == nil {
			return data, func() {}, nil
		}
		return nil, nil, fmt.Errorf("map %s: %w", f.Name(), err)
	}
	_ = unix.Madvise(data, unix.MADV_RANDOM) // advice only
	return data, func() { _ = unix.Munmap(data) }, nil
}

// settle drops the pages of a mapping from the process's resident set
// after loading, which reads far more of a file (headers, symbol tables, a
// scan of the data segment) than lookups will. The pages stay in the page
// cache: a lookup that needs one again maps it back without reading disk.
// The mapping is private and read-only, so nothing is lost.
func settle(data []byte) {
	_ = unix.Madvise(data, unix.MADV_DONTNEED)
}
