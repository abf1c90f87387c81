package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Hearth's own block files (symbols.bin, index.bin) and the delta-state
// checkpoint share one envelope, little endian:
//
//	magic [4]byte | version uint8 | compression uint8 | uvarint rawLen |
//	body | crc32c uint32
//
// compression is 0 (body stored as is) or 1 (body is one zstd frame of
// rawLen bytes). The checksum covers every byte before it, so a torn or
// flipped file is refused before decompression.

const (
	compressionNone = 0
	compressionZstd = 1

	// maxBodyBytes bounds what a decoder allocates for one file.
	maxBodyBytes = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// envelopeEncoder compresses every envelope. A new encoder allocates and
// clears its history window (16 MiB at this level) on its first use, which
// cost more than compressing a checkpoint or a small block's tables; one
// kept for the process pays that once. EncodeAll is safe for concurrent
// use, and each call writes an independent frame, so the bytes are those a
// fresh encoder would write.
var envelopeEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(1))
})

// appendEnvelope wraps body in the envelope, compressed with zstd.
func appendEnvelope(dst []byte, magic string, version byte, body []byte) ([]byte, error) {
	enc, err := envelopeEncoder()
	if err != nil {
		return nil, fmt.Errorf("new zstd encoder: %w", err)
	}
	start := len(dst)
	dst = append(dst, magic...)
	dst = append(dst, version, compressionZstd)
	dst = binary.AppendUvarint(dst, uint64(len(body)))
	dst = enc.EncodeAll(body, dst)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli)), nil
}

// openEnvelope checks the envelope of src and returns its body and version.
func openEnvelope(src []byte, magic string) ([]byte, byte, error) {
	if len(src) < len(magic)+2+1+4 {
		return nil, 0, errors.New("file too short")
	}
	if string(src[:len(magic)]) != magic {
		return nil, 0, fmt.Errorf("bad magic %q, want %q", src[:len(magic)], magic)
	}
	sum := binary.LittleEndian.Uint32(src[len(src)-4:])
	src = src[:len(src)-4]
	if crc32.Checksum(src, castagnoli) != sum {
		return nil, 0, errors.New("checksum mismatch")
	}
	version, comp := src[len(magic)], src[len(magic)+1]
	src = src[len(magic)+2:]
	rawLen, k := binary.Uvarint(src)
	if k <= 0 {
		return nil, 0, errors.New("bad body length")
	}
	if rawLen > maxBodyBytes {
		return nil, 0, fmt.Errorf("body of %d bytes is over the limit", rawLen)
	}
	src = src[k:]
	switch comp {
	case compressionNone:
		if uint64(len(src)) != rawLen {
			return nil, 0, fmt.Errorf("body is %d bytes, header says %d", len(src), rawLen)
		}
		return src, version, nil
	case compressionZstd:
		dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(2*rawLen+1<<20), zstd.WithDecodeAllCapLimit(true))
		if err != nil {
			return nil, 0, fmt.Errorf("new zstd decoder: %w", err)
		}
		defer dec.Close()
		body, err := dec.DecodeAll(src, make([]byte, 0, rawLen))
		if err != nil {
			return nil, 0, fmt.Errorf("decompress body: %w", err)
		}
		if uint64(len(body)) != rawLen {
			return nil, 0, fmt.Errorf("body is %d bytes, header says %d", len(body), rawLen)
		}
		return body, version, nil
	}
	return nil, 0, fmt.Errorf("unknown compression %d", comp)
}

// decoder reads the varint fields of a body. The first error sticks; every
// read after it returns zero values, so a decode function checks d.err
// once per section.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, k := binary.Uvarint(d.b)
	if k <= 0 {
		d.fail("truncated or overlong uvarint")
		return 0
	}
	d.b = d.b[k:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, k := binary.Varint(d.b)
	if k <= 0 {
		d.fail("truncated or overlong varint")
		return 0
	}
	d.b = d.b[k:]
	return v
}

// u32 reads a uvarint that must fit in 32 bits.
func (d *decoder) u32() uint32 {
	v := d.uvarint()
	if v > 1<<32-1 {
		d.fail("value %d overflows 32 bits", v)
		return 0
	}
	return uint32(v)
}

// ref reads an ID that must be below n.
func (d *decoder) ref(n int, what string) uint32 {
	v := d.uvarint()
	if d.err == nil && v >= uint64(n) {
		d.fail("%s %d out of range [0, %d)", what, v, n)
		return 0
	}
	return uint32(v)
}

func (d *decoder) byte1() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) fixed64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.fail("truncated")
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("truncated: want %d bytes, have %d", n, len(d.b))
		return nil
	}
	b := d.b[:n]
	d.b = d.b[n:]
	return b
}

// count reads an element count. Each element takes at least minBytes of
// what is left, which bounds allocations by the input size.
func (d *decoder) count(minBytes int) int {
	n := d.uvarint()
	if d.err == nil && n*uint64(minBytes) > uint64(len(d.b)) {
		d.fail("count %d exceeds the %d bytes left", n, len(d.b))
		return 0
	}
	return int(n)
}

// appendStrings writes a string table: count, lengths, then the bytes.
func appendStrings(dst []byte, ss []string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ss)))
	for _, s := range ss {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
	}
	for _, s := range ss {
		dst = append(dst, s...)
	}
	return dst
}

func (d *decoder) strings() []string {
	n := d.count(1)
	if d.err != nil {
		return nil
	}
	lens := make([]uint64, n)
	var total uint64
	for i := range lens {
		lens[i] = d.uvarint()
		total += lens[i]
		if lens[i] > uint64(len(d.b)) || total > uint64(len(d.b)) {
			d.fail("string table longer than its file")
			return nil
		}
	}
	if d.err != nil {
		return nil
	}
	data := d.bytes(total)
	if d.err != nil {
		return nil
	}
	all := string(data)
	out := make([]string, n)
	off := uint64(0)
	for i, l := range lens {
		out[i] = all[off : off+l]
		off += l
	}
	return out
}
