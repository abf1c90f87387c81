package jfr

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// chunkHeaderSize and chunkMagic ("FLR\0") start every chunk of a recording.
const (
	chunkHeaderSize = 68
	chunkMagic      = 0x464c5200
)

var errTruncated = errors.New("truncated")

// checkConstantPools walks the chunks of a recording and, in each, the chain
// of constant pool events that the parser follows by relative offsets: the
// parser does not check that the chain ends, so that a chain that loops
// would keep it busy forever. Each step must go back within the chunk, as
// the JDK and async-profiler write them. A chain that steps before the start
// of the recording ends there, as in the parser.
func checkConstantPools(rec []byte) error {
	for start := 0; start < len(rec); {
		if len(rec)-start < chunkHeaderSize {
			return fmt.Errorf("chunk at byte %d: truncated header", start)
		}
		h := rec[start:]
		if binary.BigEndian.Uint32(h) != chunkMagic {
			return fmt.Errorf("chunk at byte %d: not a JFR chunk", start)
		}
		size := binary.BigEndian.Uint64(h[8:])
		if size < chunkHeaderSize || size > uint64(len(rec)-start) {
			return fmt.Errorf("chunk at byte %d: size %d does not fit the recording", start, size)
		}
		end := start + int(size)
		off := binary.BigEndian.Uint64(h[16:])
		if off < chunkHeaderSize || off >= size {
			return fmt.Errorf("chunk at byte %d: constant pool offset %d out of the chunk", start, off)
		}
		pos := start + int(off)
		for {
			delta, err := constantPoolDelta(rec[pos:end])
			if err != nil {
				return fmt.Errorf("constant pool at byte %d: %v", pos, err)
			}
			if delta == 0 {
				break
			}
			next := int64(pos) + delta
			if next <= 0 {
				break
			}
			if next >= int64(pos) || next < int64(start+chunkHeaderSize) {
				return fmt.Errorf("constant pool at byte %d: the next one, at byte %d, is not before it in the chunk", pos, next)
			}
			pos = int(next)
		}
		start = end
	}
	return nil
}

// constantPoolDelta reads the offset to the previous constant pool from the
// head of a constant pool event: size, type, start, duration, delta.
func constantPoolDelta(b []byte) (int64, error) {
	var v uint64
	for range 5 {
		var n int
		if v, n = varLong(b); n == 0 {
			return 0, errTruncated
		}
		b = b[n:]
	}
	return int64(v), nil
}

// varLong reads JFR's variable-length integer: seven bits a byte, low bits
// first, and the ninth byte whole. n is 0 when b ends too soon.
func varLong(b []byte) (v uint64, n int) {
	for shift := uint(0); n < len(b); shift += 7 {
		c := b[n]
		n++
		if shift == 56 {
			return v | uint64(c)<<shift, n
		}
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, n
		}
	}
	return 0, 0
}
