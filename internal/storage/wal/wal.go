// Package wal is Hearth's write-ahead log: an append-only sequence of
// numbered segment files holding framed, checksummed records.
//
// A record is on disk (in the kernel's page cache) when Log returns, so it
// survives the process being killed; with Options.Sync it is also fsynced and
// survives a power cut.
//
// Record framing, little endian, as written since this version:
//
//	magic "HWL1" | length uint32 | crc32c(length, payload) uint32 | payload [length]byte
//
// Segments written before hold records without the magic, whose checksum
// covers the payload only:
//
//	length uint32 | crc32c(payload) uint32 | payload [length]byte
//
// Both still replay. The magic's bytes, read as a length, are above
// MaxRecordBytes, so no record of the old framing starts with them: a
// segment that starts with the magic is of the new framing.
//
// A write that fails (no space, I/O error, short write, failed fsync) is
// undone before anything else is appended: the segment is truncated back to
// the end of its last whole record, or, should that fail too, never written
// again (the next record goes to a new segment). So a record that Log
// acknowledged never follows garbage, and Log returns an error wrapping
// ErrWrite.
//
// On Open, a torn record at the tail of the last segment, with nothing valid
// after it (the trace of a crash mid-write; it was never acknowledged), is
// cut off, after a copy of it is kept in the corrupt/ directory beside the
// segments. Replay resynchronises after damage anywhere else: it skips to the
// next offset where a whole record checks out, so a damaged stretch costs the
// records in it only. The damaged bytes are copied to
// corrupt/<segment>-<offset> and a warning names them; the segment itself is
// left as it is.
//
// A WAL is safe for concurrent use.
package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxRecordBytes bounds one record, so that a corrupt length cannot make
// replay allocate without limit.
const MaxRecordBytes = 256 << 20

// ErrWrite is wrapped by the error of a Log (or Cut) that could not write or
// sync the log. The record was not logged; what the failed write left in the
// segment was removed, or the segment was abandoned, so later records are
// unaffected. Callers can retry once the cause (typically a full disk) is
// gone.
var ErrWrite = errors.New("wal write failed")

// ErrClosed is returned by Log and Cut after Close.
var ErrClosed = errors.New("wal is closed")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// File is the part of an open segment file that the WAL writes through.
// Write must append (the WAL relies on a write after Truncate landing at
// the new end), as an *os.File opened with O_APPEND does.
type File interface {
	Write(p []byte) (int, error)
	Sync() error
	Truncate(size int64) error
	Close() error
}

// FS creates segment files. It is a seam for tests, which inject failures
// into writes; reads and directory listings go to the os package.
type FS interface {
	// Create creates the file at path, which must not exist, for appending.
	Create(path string) (File, error)
}

// OSFS is the FS of the operating system, the default.
type OSFS struct{}

// Create implements FS.
func (OSFS) Create(path string) (File, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_EXCL, 0o644)
}

// Options tune a WAL.
type Options struct {
	// SegmentBytes is the size after which a new segment starts.
	SegmentBytes int64
	// Sync fsyncs every record before Log returns.
	Sync bool
	// FS creates segment files; nil is OSFS.
	FS FS
	// KeepDamaged is how long copies of damaged bytes stay in corrupt/
	// for someone to look at; 0 is DefaultKeepDamaged. Older copies are
	// removed when the log opens and when it is truncated, so that a disk
	// that keeps failing does not fill with them.
	KeepDamaged time.Duration
	// FirstSegment is the lowest number the segment Open starts may
	// take. The numbers of a log that holds segments go on from its last
	// one; a log started afresh starts at FirstSegment, so that its
	// records are never taken for those of an earlier log that a reader
	// already holds elsewhere (storage's blocks name the segment they
	// hold records up to).
	FirstSegment int
}

// DefaultKeepDamaged is how long copies of damaged records are kept.
const DefaultKeepDamaged = 14 * 24 * time.Hour

// WAL is an open write-ahead log in one directory.
type WAL struct {
	dir    string
	opts   Options
	logger *slog.Logger

	mu sync.Mutex
	// seg is the segment being written. It is nil after Close, and after a
	// failed write whose segment was abandoned and no new one could be
	// created: the next Log creates one.
	seg     File
	closed  bool
	segNum  int
	segSize int64 // end of the last whole record in seg
	buf     []byte
}

// Open opens or creates the log in dir. It cuts a torn tail off the last
// segment and starts a new segment for writing after the existing ones.
func Open(dir string, logger *slog.Logger, opts Options) (*WAL, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = 128 << 20
	}
	if opts.FS == nil {
		opts.FS = OSFS{}
	}
	if opts.KeepDamaged <= 0 {
		opts.KeepDamaged = DefaultKeepDamaged
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create wal dir: %w", err)
	}
	w := &WAL{dir: dir, opts: opts, logger: logger}
	w.pruneDamaged(time.Now())
	segs, err := w.Segments()
	if err != nil {
		return nil, err
	}
	if len(segs) > 0 {
		last := segs[len(segs)-1]
		if err := w.cutTornTail(last); err != nil {
			return nil, err
		}
		w.segNum = last
	}
	// nextSegment moves to segNum+1, which must be a free name: above a
	// directory of a segment's name (damage) too.
	w.segNum = max(w.segNum, opts.FirstSegment-1, w.highestName())
	if err := w.nextSegment(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *WAL) segPath(n int) string { return filepath.Join(w.dir, fmt.Sprintf("%08d", n)) }

