package storage

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// samples.parquet holds a block's sample rows, sorted by series, then
// time, then stack and sample set. Readers use the series index to find
// the row range of a selection and read only the columns they need over
// that range.

// sampleRow is one row of samples.parquet. IDs are stored as INT32 (the
// bits of a uint32), so that any Parquet reader can open the file.
type sampleRow struct {
	Series    int32 `parquet:"series,delta"`
	TimeNanos int64 `parquet:"time_nanos,delta"`
	Stack     int32 `parquet:"stack,delta"`
	Value     int64 `parquet:"value,dict"`
	SampleSet int32 `parquet:"sample_set,delta"`
	Span      int32 `parquet:"span,delta"`
}

// Column indexes in samples.parquet.
const (
	colSeries = iota
	colTime
	colStack
	colValue
	colSampleSet
	colSpan
	numSampleColumns
)

// oldSampleColumns is the column count of files written before samples
// had spans: they read as if every sample had none.
const oldSampleColumns = colSpan

var sampleColumnNames = [numSampleColumns]string{"series", "time_nanos", "stack", "value", "sample_set", "span"}

const (
	// samplesRowGroupRows bounds a row group; the page index inside each
	// lets a reader seek to a row.
	samplesRowGroupRows = 1 << 20
	samplesPageBytes    = 64 << 10
)

// samplesWriter streams sample rows into samples.parquet.
type samplesWriter struct {
	cw   countingWriter
	bw   *bufio.Writer
	pw   *parquet.GenericWriter[sampleRow]
	buf  []sampleRow
	rows int64
}

// samplesCodec compresses the pages of every samples.parquet. A codec
// keeps a pool of encoders, each of which allocates and clears a 16 MiB
// history window when it is made: one codec per block made that cost part
// of every cut and compaction, however small the block.
var samplesCodec = &zstd.Codec{Level: zstd.SpeedBetterCompression}

// newSamplesWriter writes samples.parquet to w.
func newSamplesWriter(w io.Writer) *samplesWriter {
	sw := &samplesWriter{cw: countingWriter{w: w}}
	sw.bw = bufio.NewWriterSize(&sw.cw, 1<<20)
	sw.pw = parquet.NewGenericWriter[sampleRow](sw.bw,
		parquet.Compression(samplesCodec),
		parquet.MaxRowsPerRowGroup(samplesRowGroupRows),
		parquet.PageBufferSize(samplesPageBytes),
		parquet.CreatedBy("hearth", "1", ""),
	)
	return sw
}

// countingWriter counts what goes through it: the file's size, known
// before it is anywhere it could be measured.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// add writes the rows of one profile of series.
func (w *samplesWriter) add(series int32, mp *memProfile) error {
	for i, st := range mp.stacks {
		r := sampleRow{Series: series, TimeNanos: mp.ts, Stack: int32(st), Value: mp.values[i]}
		if mp.sets != nil {
			r.SampleSet = int32(mp.sets[i])
		}
		if mp.spans != nil {
			r.Span = int32(mp.spans[i])
		}
		w.buf = append(w.buf, r)
	}
	w.rows += int64(len(mp.stacks))
	if len(w.buf) >= 64<<10 {
		return w.flushBuf()
	}
	return nil
}

func (w *samplesWriter) flushBuf() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.pw.Write(w.buf)
	w.buf = w.buf[:0]
	return err
}

// close finishes the file and returns its size. The underlying writer
// stays open.
func (w *samplesWriter) close() (int64, error) {
	err := w.flushBuf()
	if err == nil {
		err = w.pw.Close()
	}
	if err == nil {
		err = w.bw.Flush()
	}
	return w.cw.n, err
}

// samplesReader reads row ranges of an open samples.parquet. It is safe
// for concurrent use: every scan has its own page readers.
type samplesReader struct {
	f       io.ReaderAt
	pf      *parquet.File
	rgStart []int64 // first row of each row group, and the total at the end
	columns int     // numSampleColumns, or oldSampleColumns
}

