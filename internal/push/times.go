package push

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of time_nanos and duration_nanos in pprof's message Profile.
const (
	pprofTimeNanos     = 9
	pprofDurationNanos = 10
)

var errNotProto = errors.New("not a pprof protobuf")

// maxScanBytes bounds the decompressed bytes read for the times; it is the
// ingest path's limit on a decompressed profile.
const maxScanBytes = 512 << 20

// readers holds gzip and buffered readers between requests: a push carries
// a profile every few seconds per target, and each scan would otherwise
// allocate both anew.
var readers = sync.Pool{New: func() any {
	return &timeReader{br: bufio.NewReaderSize(nil, 32<<10)}
}}

type timeReader struct {
	zr gzip.Reader
	br *bufio.Reader
}

// profileTimes reads time_nanos and duration_nanos of a pprof profile,
// gzipped or not, without decoding the rest: Pyroscope takes a pushed
// profile's time from the profile itself, while the ingest path would stamp
// it with the time of arrival. Zeros come back when the profile does not
// say, or is not protobuf (the ingest path then reports what is wrong).
func profileTimes(raw []byte) (timeNanos, durationNanos int64) {
	tr := readers.Get().(*timeReader)
	defer readers.Put(tr)
	var r io.Reader = bytes.NewReader(raw)
	if len(raw) >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
		if err := tr.zr.Reset(r); err != nil {
			return 0, 0
		}
		tr.zr.Multistream(false)
		// A small gzip body can expand without limit: stop where the
		// ingest path would refuse the profile anyway.
		r = io.LimitReader(&tr.zr, maxScanBytes)
	}
	tr.br.Reset(r)
	defer tr.br.Reset(nil)
	t, d, err := scanTimes(tr.br)
	if err != nil {
		return 0, 0
	}
	return t, d
}

// scanTimes walks the top-level fields of a Profile message, skipping the
// large repeated ones (samples, locations, strings) without keeping them.
// It stops once it has seen both fields: protobuf lets a later occurrence of
// a scalar override an earlier one, but no pprof encoder writes one twice,
// and Go's runtime writes both first in CPU profiles, so that most pushed
// profiles are decompressed for a few hundred bytes only.
func scanTimes(br *bufio.Reader) (timeNanos, durationNanos int64, err error) {
	var seenTime, seenDuration bool
	for !seenTime || !seenDuration {
		tag, err := readUvarint(br)
		if err == io.EOF {
			return timeNanos, durationNanos, nil
		}
		if err != nil {
			return 0, 0, err
		}
		num, typ := protowire.DecodeTag(tag)
		if num <= 0 {
			return 0, 0, errNotProto
		}
		switch typ {
		case protowire.VarintType:
			v, err := readUvarint(br)
			if err != nil {
				return 0, 0, errNotProto
			}
			switch num {
			case pprofTimeNanos:
				timeNanos, seenTime = int64(v), true
			case pprofDurationNanos:
				durationNanos, seenDuration = int64(v), true
			}
		case protowire.BytesType:
			n, err := readUvarint(br)
			if err != nil || n > 1<<40 {
				return 0, 0, errNotProto
			}
			if _, err := br.Discard(int(n)); err != nil {
				return 0, 0, errNotProto
			}
		case protowire.Fixed64Type:
			if _, err := br.Discard(8); err != nil {
				return 0, 0, errNotProto
			}
		case protowire.Fixed32Type:
			if _, err := br.Discard(4); err != nil {
				return 0, 0, errNotProto
			}
		default:
			return 0, 0, errNotProto
		}
	}
	return timeNanos, durationNanos, nil
}

// readUvarint reads a protobuf varint; io.EOF only before its first byte.
func readUvarint(br *bufio.Reader) (uint64, error) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		b, err := br.ReadByte()
		if err != nil {
			if shift > 0 && err == io.EOF {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, err
		}
		v |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return v, nil
		}
	}
	return 0, errNotProto
}
