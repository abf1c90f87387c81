package wal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// magic starts every record of the current framing. Read as a little-endian
// length, 0x314c5748, it is above MaxRecordBytes, so no record of the old
// framing starts with it. It is what resynchronisation looks for: after
// damage, only offsets holding it are candidates in a segment of the
// current framing.
var magic = [4]byte{'H', 'W', 'L', '1'}

// headerBytes is the size of a record's header in the current framing.
const headerBytes = 12

// oldHeaderBytes is the size of a record's header in the old framing.
const oldHeaderBytes = 8

// damage is a stretch [off, end) of a segment holding no whole record.
type damage struct{ off, end int64 }

// windowBytes is how much of a segment scan reads at a time.
const windowBytes = 1 << 20

// segReader serves byte ranges of a segment from a window read ahead.
type segReader struct {
	r      io.ReaderAt
	size   int64
	win    []byte
	winOff int64
	big    []byte // for a range larger than the window
	peek   [oldHeaderBytes]byte
}

// at returns the n bytes at off, valid until the next call, or nil if they
// run past the end of the segment.
func (s *segReader) at(off int64, n int) ([]byte, error) {
	if off < 0 || n < 0 || off+int64(n) > s.size {
		return nil, nil
	}
	if off >= s.winOff && off+int64(n) <= s.winOff+int64(len(s.win)) {
		return s.win[off-s.winOff:][:n], nil
	}
	if n > windowBytes {
		if cap(s.big) < n {
			s.big = make([]byte, n)
		}
		b := s.big[:n]
		if _, err := s.r.ReadAt(b, off); err != nil {
			return nil, fmt.Errorf("read %d bytes at %d: %w", n, off, err)
		}
		return b, nil
	}
	if s.win == nil {
		// A small segment gets a window of its size.
		s.win = make([]byte, min(int64(windowBytes), s.size))
	}
	s.win = s.win[:min(int64(windowBytes), s.size-off)]
	s.winOff = off
	if _, err := s.r.ReadAt(s.win, off); err != nil {
		s.win = s.win[:0]
		return nil, fmt.Errorf("read %d bytes at %d: %w", len(s.win), off, err)
	}
	return s.win[:n], nil
}

// scan reads a segment of size bytes from r. It calls fn with each whole
// record and onDamage with each stretch between whole records (or before
// the first, or after the last) that holds none, in file order. A stretch
// ends at the next offset where a whole record checks out, so damage costs
// only the records it touches.
//
// The segment's framing is the current one if it starts with the magic. A
// segment that does not may be of the old framing, or of the current one
// with its first bytes damaged: both framings are tried at each offset.
func scan(r io.ReaderAt, size int64, fn func([]byte) error, onDamage func(damage)) error {
	s := &segReader{r: r, size: size}
	first, err := s.at(0, len(magic))
	if err != nil {
		return err
	}
	allowOld := first != nil && !bytes.Equal(first, magic[:])
	var off int64
	for off < size {
		p, next, err := s.recordAt(off, allowOld, false)
		if err != nil {
			return err
		}
		if next > 0 {
			if fn != nil {
				if err := fn(p); err != nil {
					return err
				}
			}
			off = next
			continue
		}
		end, err := s.resync(off+1, allowOld)
		if err != nil {
			return err
		}
		if onDamage != nil {
			onDamage(damage{off, end})
		}
		off = end
	}
	return nil
}