// openSamples opens samples.parquet held by r and checks its schema.
func openSamples(r io.ReaderAt, size int64) (sr *samplesReader, err error) {
	defer recoverParquet(&err)
	// The library trusts the footer length and allocates it before
	// checking it against the file: check first.
	var tail [8]byte
	if size < 12 {
		return nil, errors.New("samples file too short")
	}
	if _, err := r.ReadAt(tail[:], size-8); err != nil {
		return nil, err
	}
	if string(tail[4:]) != "PAR1" {
		return nil, errors.New("samples file is not Parquet: bad magic")
	}
	if n := int64(binary.LittleEndian.Uint32(tail[:4])); n > size-12 {
		return nil, fmt.Errorf("samples footer of %d bytes in a file of %d", n, size)
	}
	// The library also trusts page headers and index lengths when it
	// allocates: open the footer alone, check every page header, then open
	// with the page index.
	pf, err := parquet.OpenFile(r, size, parquet.SkipBloomFilters(true), parquet.SkipPageIndex(true))
	if err != nil {
		return nil, err
	}
	ncol := len(pf.Schema().Columns())
	if ncol != numSampleColumns && ncol != oldSampleColumns {
		return nil, fmt.Errorf("samples have %d columns, want %d", ncol, numSampleColumns)
	}
	if err := checkPages(r, size, pf.Metadata(), pageLimits{columns: ncol, rowGroupRows: samplesRowGroupRows}); err != nil {
		return nil, err
	}
	pf, err = parquet.OpenFile(r, size, parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, err
	}
	leaves := pf.Schema().Columns()
	if len(leaves) != ncol {
		return nil, fmt.Errorf("samples have %d columns, want %d", len(leaves), ncol)
	}
	for i, path := range leaves {
		if len(path) != 1 || path[0] != sampleColumnNames[i] {
			return nil, fmt.Errorf("samples column %d is %v, want %s", i, path, sampleColumnNames[i])
		}
	}
	sr = &samplesReader{f: r, pf: pf, columns: ncol}
	var n int64
	for _, rg := range pf.RowGroups() {
		if len(rg.ColumnChunks()) != ncol {
			return nil, errors.New("row group with a wrong column count")
		}
		for i, cc := range rg.ColumnChunks() {
			want := parquet.Int32Type.Kind()
			if i == colTime || i == colValue {
				want = parquet.Int64Type.Kind()
			}
			if cc.Type().Kind() != want {
				return nil, fmt.Errorf("samples column %s has kind %s, want %s", sampleColumnNames[i], cc.Type().Kind(), want)
			}
		}
		sr.rgStart = append(sr.rgStart, n)
		if rg.NumRows() < 0 {
			return nil, errors.New("row group with a negative row count")
		}
		n += rg.NumRows()
	}
	sr.rgStart = append(sr.rgStart, n)
	return sr, nil
}

// recoverParquet turns a panic inside the Parquet library on a corrupt
// file into an error: the library is not ours to fix, and a bad block must
// fail its query, not the process.
func recoverParquet(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("read samples: parquet library panic: %v", r)
	}
}

func (sr *samplesReader) numRows() int64 { return sr.rgStart[len(sr.rgStart)-1] }

// columnCursor reads one column sequentially from a row on.
type columnCursor struct {
	sr    *samplesReader
	col   int
	rg    int
	pages parquet.Pages
	pos   int64 // the row the next value belongs to
	i32   []int32
	i64   []int64
	// page is the page i32 or i64 point into; it goes back to the
	// library's buffer pool once they are used up.
	page  parquet.Page
	buf32 []int32 // dictionary-decoded values
	buf64 []int64
}

func (c *columnCursor) releasePage() {
	if c.page != nil {
		parquet.Release(c.page)
		c.page = nil
	}
}

func (c *columnCursor) close() {
	c.releasePage()
	if c.pages != nil {
		c.pages.Close()
		c.pages = nil
	}
}

