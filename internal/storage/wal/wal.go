// Package wal is Hearth's write-ahead log: an append-only sequence of
// numbered segment files holding length-prefixed, checksummed records.
//
// A record is on disk (in the kernel's page cache) when Log returns, so it
// survives the process being killed; with Options.Sync it is also fsynced and
// survives a power cut. A torn record at the tail of the last segment, the
// trace of a crash mid-write, is cut off on Open: it was never acknowledged.
//
// Record framing, little endian:
//
//	length uint32 | crc32c(payload) uint32 | payload [length]byte
//
// A WAL is safe for concurrent use.
package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
)

// MaxRecordBytes bounds one record, so that a corrupt length cannot make
// replay allocate without limit.
const MaxRecordBytes = 256 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Options tune a WAL.
type Options struct {
	// SegmentBytes is the size after which a new segment starts.
	SegmentBytes int64
	// Sync fsyncs every record before Log returns.
	Sync bool
}

// WAL is an open write-ahead log in one directory.
type WAL struct {
	dir    string
	opts   Options
	logger *slog.Logger

	mu      sync.Mutex
	seg     *os.File
	segNum  int
	segSize int64
	hdr     []byte
}

// Open opens or creates the log in dir. It repairs a torn tail and starts a
// new segment for writing after the existing ones.
func Open(dir string, logger *slog.Logger, opts Options) (*WAL, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = 128 << 20
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create wal dir: %w", err)
	}
	w := &WAL{dir: dir, opts: opts, logger: logger}
	segs, err := w.Segments()
	if err != nil {
		return nil, err
	}
	if len(segs) > 0 {
		last := segs[len(segs)-1]
		if err := repair(w.segPath(last), logger); err != nil {
			return nil, err
		}
		w.segNum = last
	}
	if err := w.nextSegment(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *WAL) segPath(n int) string { return filepath.Join(w.dir, fmt.Sprintf("%08d", n)) }

// Segments lists the segment numbers present, in order.
func (w *WAL) Segments() ([]int, error) {
	ents, err := os.ReadDir(w.dir)
	if err != nil {
		return nil, fmt.Errorf("list wal dir: %w", err)
	}
	var out []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil || e.IsDir() {
			continue
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

func (w *WAL) nextSegment() error {
	if w.seg != nil {
		if err := w.seg.Sync(); err != nil {
			return fmt.Errorf("sync wal segment %d: %w", w.segNum, err)
		}
		if err := w.seg.Close(); err != nil {
			return fmt.Errorf("close wal segment %d: %w", w.segNum, err)
		}
	}
	w.segNum++
	f, err := os.OpenFile(w.segPath(w.segNum), os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create wal segment %d: %w", w.segNum, err)
	}
	w.seg, w.segSize = f, 0
	return nil
}

// Log appends one record. When it returns nil the record is durable against
// a crash of this process.
func (w *WAL) Log(payload []byte) error {
	if len(payload) > MaxRecordBytes {
		return fmt.Errorf("wal record of %d bytes is over the limit of %d", len(payload), MaxRecordBytes)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seg == nil {
		return errors.New("wal is closed")
	}
	if w.segSize > 0 && w.segSize+int64(len(payload))+8 > w.opts.SegmentBytes {
		if err := w.nextSegment(); err != nil {
			return err
		}
	}
	// One write call per record: header and payload together, so that a
	// kill between two writes cannot leave a header without its payload
	// in the middle of the file.
	buf := append(w.hdr[:0], 0, 0, 0, 0, 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(buf[0:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(buf[4:], crc32.Checksum(payload, castagnoli))
	buf = append(buf, payload...)
	w.hdr = buf[:0]
	if cap(w.hdr) > 4<<20 {
		w.hdr = nil
	}
	if _, err := w.seg.Write(buf); err != nil {
		return fmt.Errorf("write wal segment %d: %w", w.segNum, err)
	}
	w.segSize += int64(len(buf))
	if w.opts.Sync {
		if err := w.seg.Sync(); err != nil {
			return fmt.Errorf("sync wal segment %d: %w", w.segNum, err)
		}
	}
	return nil
}

// Cut closes the current segment and starts a new one. It returns the number
// of the new segment: every record logged before Cut is in a lower one.
func (w *WAL) Cut() (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.nextSegment(); err != nil {
		return 0, err
	}
	return w.segNum, nil
}

// Truncate deletes the segments numbered below n.
func (w *WAL) Truncate(n int) error {
	segs, err := w.Segments()
	if err != nil {
		return err
	}
	for _, s := range segs {
		if s >= n {
			break
		}
		if err := os.Remove(w.segPath(s)); err != nil {
			return fmt.Errorf("remove wal segment %d: %w", s, err)
		}
	}
	return nil
}

// Close syncs and closes the log.
func (w *WAL) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seg == nil {
		return nil
	}
	err := w.seg.Sync()
	if cerr := w.seg.Close(); err == nil {
		err = cerr
	}
	w.seg = nil
	return err
}

// Replay calls fn with every record in segments numbered from first on, in
// order, with the number of the segment that holds it. The payload is only
// valid during the call.
func (w *WAL) Replay(first int, fn func(segment int, payload []byte) error) error {
	segs, err := w.Segments()
	if err != nil {
		return err
	}
	for _, s := range segs {
		if s < first {
			continue
		}
		w.mu.Lock()
		current := w.seg != nil && s == w.segNum
		w.mu.Unlock()
		if current {
			break
		}
		if _, err := readSegment(w.segPath(s), func(rec []byte) error { return fn(s, rec) }); err != nil {
			return fmt.Errorf("replay wal segment %d: %w", s, err)
		}
	}
	return nil
}

// errTorn marks a record cut short or failing its checksum.
var errTorn = errors.New("torn record")

// readSegment calls fn per record and returns the offset after the last
// whole one. A torn record ends the read with errTorn.
func readSegment(path string, fn func([]byte) error) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var hdr [8]byte
	var buf []byte
	var off int64
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF {
				return off, nil
			}
			return off, errTorn
		}
		n := binary.LittleEndian.Uint32(hdr[0:])
		sum := binary.LittleEndian.Uint32(hdr[4:])
		if n > MaxRecordBytes {
			return off, errTorn
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return off, errTorn
		}
		if crc32.Checksum(buf, castagnoli) != sum {
			return off, errTorn
		}
		if fn != nil {
			if err := fn(buf); err != nil {
				return off, err
			}
		}
		off += 8 + int64(n)
	}
}

// repair cuts a torn tail off the segment at path.
func repair(path string, logger *slog.Logger) error {
	off, err := readSegment(path, nil)
	if err == nil {
		return nil
	}
	if !errors.Is(err, errTorn) {
		return fmt.Errorf("read wal segment %s: %w", path, err)
	}
	logger.Warn("cutting torn wal tail", "segment", filepath.Base(path), "offset", off)
	if err := os.Truncate(path, off); err != nil {
		return fmt.Errorf("truncate wal segment %s: %w", path, err)
	}
	return nil
}