// recordAt returns the payload of the whole record at off and the offset
// after it, or a next of 0 if there is none. resyncing says that off is a
// candidate after damage.
func (s *segReader) recordAt(off int64, allowOld, resyncing bool) (payload []byte, next int64, err error) {
	h, err := s.at(off, headerBytes)
	if err != nil {
		return nil, 0, err
	}
	if h == nil {
		h, err = s.at(off, oldHeaderBytes)
		if err != nil || h == nil {
			return nil, 0, err
		}
	}
	if bytes.Equal(h[:len(magic)], magic[:]) {
		if len(h) < headerBytes {
			return nil, 0, nil
		}
		// The length's share of the checksum is taken now: h is only
		// valid until the next read.
		lenSum := crc32.Checksum(h[4:8], castagnoli)
		n := binary.LittleEndian.Uint32(h[4:])
		sum := binary.LittleEndian.Uint32(h[8:])
		if n > MaxRecordBytes {
			return nil, 0, nil
		}
		p, err := s.at(off+headerBytes, int(n))
		if err != nil || p == nil {
			return nil, 0, err
		}
		if crc32.Update(lenSum, castagnoli, p) != sum {
			return nil, 0, nil
		}
		return p, off + headerBytes + int64(n), nil
	}
	if !allowOld {
		return nil, 0, nil
	}
	n := binary.LittleEndian.Uint32(h[0:])
	sum := binary.LittleEndian.Uint32(h[4:])
	// An empty record is taken for damage: eight zero bytes pass the old
	// framing's checks (the crc32c of nothing is 0), a zero-filled stretch
	// is a common trace of a power cut, and Hearth never logged an empty
	// record.
	if n == 0 || n > MaxRecordBytes || off+oldHeaderBytes+int64(n) > s.size {
		return nil, 0, nil
	}
	if resyncing {
		// Damage in an old segment is often the unfinished record of a
		// failed write: profile bytes, where one offset in tens reads as
		// a length that fits, and checksumming that many bytes at each
		// would make the search quadratic. A candidate must also be
		// followed by the end of the segment or a plausible header,
		// which leaves one in thousands to checksum. The cost: a whole
		// record directly followed by more damage is taken for damage
		// too (its bytes are in the copy kept of the damage).
		if ok, err := s.plausibleAfter(off + oldHeaderBytes + int64(n)); err != nil || !ok {
			return nil, 0, err
		}
	}
	p, err := s.at(off+oldHeaderBytes, int(n))
	if err != nil || p == nil {
		return nil, 0, err
	}
	if crc32.Checksum(p, castagnoli) != sum {
		return nil, 0, nil
	}
	return p, off + oldHeaderBytes + int64(n), nil
}

// plausibleAfter reports whether off, the end of a candidate record in the
// old framing, is the end of the segment or holds the start of a record:
// the magic, or an old header whose length fits in the segment. It reads
// through its own buffer, leaving the window where the search is.
func (s *segReader) plausibleAfter(off int64) (bool, error) {
	if off == s.size {
		return true, nil
	}
	if off+oldHeaderBytes > s.size {
		return false, nil
	}
	if _, err := s.r.ReadAt(s.peek[:], off); err != nil {
		return false, fmt.Errorf("read %d bytes at %d: %w", len(s.peek), off, err)
	}
	if bytes.Equal(s.peek[:len(magic)], magic[:]) {
		return true, nil
	}
	n := int64(binary.LittleEndian.Uint32(s.peek[:]))
	return n > 0 && off+oldHeaderBytes+n <= s.size, nil
}

// resync returns the first offset from off on where a whole record starts,
// or the segment's size if there is none.
//
// In the current framing only offsets holding the magic are tried, so this
// costs a read of the damaged stretch. In the old framing every offset is
// tried, see recordAt.
func (s *segReader) resync(off int64, allowOld bool) (int64, error) {
	for off < s.size {
		cand := off
		if !allowOld {
			var err error
			if cand, err = s.nextMagic(off); err != nil {
				return 0, err
			}
			if cand >= s.size {
				return s.size, nil
			}
		}
		_, next, err := s.recordAt(cand, allowOld, true)
		if err != nil {
			return 0, err
		}
		if next > 0 {
			return cand, nil
		}
		off = cand + 1
	}
	return s.size, nil
}

// nextMagic returns the first offset from off on that holds the magic, or
// the segment's size.
func (s *segReader) nextMagic(off int64) (int64, error) {
	for off+int64(len(magic)) <= s.size {
		n := int(min(int64(windowBytes), s.size-off))
		b, err := s.at(off, n)
		if err != nil {
			return 0, err
		}
		if i := bytes.Index(b, magic[:]); i >= 0 {
			return off + int64(i), nil
		}
		// The magic may straddle this window and the next.
		off += int64(n - len(magic) + 1)
	}
	return s.size, nil
}