// seek positions c at row.
func (c *columnCursor) seek(row int64) error {
	if c.pages != nil && row == c.pos {
		return nil
	}
	if c.pages != nil && row > c.pos && row-c.pos <= int64(len(c.i32)+len(c.i64)) {
		k := int(row - c.pos)
		if c.i32 != nil {
			c.i32 = c.i32[k:]
		} else {
			c.i64 = c.i64[k:]
		}
		c.pos = row
		return nil
	}
	rg := len(c.sr.rgStart) - 2
	for rg > 0 && c.sr.rgStart[rg] > row {
		rg--
	}
	if rg < 0 || row >= c.sr.numRows() {
		return fmt.Errorf("row %d out of range", row)
	}
	c.close()
	c.rg = rg
	c.pages = c.sr.pf.RowGroups()[rg].ColumnChunks()[c.col].Pages()
	if err := c.pages.SeekToRow(row - c.sr.rgStart[rg]); err != nil {
		return err
	}
	c.i32, c.i64, c.pos = nil, nil, row
	return nil
}

// fill reads the next page when the current one is used up.
func (c *columnCursor) fill() error {
	for len(c.i32) == 0 && len(c.i64) == 0 {
		c.releasePage()
		p, err := c.pages.ReadPage()
		if err == io.EOF {
			if c.rg+1 >= len(c.sr.rgStart)-1 {
				return io.ErrUnexpectedEOF
			}
			c.close()
			c.rg++
			c.pages = c.sr.pf.RowGroups()[c.rg].ColumnChunks()[c.col].Pages()
			continue
		}
		if err != nil {
			return err
		}
		c.page = p
		if p.NumNulls() != 0 || p.NumValues() != p.NumRows() {
			return errors.New("page with nulls or repeated values")
		}
		data := p.Data()
		if dict := p.Dictionary(); dict != nil {
			idx := data.Int32()
			dv := dict.Page().Data()
			switch c.col {
			case colTime, colValue:
				vals := dv.Int64()
				c.buf64 = grow(c.buf64, len(idx))
				out := c.buf64
				for i, k := range idx {
					if k < 0 || int(k) >= len(vals) {
						return errors.New("dictionary index out of range")
					}
					out[i] = vals[k]
				}
				c.i64 = out
			default:
				vals := dv.Int32()
				c.buf32 = grow(c.buf32, len(idx))
				out := c.buf32
				for i, k := range idx {
					if k < 0 || int(k) >= len(vals) {
						return errors.New("dictionary index out of range")
					}
					out[i] = vals[k]
				}
				c.i32 = out
			}
		} else {
			switch c.col {
			case colTime, colValue:
				c.i64 = data.Int64()
			default:
				c.i32 = data.Int32()
			}
		}
		if int64(len(c.i32)+len(c.i64)) != p.NumRows() {
			return errors.New("page value count differs from its row count")
		}
	}
	return nil
}

func (c *columnCursor) readInt32(dst []int32) error {
	for len(dst) > 0 {
		if err := c.fill(); err != nil {
			return err
		}
		if c.i32 == nil {
			return errors.New("column is not INT32")
		}
		n := copy(dst, c.i32)
		c.i32, dst = c.i32[n:], dst[n:]
		c.pos += int64(n)
	}
	return nil
}

func (c *columnCursor) readInt64(dst []int64) error {
	for len(dst) > 0 {
		if err := c.fill(); err != nil {
			return err
		}
		if c.i64 == nil {
			return errors.New("column is not INT64")
		}
		n := copy(dst, c.i64)
		c.i64, dst = c.i64[n:], dst[n:]
		c.pos += int64(n)
	}
	return nil
}

// sampleBatch is a run of rows of some columns.
type sampleBatch struct {
	stacks []int32
	values []int64
	sets   []int32 // nil when not read
	spans  []int32 // nil when not read
	times  []int64 // nil when not read
}

// scanner reads row ranges of stack, value and optionally sample set,
// span and time columns, in batches. It is for one goroutine.
type scanner struct {
	sr                         *samplesReader
	stack, value, set, span, t *columnCursor
	b                          sampleBatch
	setBuf, spanBuf            []int32
	timeBuf                    []int64
}