// sealPath is the file that says where the records of segment n end, when
// bytes after them could not be removed.
func (w *WAL) sealPath(n int) string { return w.segPath(n) + ".end" }

// seal records that segment n's records end at size, durably: written to
// a temporary file, synced, renamed, and the directory synced.
func (w *WAL) seal(n int, size int64) error {
	path := w.sealPath(n)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(strconv.FormatInt(size, 10) + "\n")
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(w.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// sealedSize returns where the records of segment n end if it was sealed.
func (w *WAL) sealedSize(n int) (int64, bool) {
	b, err := os.ReadFile(w.sealPath(n))
	if err != nil {
		return 0, false
	}
	size, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || size < 0 {
		w.logger.Warn("ignoring unreadable wal seal", "path", w.sealPath(n), "err", err)
		return 0, false
	}
	return size, true
}

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

// highestName returns the highest number that names an entry of the log's
// directory, a segment or not; 0 with none.
func (w *WAL) highestName() int {
	ents, _ := os.ReadDir(w.dir)
	high := 0
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			high = max(high, n)
		}
	}
	return high
}

// nextSegment syncs and closes the current segment, if any, and creates the
// next one.
func (w *WAL) nextSegment() error {
	if w.seg != nil {
		if err := w.seg.Sync(); err != nil {
			return fmt.Errorf("sync wal segment %d: %w", w.segNum, err)
		}
		err := w.seg.Close()
		// Closed or not, the file is not written again: on an error
		// the next Log or Cut starts the next segment.
		w.seg = nil
		if err != nil {
			return fmt.Errorf("close wal segment %d: %w", w.segNum, err)
		}
	}
	// The number moves on even if the creation fails, so that a retry
	// never meets a file that a failed attempt left behind.
	w.segNum++
	f, err := w.opts.FS.Create(w.segPath(w.segNum))
	if err != nil {
		return fmt.Errorf("create wal segment %d: %w", w.segNum, err)
	}
	w.seg, w.segSize = f, 0
	return nil
}

// Log appends one record. When it returns nil the record is durable against
// a crash of this process. An error wrapping ErrWrite means the record was
// not logged and the log is as it was before the call.
func (w *WAL) Log(payload []byte) error {
	if len(payload) > MaxRecordBytes {
		return fmt.Errorf("wal record of %d bytes is over the limit of %d", len(payload), MaxRecordBytes)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if w.seg == nil || (w.segSize > 0 && w.segSize+int64(len(payload))+headerBytes > w.opts.SegmentBytes) {
		if err := w.nextSegment(); err != nil {
			return fmt.Errorf("%w: %w", ErrWrite, err)
		}
	}
	// One write call per record: header and payload together, so that a
	// kill between two writes cannot leave a header without its payload
	// in the middle of the file.
	buf := appendRecord(w.buf[:0], payload)
	if cap(buf) <= 4<<20 {
		w.buf = buf[:0]
	}
	n, err := w.seg.Write(buf)
	if err == nil && n < len(buf) {
		err = fmt.Errorf("short write of %d bytes of %d", n, len(buf))
	}
	if err != nil {
		return w.undo(fmt.Errorf("write wal segment %d: %w", w.segNum, err), false)
	}
	if w.opts.Sync {
		if err := w.seg.Sync(); err != nil {
			// After a failed fsync the kernel may have dropped the
			// segment's dirty pages and will not report it again: the
			// segment is not written to any more.
			return w.undo(fmt.Errorf("sync wal segment %d: %w", w.segNum, err), true)
		}
	}
	w.segSize += int64(len(buf))
	return nil
}

// undo removes what a failed write left after the last whole record, and
// returns cause wrapped in ErrWrite. If the truncation fails, or abandon is
// set, the segment is closed without another write and the next record goes
// to a new one. w.mu is held.
func (w *WAL) undo(cause error, abandon bool) error {
	if err := w.seg.Truncate(w.segSize); err != nil {
		cause = fmt.Errorf("%w; truncating it back to %d bytes failed too: %w", cause, w.segSize, err)
		abandon = true
		// What the failed write left may be a whole record (its fsync
		// failed after the write): replay would store what the client
		// was told was not stored. A seal beside the segment says where
		// its records end; replay reads no further.
		if serr := w.seal(w.segNum, w.segSize); serr != nil {
			w.logger.Error("seal wal segment after a failed write: the refused record may replay after a restart",
				"segment", w.segNum, "offset", w.segSize, "err", serr)
		}
	}
	if !abandon {
		return fmt.Errorf("%w: %w", ErrWrite, cause)
	}
	old := w.segNum
	if err := w.seg.Close(); err != nil {
		w.logger.Warn("close abandoned wal segment", "segment", old, "err", err)
	}
	w.seg = nil
	w.logger.Warn("abandoning wal segment after a failed write", "segment", old, "offset", w.segSize, "err", cause)
	if err := w.nextSegment(); err != nil {
		// w.seg stays nil: the next Log tries again.
		cause = fmt.Errorf("%w; starting a new segment failed: %w", cause, err)
	}
	return fmt.Errorf("%w: %w", ErrWrite, cause)
}

// Cut closes the current segment and starts a new one. It returns the number
// of the new segment: every record logged before Cut is in a lower one.
func (w *WAL) Cut() (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, ErrClosed
	}
	if err := w.nextSegment(); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrWrite, err)
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
		if err := os.Remove(w.sealPath(s)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove seal of wal segment %d: %w", s, err)
		}
	}
	w.pruneDamaged(time.Now())
	return nil
}