// newScanner reads the sample set and span columns when asked to, the
// span column only when the file has it.
func (sr *samplesReader) newScanner(withSets, withSpans, withTimes bool) *scanner {
	s := &scanner{sr: sr,
		stack: &columnCursor{sr: sr, col: colStack},
		value: &columnCursor{sr: sr, col: colValue}}
	if withSets {
		s.set = &columnCursor{sr: sr, col: colSampleSet}
	}
	if withSpans && sr.columns > colSpan {
		s.span = &columnCursor{sr: sr, col: colSpan}
	}
	if withTimes {
		s.t = &columnCursor{sr: sr, col: colTime}
	}
	return s
}

func (s *scanner) close() {
	for _, c := range []*columnCursor{s.stack, s.value, s.set, s.span, s.t} {
		if c != nil {
			c.close()
		}
	}
}

const scanBatchRows = 8 << 10

// scan calls fn with the rows [a, b) in batches of at most scanBatchRows.
// The batch is reused between calls.
func (s *scanner) scan(a, b int64, fn func(*sampleBatch) error) (err error) {
	defer recoverParquet(&err)
	if a < 0 || b > s.sr.numRows() || a > b {
		return fmt.Errorf("rows [%d, %d) out of range [0, %d)", a, b, s.sr.numRows())
	}
	for _, c := range []*columnCursor{s.stack, s.value, s.set, s.span, s.t} {
		if c == nil || a == b {
			continue
		}
		if err := c.seek(a); err != nil {
			return fmt.Errorf("seek column %s to row %d: %w", sampleColumnNames[c.col], a, err)
		}
	}
	for a < b {
		n := int(min(b-a, scanBatchRows))
		bt := &s.b
		bt.stacks = grow(bt.stacks, n)
		bt.values = grow(bt.values, n)
		if err := s.stack.readInt32(bt.stacks); err != nil {
			return fmt.Errorf("read stacks at row %d: %w", a, err)
		}
		if err := s.value.readInt64(bt.values); err != nil {
			return fmt.Errorf("read values at row %d: %w", a, err)
		}
		bt.sets, bt.spans, bt.times = nil, nil, nil
		if s.set != nil {
			s.setBuf = grow(s.setBuf, n)
			bt.sets = s.setBuf
			if err := s.set.readInt32(bt.sets); err != nil {
				return fmt.Errorf("read sample sets at row %d: %w", a, err)
			}
		}
		if s.span != nil {
			s.spanBuf = grow(s.spanBuf, n)
			bt.spans = s.spanBuf
			if err := s.span.readInt32(bt.spans); err != nil {
				return fmt.Errorf("read spans at row %d: %w", a, err)
			}
		}
		if s.t != nil {
			s.timeBuf = grow(s.timeBuf, n)
			bt.times = s.timeBuf
			if err := s.t.readInt64(bt.times); err != nil {
				return fmt.Errorf("read times at row %d: %w", a, err)
			}
		}
		if err := fn(bt); err != nil {
			return err
		}
		a += int64(n)
	}
	return nil
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// maxPageBytes bounds the uncompressed size of one page; the writer makes
// pages of samplesPageBytes.
const maxPageBytes = 16 << 20

// pageLimits say what checkPages accepts of a file.
type pageLimits struct {
	columns      int
	rowGroupRows int64
	// optional says which columns may hold nulls; nil means none.
	optional func(col int) bool
}

// checkPages walks the page headers of every column chunk, the way the
// library will read them, and checks the sizes and counts it would
// allocate by: a corrupt file must fail with an error, not exhaust memory.
// maxPageHeaderBytes bounds the page headers checkPages reads: past it a
// header is taken as damage rather than read into memory.
const maxPageHeaderBytes = 4 << 20

func checkPages(r io.ReaderAt, size int64, md *format.FileMetaData, lim pageLimits) error {
	var proto thrift.CompactProtocol
	// A page header is mostly small, but its statistics repeat the page's
	// smallest and largest value, which a string column may hold at any
	// length: the window grows until the header fits, up to
	// maxPageHeaderBytes.
	win := make([]byte, 1024)
	inFile := func(off, n int64) bool { return off >= 4 && n >= 0 && off+n >= off && off+n <= size-8 }
	for rgi := range md.RowGroups {
		rg := &md.RowGroups[rgi]
		if rg.NumRows < 0 || rg.NumRows > lim.rowGroupRows {
			return fmt.Errorf("row group %d: %d rows", rgi, rg.NumRows)
		}
		if len(rg.Columns) != lim.columns {
			return fmt.Errorf("row group %d: %d columns", rgi, len(rg.Columns))
		}
		for ci := range rg.Columns {
			cc := &rg.Columns[ci]
			optional := lim.optional != nil && lim.optional(ci)
			m := &cc.MetaData
			if m.Codec != format.Zstd {
				return fmt.Errorf("row group %d column %d: codec %v, want zstd", rgi, ci, m.Codec)
			}
			if m.NumValues != rg.NumRows {
				return fmt.Errorf("row group %d column %d: %d values for %d rows", rgi, ci, m.NumValues, rg.NumRows)
			}
			if cc.ColumnIndexLength != 0 && !inFile(cc.ColumnIndexOffset, int64(cc.ColumnIndexLength)) ||
				cc.OffsetIndexLength != 0 && !inFile(cc.OffsetIndexOffset, int64(cc.OffsetIndexLength)) {
				return fmt.Errorf("row group %d column %d: page index outside the file", rgi, ci)
			}
			start := m.DataPageOffset
			if m.DictionaryPageOffset != 0 {
				start = m.DictionaryPageOffset
			}
			end := start + m.TotalCompressedSize
			if !inFile(start, m.TotalCompressedSize) {
				return fmt.Errorf("row group %d column %d: chunk outside the file", rgi, ci)
			}
			var rows int64
			for pos := start; pos < end; {
				var h format.PageHeader
				var hlen int64
				for {
					n := min(end-pos, int64(len(win)))
					if _, err := r.ReadAt(win[:n], pos); err != nil {
						return fmt.Errorf("row group %d column %d: read page header: %w", rgi, ci, err)
					}
					br := bytes.NewReader(win[:n])
					h = format.PageHeader{}
					err := thrift.NewDecoder(proto.NewReader(br)).Decode(&h)
					if err == nil {
						hlen = n - int64(br.Len())
						break
					}
					if n < int64(len(win)) || len(win) >= maxPageHeaderBytes {
						return fmt.Errorf("row group %d column %d: page header at %d: %w", rgi, ci, pos, err)
					}
					win = make([]byte, min(2*len(win), maxPageHeaderBytes))
				}
				if h.UncompressedPageSize < 0 || h.UncompressedPageSize > maxPageBytes ||
					h.CompressedPageSize < 0 || pos+hlen+int64(h.CompressedPageSize) > end {
					return fmt.Errorf("row group %d column %d: page at %d: bad sizes", rgi, ci, pos)
				}
				switch {
				case h.DataPageHeaderV2.Valid:
					v := &h.DataPageHeaderV2.V
					nullsOK := optional && v.NumNulls >= 0 && v.NumNulls <= v.NumRows && v.DefinitionLevelsByteLength >= 0
					if int64(v.NumRows) > rg.NumRows-rows || v.NumValues != v.NumRows ||
						!nullsOK && (v.NumNulls != 0 || v.DefinitionLevelsByteLength != 0) ||
						v.RepetitionLevelsByteLength != 0 {
						return fmt.Errorf("row group %d column %d: page at %d: bad counts", rgi, ci, pos)
					}
					rows += int64(v.NumRows)
				case h.DictionaryPageHeader.Valid:
					if pos != start || int64(h.DictionaryPageHeader.V.NumValues)*8 > maxPageBytes {
						return fmt.Errorf("row group %d column %d: bad dictionary page at %d", rgi, ci, pos)
					}
				default:
					return fmt.Errorf("row group %d column %d: page at %d: unexpected page type %v", rgi, ci, pos, h.Type)
				}
				pos += hlen + int64(h.CompressedPageSize)
			}
			if rows != rg.NumRows {
				return fmt.Errorf("row group %d column %d: pages hold %d rows, want %d", rgi, ci, rows, rg.NumRows)
			}
		}
	}
	return nil
}