// pruneDamaged removes copies of damaged bytes older than KeepDamaged. A
// copy it cannot remove is logged and left; it costs space, not data.
func (w *WAL) pruneDamaged(now time.Time) {
	dir := filepath.Join(w.dir, "corrupt")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return // none kept yet
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil || fi.IsDir() || now.Sub(fi.ModTime()) < w.opts.KeepDamaged {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if err := os.Remove(path); err != nil {
			w.logger.Warn("remove old copy of damaged wal bytes", "path", path, "err", err)
			continue
		}
		w.logger.Info("removed old copy of damaged wal bytes", "path", path, "age", now.Sub(fi.ModTime()).Round(time.Hour))
	}
}

// Close syncs and closes the log.
func (w *WAL) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
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
// valid during the call. Damage is skipped, copied aside and logged (see the
// package doc); only an error reading a segment or one from fn stops it.
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
		err := w.readSegment(s, func(rec []byte) error { return fn(s, rec) }, func(d damage, tail bool) {
			w.keepDamage(s, d, "skipping damaged wal records")
		})
		if err != nil {
			return fmt.Errorf("replay wal segment %d: %w", s, err)
		}
	}
	return nil
}

// readSegment reads segment n, calling fn per record and onDamage per
// damaged stretch, in file order; tail is set for damage that runs to the
// end of the segment.
func (w *WAL) readSegment(n int, fn func([]byte) error, onDamage func(d damage, tail bool)) error {
	f, err := os.Open(w.segPath(n))
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if end, ok := w.sealedSize(n); ok && end < size {
		w.logger.Warn("wal segment sealed after a failed write: ignoring the bytes after its last record",
			"segment", n, "offset", end, "bytes", size-end)
		size = end
	}
	return scan(f, size, fn, func(d damage) { onDamage(d, d.end == size) })
}

// keepDamage copies the bytes of d in segment n to the corrupt directory and
// logs that they were lost. A failed copy is logged, not returned: the
// segment keeps the bytes anyway, and a log that cannot be read whole must
// still open.
func (w *WAL) keepDamage(n int, d damage, msg string) string {
	name := fmt.Sprintf("%08d-%d", n, d.off)
	path := filepath.Join(w.dir, "corrupt", name)
	attrs := []any{"segment", n, "offset", d.off, "bytes", d.end - d.off, "copy", path}
	if err := copyRange(w.segPath(n), d, path); err != nil {
		attrs = append(attrs, "copyErr", err)
	}
	w.logger.Warn(msg, attrs...)
	return path
}

func copyRange(segPath string, d damage, dst string) error {
	f, err := os.Open(segPath)
	if err != nil {
		return err
	}
	defer f.Close()
	b := make([]byte, d.end-d.off)
	if _, err := f.ReadAt(b, d.off); err != nil {
		return fmt.Errorf("read damaged bytes: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// cutTornTail cuts damage that runs to the end of segment n, with no whole
// record after it, off the segment: a crash mid-write leaves it, and that
// record was never acknowledged. Damage followed by whole records is left
// for Replay.
func (w *WAL) cutTornTail(n int) error {
	var tail *damage
	err := w.readSegment(n, nil, func(d damage, isTail bool) {
		if isTail {
			tail = &d
		}
	})
	if err != nil {
		return fmt.Errorf("read wal segment %d: %w", n, err)
	}
	if tail == nil {
		return nil
	}
	w.keepDamage(n, *tail, "cutting torn wal tail")
	if err := os.Truncate(w.segPath(n), tail.off); err != nil {
		return fmt.Errorf("truncate wal segment %d: %w", n, err)
	}
	return nil
}

// appendRecord appends payload framed as a record to b.
func appendRecord(b, payload []byte) []byte {
	b = append(b, magic[:]...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	sum := crc32.Update(crc32.Checksum(b[len(b)-4:], castagnoli), castagnoli, payload)
	b = binary.LittleEndian.AppendUint32(b, sum)
	return append(b, payload...)
}
