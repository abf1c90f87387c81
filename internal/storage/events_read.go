package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"github.com/hearth-profiler/hearth/internal/events"
)

// eventsReader reads an open events.parquet. It is safe for concurrent
// use: every scan reads its own pages.
type eventsReader struct {
	pf    *parquet.File
	meta  *eventsMeta
	fixed map[string]int // leaf index of each fixed column
	// attrs are the columns of each attribute key, one per type.
	attrs    map[string][]attrColumnRef
	otherIdx int // -1 when the file has no other_attributes
	groups   []eventsRowGroup
}

type attrColumnRef struct {
	col int
	typ events.Type
}

type eventsRowGroup struct {
	rows                   int64
	minT, maxT             int64
	minService, maxService string
}

var fixedEventColumns = []string{evColStart, evColDuration, evColTraceID, evColSpanID, evColParentID,
	evColService, evColName, evColKind, evColStatus, evColStatusMsg, evColDetail}

// openEvents opens events.parquet held by r, whose meta.json says meta,
// and checks that the two agree.
func openEvents(r io.ReaderAt, size int64, meta *eventsMeta) (er *eventsReader, err error) {
	defer recoverParquet(&err)
	var tail [8]byte
	if size < 12 {
		return nil, errors.New("events file too short")
	}
	if _, err := r.ReadAt(tail[:], size-8); err != nil {
		return nil, err
	}
	if string(tail[4:]) != "PAR1" {
		return nil, errors.New("events file is not Parquet: bad magic")
	}
	if n := int64(binary.LittleEndian.Uint32(tail[:4])); n > size-12 {
		return nil, fmt.Errorf("events footer of %d bytes in a file of %d", n, size)
	}
	pf, err := parquet.OpenFile(r, size, parquet.SkipBloomFilters(true), parquet.SkipPageIndex(true))
	if err != nil {
		return nil, err
	}
	want := eventsSchema(meta.Columns, meta.Other > 0)
	leaves := pf.Schema().Columns()
	wantLeaves := want.Columns()
	if len(leaves) != len(wantLeaves) {
		return nil, fmt.Errorf("events have %d columns, meta.json says %d", len(leaves), len(wantLeaves))
	}
	er = &eventsReader{pf: pf, meta: meta, fixed: map[string]int{}, attrs: map[string][]attrColumnRef{}, otherIdx: -1}
	byName := map[string]int{}
	for i, path := range leaves {
		if len(path) != 1 || path[0] != wantLeaves[i][0] {
			return nil, fmt.Errorf("events column %d is %v, want %s", i, path, wantLeaves[i][0])
		}
		byName[path[0]] = i
	}
	optional := make([]bool, len(leaves))
	for i, path := range leaves {
		leaf, _ := want.Lookup(path...)
		optional[i] = leaf.Node.Optional()
		got, _ := pf.Schema().Lookup(path...)
		if got.Node.Type().Kind() != leaf.Node.Type().Kind() || got.Node.Optional() != leaf.Node.Optional() {
			return nil, fmt.Errorf("events column %s has type %s, want %s", path[0], got.Node.Type(), leaf.Node.Type())
		}
	}
	if err := checkPages(r, size, pf.Metadata(), pageLimits{columns: len(leaves), rowGroupRows: eventsRowGroupRows,
		optional: func(c int) bool { return optional[c] }}); err != nil {
		return nil, err
	}
	if err := checkBloomFilters(r, size, pf.Metadata()); err != nil {
		return nil, err
	}
	// Checked, the trace ID filters are read into memory: a few bytes
	// per trace, and a lookup then reads no file for the groups they
	// rule out.
	if pf, err = parquet.OpenFile(r, size, parquet.PrefetchBloomFilters(true)); err != nil {
		return nil, err
	}
	er.pf = pf
	for _, c := range fixedEventColumns {
		er.fixed[c] = byName[c]
	}
	if i, ok := byName[otherAttrsColumn]; ok {
		er.otherIdx = i
	}
	for _, c := range meta.Columns {
		t, _ := parseType(c.Type)
		er.attrs[c.Key] = append(er.attrs[c.Key], attrColumnRef{col: byName[c.Name], typ: t})
	}
	var n int64
	for _, rg := range pf.RowGroups() {
		g := eventsRowGroup{rows: rg.NumRows(), minT: -1 << 63, maxT: 1<<63 - 1}
		ccs := rg.ColumnChunks()
		if lo, hi, ok := ccs[er.fixed[evColStart]].(*parquet.FileColumnChunk).Bounds(); ok {
			g.minT, g.maxT = lo.Int64(), hi.Int64()
		}
		if lo, hi, ok := ccs[er.fixed[evColService]].(*parquet.FileColumnChunk).Bounds(); ok {
			g.minService, g.maxService = string(lo.ByteArray()), string(hi.ByteArray())
		} else {
			g.maxService = "\xff\xff\xff\xff"
		}
		er.groups = append(er.groups, g)
		n += g.rows
	}
	if n != meta.Rows {
		return nil, fmt.Errorf("events hold %d rows, meta.json says %d", n, meta.Rows)
	}
	return er, nil
}

// eventScan says what a scan reads: columns, and the rows of which it
// may skip row groups, by time (both inclusive), service and trace. With
// pick, a scan reads in two steps (see EventQuery.Pick).
type eventScan struct {
	cols       events.Columns
	minT, maxT int64
	services   []string        // nil: any
	trace      *events.TraceID // nil: any
	pick       func(*events.Batch) []int
	then       events.Columns
}

func (s *eventScan) skipGroup(er *eventsReader, gi int) bool {
	g := &er.groups[gi]
	if g.maxT < s.minT || g.minT > s.maxT {
		return true
	}
	if s.trace != nil {
		cc := er.pf.RowGroups()[gi].ColumnChunks()[er.fixed[evColTraceID]]
		if f := cc.(*parquet.FileColumnChunk).BloomFilter(); f != nil {
			if ok, err := f.Check(parquet.FixedLenByteArrayValue(s.trace[:])); err == nil && !ok {
				return true
			}
		}
	}
	if s.services == nil {
		return false
	}
	for _, svc := range s.services {
		if svc >= g.minService && svc <= g.maxService {
			return false
		}
	}
	return true
}

// scan calls fn with the rows of each row group that can hold what s
// asks for, cut to s's time range, in the groups' order. Groups are read
// by up to GOMAXPROCS goroutines at once while fn takes the ones before;
// with a pick, the first step and the pick run in order on the caller's
// goroutine and the second steps run in parallel, so that pick is
// called for later groups before fn sees earlier ones.
func (er *eventsReader) scan(ctx context.Context, s *eventScan, fn func(*events.Batch) error) (err error) {
	defer recoverParquet(&err)
	cols := s.cols
	if s.trace != nil {
		cols.Intrinsics |= events.ColTraceID
	}
	workers := max(1, min(runtime.GOMAXPROCS(0), maxScanWorkers))
	sem := make(chan struct{}, workers)
	var queue []*groupRead
	defer func() {
		for _, r := range queue {
			<-r.done // nothing outlives the scan
		}
	}()
	deliver := func() error {
		r := queue[0]
		queue = queue[1:]
		<-r.done
		if r.err != nil {
			return fmt.Errorf("row group %d: %w", r.gi, r.err)
		}
		if r.b.Len == 0 {
			return nil
		}
		return fn(&r.b)
	}
	for gi := range er.groups {
		if s.skipGroup(er, gi) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		r := &groupRead{gi: gi, done: make(chan struct{})}
		var work func() error
		if s.pick == nil {
			work = func() error {
				_, err := er.readScanGroup(gi, s, cols, &r.b)
				return err
			}
		} else {
			kept, err := er.readScanGroup(gi, s, cols, &r.b)
			if err != nil {
				return fmt.Errorf("row group %d: %w", gi, err)
			}
			rows, err := pickRows(s, &r.b, kept)
			if err != nil {
				return fmt.Errorf("row group %d: %w", gi, err)
			}
			if r.b.Len == 0 {
				continue
			}
			work = func() error { return er.readThen(gi, s, &r.b, rows) }
		}
		sem <- struct{}{}
		go func() {
			defer close(r.done)
			defer func() { <-sem }()
			defer recoverParquet(&r.err)
			if r.err = work(); r.err == nil {
				if want := s.cols.Intrinsics | s.then.Intrinsics; want&events.ColStart == 0 {
					r.b.Start = nil
				}
				if s.cols.Intrinsics&events.ColTraceID == 0 && s.then.Intrinsics&events.ColTraceID == 0 {
					r.b.TraceID = nil
				}
			}
		}()
		queue = append(queue, r)
		for len(queue) > workers {
			if err := deliver(); err != nil {
				return err
			}
		}
	}
	for len(queue) > 0 {
		if err := deliver(); err != nil {
			return err
		}
	}
	return nil
}

// maxScanWorkers bounds the row groups one scan reads at once.
const maxScanWorkers = 4

// groupRead is a row group being read for a scan.
type groupRead struct {
	gi   int
	b    events.Batch
	err  error
	done chan struct{}
}

// readScanGroup reads cols of group gi into b, cut to s's range and
// trace, and returns the group's row of each of b's (nil: the same).
// Start times are read only to cut by, when the group is not in the
// range whole, or when cols asks for them.
func (er *eventsReader) readScanGroup(gi int, s *eventScan, cols events.Columns, b *events.Batch) ([]int, error) {
	g := &er.groups[gi]
	cut := g.minT < s.minT || g.maxT > s.maxT || s.trace != nil
	if cut {
		cols.Intrinsics |= events.ColStart
	}
	if err := er.readGroup(gi, cols, b, nil); err != nil {
		return nil, err
	}
	if cut {
		return keepRows(b, func(i int) bool {
			return b.Start[i] >= s.minT && b.Start[i] <= s.maxT && (s.trace == nil || b.TraceID[i] == *s.trace)
		}), nil
	}
	return nil, nil
}

// pickRows keeps the rows of b that s.pick chooses and returns them as
// rows of the group; kept maps b's rows to the group's (nil: the same).
func pickRows(s *eventScan, b *events.Batch, kept []int) ([]int, error) {
	if b.Len == 0 {
		return nil, nil
	}
	picked := s.pick(b)
	if err := checkPicked(picked, b.Len); err != nil {
		return nil, err
	}
	rows := make([]int, len(picked))
	for i, r := range picked {
		rows[i] = r
		if kept != nil {
			rows[i] = kept[r]
		}
	}
	b.Keep(picked)
	return rows, nil
}

// readThen is a scan's second step: it reads s.then's columns of the
// group's rows into b, which holds those rows.
func (er *eventsReader) readThen(gi int, s *eventScan, b *events.Batch, rows []int) error {
	then := s.then
	then.Intrinsics &^= s.cols.Intrinsics | events.ColStart
	var more events.Batch
	if err := er.readGroup(gi, then, &more, rows); err != nil {
		return err
	}
	mergeBatch(b, &more)
	return nil
}

// checkPicked checks that a pick returned rows of a batch of n, ascending.
func checkPicked(picked []int, n int) error {
	for i, r := range picked {
		if r < 0 || r >= n || i > 0 && r <= picked[i-1] {
			return fmt.Errorf("BUG: picked row %d of %d is out of range or order", r, n)
		}
	}
	return nil
}

// mergeBatch adds the columns of src that dst lacks to dst; both hold the
// same rows.
func mergeBatch(dst, src *events.Batch) {
	orElse(&dst.Start, src.Start)
	orElse(&dst.Duration, src.Duration)
	orElse(&dst.TraceID, src.TraceID)
	orElse(&dst.SpanID, src.SpanID)
	orElse(&dst.ParentID, src.ParentID)
	orElse(&dst.Service, src.Service)
	orElse(&dst.Name, src.Name)
	orElse(&dst.Kind, src.Kind)
	orElse(&dst.Status, src.Status)
	orElse(&dst.StatusMessage, src.StatusMessage)
	orElse(&dst.SpanEvents, src.SpanEvents)
	orElse(&dst.Links, src.Links)
	if dst.Attrs == nil {
		dst.Attrs = map[string]*events.Column{}
	}
	for k, c := range src.Attrs {
		if dst.Attrs[k] == nil {
			dst.Attrs[k] = c
		}
	}
}

// orElse sets *dst to src when dst has no column.
func orElse[T any](dst *[]T, src []T) {
	if *dst == nil {
		*dst = src
	}
}

// readGroup reads the columns cols of row group gi into b.
//
// With rows (ascending row numbers in the group), b holds those rows
// alone, and a page is decoded only up to the last of them it holds;
// pages that hold none are not read.
func (er *eventsReader) readGroup(gi int, cols events.Columns, b *events.Batch, rows []int) error {
	rg := er.pf.RowGroups()[gi]
	n := int(rg.NumRows())
	sel, err := newRowSel(rows, n)
	if err != nil {
		return err
	}
	m := sel.len(n)
	resetBatch(b, m)
	ccs := rg.ColumnChunks()
	chunk := func(name string) colChunk { return colChunk{ccs[er.fixed[name]], sel} }
	in := cols.Intrinsics
	if in&events.ColStart != 0 {
		if b.Start, err = readInt64s(chunk(evColStart), n); err != nil {
			return fmt.Errorf("%s: %w", evColStart, err)
		}
	}
	if in&events.ColDuration != 0 {
		if b.Duration, err = readInt64s(chunk(evColDuration), n); err != nil {
			return fmt.Errorf("%s: %w", evColDuration, err)
		}
	}
	if in&events.ColTraceID != 0 {
		b.TraceID = make([]events.TraceID, m)
		if err := readFixed(chunk(evColTraceID), n, 16, func(i int, v []byte) { copy(b.TraceID[i][:], v) }); err != nil {
			return fmt.Errorf("%s: %w", evColTraceID, err)
		}
	}
	if in&events.ColSpanID != 0 {
		b.SpanID = make([]events.SpanID, m)
		if err := readFixed(chunk(evColSpanID), n, 8, func(i int, v []byte) { copy(b.SpanID[i][:], v) }); err != nil {
			return fmt.Errorf("%s: %w", evColSpanID, err)
		}
	}
	if in&events.ColParentID != 0 {
		b.ParentID = make([]events.SpanID, m)
		if err := readFixed(chunk(evColParentID), n, 8, func(i int, v []byte) { copy(b.ParentID[i][:], v) }); err != nil {
			return fmt.Errorf("%s: %w", evColParentID, err)
		}
	}
	strCol := func(name string) ([]string, error) {
		out := make([]string, m)
		err := readStrings(chunk(name), n, func(i int, s string) { out[i] = s })
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return out, nil
	}
	if in&events.ColService != 0 {
		if b.Service, err = strCol(evColService); err != nil {
			return err
		}
	}
	if in&events.ColName != 0 {
		if b.Name, err = strCol(evColName); err != nil {
			return err
		}
	}
	if in&events.ColStatusMessage != 0 {
		if b.StatusMessage, err = strCol(evColStatusMsg); err != nil {
			return err
		}
	}
	if in&events.ColKind != 0 {
		b.Kind = make([]events.Kind, m)
		if err := readValues(chunk(evColKind), n, func(i int, v parquet.Value) { b.Kind[i] = events.Kind(v.Int32()) }); err != nil {
			return fmt.Errorf("%s: %w", evColKind, err)
		}
	}
	if in&events.ColStatus != 0 {
		b.Status = make([]events.Status, m)
		if err := readValues(chunk(evColStatus), n, func(i int, v parquet.Value) { b.Status[i] = events.Status(v.Int32()) }); err != nil {
			return fmt.Errorf("%s: %w", evColStatus, err)
		}
	}
	if in&events.ColDetail != 0 {
		b.SpanEvents = make([][]events.SpanEvent, m)
		b.Links = make([][]events.Link, m)
		var derr error
		err := readStrings(chunk(evColDetail), n, func(i int, s string) {
			if derr == nil {
				b.SpanEvents[i], b.Links[i], derr = decodeDetail([]byte(s))
			}
		})
		if err = errors.Join(err, derr); err != nil {
			return fmt.Errorf("%s: %w", evColDetail, err)
		}
	}
	keys := cols.Attrs
	if cols.AllAttrs {
		keys = make([]string, 0, len(er.attrs))
		for k := range er.attrs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
	}
	for _, k := range keys {
		for _, ref := range er.attrs[k] {
			if err := er.readAttr(colChunk{ccs[ref.col], sel}, ref.typ, n, b, k); err != nil {
				return fmt.Errorf("attribute %s: %w", k, err)
			}
		}
	}
	if er.otherIdx >= 0 && (cols.AllAttrs || slices.ContainsFunc(cols.Attrs, func(k string) bool { return er.attrs[k] == nil })) {
		want := map[string]bool{}
		for _, k := range cols.Attrs {
			want[k] = true
		}
		var derr error
		err := readStrings(colChunk{ccs[er.otherIdx], sel}, n, func(i int, s string) {
			var in []jsonAttr
			if derr != nil {
				return
			}
			if derr = json.Unmarshal([]byte(s), &in); derr != nil {
				return
			}
			attrs, err := decodeAttrs(in)
			if err != nil {
				derr = err
				return
			}
			for _, a := range attrs {
				if !cols.AllAttrs && !want[a.Key] {
					continue
				}
				c := b.Attrs[a.Key]
				if c == nil {
					c = batchColumn(b, a.Key, m)
				}
				c.Set(m, i, a.Value)
			}
		})
		if err = errors.Join(err, derr); err != nil {
			return fmt.Errorf("%s: %w", otherAttrsColumn, err)
		}
	}
	return nil
}

// readAttr reads an attribute column of a group of n rows into b.
func (er *eventsReader) readAttr(cc colChunk, t events.Type, n int, b *events.Batch, key string) error {
	col := b.Attrs[key]
	m := b.Len
	get := func() *events.Column {
		if col == nil {
			col = batchColumn(b, key, m)
		}
		return col
	}
	switch t {
	case events.TypeString:
		return readStrings(cc, n, func(i int, s string) { get().Set(m, i, events.String(s)) })
	case events.TypeInt:
		return readNumbers(cc, n, func(p parquet.Page) []int64 { return pageData(p).Int64() },
			func(i int, v int64) { get().Set(m, i, events.Int(v)) })
	case events.TypeFloat:
		return readNumbers(cc, n, func(p parquet.Page) []float64 { return pageData(p).Double() },
			func(i int, v float64) { get().Set(m, i, events.Float(v)) })
	default:
		return readValues(cc, n, func(i int, v parquet.Value) { get().Set(m, i, events.Bool(v.Boolean())) })
	}
}

// colChunk is a column chunk to read, whole or, when sel is not nil, at
// sel's rows only.
type colChunk struct {
	parquet.ColumnChunk
	sel *rowSel
}

// rowSel is the rows of a row group that a read wants, ascending, and
// where each goes in the batch: pos[r] is r's index in rows, or -1. A nil
// rowSel wants every row, each at its own index.
type rowSel struct {
	rows []int
	pos  []int32
}

// newRowSel returns the selection of rows in a group of n, nil for rows
// nil.
func newRowSel(rows []int, n int) (*rowSel, error) {
	if rows == nil {
		return nil, nil
	}
	s := &rowSel{rows: rows, pos: make([]int32, n)}
	for i := range s.pos {
		s.pos[i] = -1
	}
	for i, r := range rows {
		if r < 0 || r >= n || i > 0 && r <= rows[i-1] {
			return nil, fmt.Errorf("row %d of a group of %d, after %d", r, n, rows[max(i-1, 0)])
		}
		s.pos[r] = int32(i)
	}
	return s, nil
}

// at is where row r of the group goes in the batch, or -1.
func (s *rowSel) at(r int) int {
	if s == nil {
		return r
	}
	return int(s.pos[r])
}

// len is the rows of the batch of a group of n rows.
func (s *rowSel) len(n int) int {
	if s == nil {
		return n
	}
	return len(s.rows)
}

// forPages calls page with each page of cc and the row its first value
// belongs to, and checks that the pages hold n rows. When cc selects
// rows, it seeks (with the page index) to the page of each selected row
// not yet read and calls page with it from that row up to the last
// selected row it holds: pages without a selected row are skipped, and
// one of dictionary indexes that runs to the end of the group is not
// decoded past what is needed.
func forPages(cc colChunk, n int, page func(p parquet.Page, row int) error) error {
	pages := cc.Pages()
	defer pages.Close()
	if cc.sel != nil {
		rows := cc.sel.rows
		for i := 0; i < len(rows); {
			r := rows[i]
			if err := pages.SeekToRow(int64(r)); err != nil {
				return fmt.Errorf("seek to row %d: %w", r, err)
			}
			p, err := pages.ReadPage()
			if err != nil {
				return fmt.Errorf("read page at row %d: %w", r, err)
			}
			end := r + int(p.NumRows())
			if end > n {
				parquet.Release(p)
				return errors.New("page holds more rows than the row group")
			}
			j := i + 1
			for j < len(rows) && rows[j] < end {
				j++
			}
			err = page(p.Slice(0, int64(rows[j-1]-r+1)), r)
			parquet.Release(p)
			if err != nil {
				return err
			}
			i = j
		}
		return nil
	}
	row := 0
	for {
		p, err := pages.ReadPage()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if int(p.NumRows()) > n-row {
			parquet.Release(p)
			return errors.New("pages hold more rows than the row group")
		}
		err = page(p, row)
		row += int(p.NumRows())
		parquet.Release(p)
		if err != nil {
			return err
		}
	}
	if row != n {
		return fmt.Errorf("pages hold %d rows, want %d", row, n)
	}
	return nil
}

// nullLevel is the definition level of a null in an optional column.
var nullLevel = []byte{0}

// presentRows calls f with the batch index (sel.at) of the row of each
// non-null value of p that sel wants, in order, and the value's index
// among p's non-null values.
func presentRows(p parquet.Page, row int, sel *rowSel, f func(i, k int)) error {
	defs := p.DefinitionLevels()
	nrows := int(p.NumRows())
	if len(defs) == 0 {
		if p.NumNulls() != 0 {
			return errors.New("page with nulls and no definition levels")
		}
	} else if len(defs) != nrows {
		return errors.New("definition levels do not match the rows")
	}
	if sel != nil {
		// Walk the wanted rows, counting the values before each: a pick
		// of a few rows then costs a pass over bytes, not a call per row.
		lo, _ := slices.BinarySearch(sel.rows, row)
		k, at := 0, 0 // values in defs[:at]
		for j := lo; j < len(sel.rows) && sel.rows[j] < row+nrows; j++ {
			r := sel.rows[j] - row
			if len(defs) == 0 {
				f(j, r)
				continue
			}
			// Levels are 0 (null) or 1: the values before r are the
			// levels that are not 0, which bytes.Count finds fast.
			k += r - at - bytes.Count(defs[at:r], nullLevel)
			at = r
			if defs[r] > 0 {
				f(j, k)
			}
		}
		return nil
	}
	if len(defs) == 0 {
		for k := range nrows {
			f(row+k, k)
		}
		return nil
	}
	k := 0
	for j, d := range defs {
		if d > 0 {
			f(row+j, k)
			k++
		}
	}
	return nil
}

// readInt64s reads a required int64 column into a slice of the batch's
// rows.
func readInt64s(cc colChunk, n int) ([]int64, error) {
	out := make([]int64, cc.sel.len(n))
	err := forPages(cc, n, func(p parquet.Page, row int) error {
		if p.NumNulls() != 0 {
			return errors.New("nulls in a required column")
		}
		var vals []int64
		if dict := p.Dictionary(); dict != nil {
			idx := pageData(p).Int32()
			dv := pageData(dict.Page()).Int64()
			vals = make([]int64, len(idx))
			for i, k := range idx {
				if k < 0 || int(k) >= len(dv) {
					return errors.New("dictionary index out of range")
				}
				vals[i] = dv[k]
			}
		} else {
			vals = pageData(p).Int64()
		}
		if int64(len(vals)) != p.NumRows() {
			return errors.New("page value count differs from its row count")
		}
		if cc.sel == nil {
			copy(out[row:], vals)
			return nil
		}
		for j, v := range vals {
			if i := cc.sel.at(row + j); i >= 0 {
				out[i] = v
			}
		}
		return nil
	})
	return out, err
}

// readFixed calls put with the batch index and value of each non-null
// value of a fixed-size column.
func readFixed(cc colChunk, n, size int, put func(i int, v []byte)) error {
	return forPages(cc, n, func(p parquet.Page, row int) error {
		if dict := p.Dictionary(); dict != nil {
			idx := pageData(p).Int32()
			data, sz := pageData(dict.Page()).FixedLenByteArray()
			if sz != size {
				return fmt.Errorf("values of %d bytes, want %d", sz, size)
			}
			nd := len(data) / size
			var bad error
			err := presentRows(p, row, cc.sel, func(r, k int) {
				if k >= len(idx) || idx[k] < 0 || int(idx[k]) >= nd {
					bad = errors.New("dictionary index out of range")
					return
				}
				j := int(idx[k]) * size
				put(r, data[j:j+size])
			})
			return errors.Join(err, bad)
		}
		data, sz := pageData(p).FixedLenByteArray()
		if sz != size {
			return fmt.Errorf("values of %d bytes, want %d", sz, size)
		}
		var bad error
		err := presentRows(p, row, cc.sel, func(r, k int) {
			if (k+1)*size > len(data) {
				bad = errors.New("fewer values than rows")
				return
			}
			put(r, data[k*size:(k+1)*size])
		})
		return errors.Join(err, bad)
	})
}

func pageData(p parquet.Page) *encoding.Values {
	v := p.Data()
	return &v
}

// readStrings calls put with the batch index and value of each non-null
// string of cc. A dictionary's
// strings are made once per page, so that a column of a few hundred
// routes over a row group costs a few hundred strings, not one per row.
func readStrings(cc colChunk, n int, put func(i int, s string)) error {
	var dictStrs []string
	var lastDict parquet.Dictionary
	var picked [][2]int // batch index and value index of a page's selected values
	return forPages(cc, n, func(p parquet.Page, row int) error {
		if dict := p.Dictionary(); dict != nil {
			if dict != lastDict {
				data, offs := pageData(dict.Page()).ByteArray()
				dictStrs = splitStrings(data, offs, dictStrs[:0])
				lastDict = dict
			}
			idx := pageData(p).Int32()
			var bad error
			err := presentRows(p, row, cc.sel, func(r, k int) {
				if k >= len(idx) || idx[k] < 0 || int(idx[k]) >= len(dictStrs) {
					bad = errors.New("dictionary index out of range")
					return
				}
				put(r, dictStrs[idx[k]])
			})
			return errors.Join(err, bad)
		}
		data, offs := pageData(p).ByteArray()
		if cc.sel == nil {
			strs := splitStrings(data, offs, nil)
			var bad error
			err := presentRows(p, row, nil, func(r, k int) {
				if k >= len(strs) {
					bad = errors.New("fewer values than rows")
					return
				}
				put(r, strs[k])
			})
			return errors.Join(err, bad)
		}
		// Of a page of mostly distinct values (IDs), only the selected
		// ones are copied out of it.
		picked = picked[:0]
		if err := presentRows(p, row, cc.sel, func(i, k int) { picked = append(picked, [2]int{i, k}) }); err != nil {
			return err
		}
		var buf []byte
		for _, ik := range picked {
			k := ik[1]
			if k+1 >= len(offs) || offs[k] > offs[k+1] || int(offs[k+1]) > len(data) {
				return errors.New("fewer values than rows")
			}
			buf = append(buf, data[offs[k]:offs[k+1]]...)
		}
		all, at := string(buf), 0
		for _, ik := range picked {
			n := int(offs[ik[1]+1] - offs[ik[1]])
			put(ik[0], all[at:at+n])
			at += n
		}
		return nil
	})
}

// splitStrings makes the strings of a byte-array page: offs has one more
// entry than there are values.
func splitStrings(data []byte, offs []uint32, dst []string) []string {
	if len(offs) == 0 {
		return dst
	}
	all := string(data) // one allocation for the page; the strings share it
	for i := 0; i+1 < len(offs); i++ {
		a, b := offs[i], offs[i+1]
		if a > b || int(b) > len(all) {
			dst = append(dst, "")
			continue
		}
		dst = append(dst, all[a:b])
	}
	return dst
}

// readNumbers calls put with the batch index and value of each non-null
// number of cc, a column of int64s or doubles, plain or with a
// dictionary; data gives a page's values.
func readNumbers[T int64 | float64](cc colChunk, n int, data func(parquet.Page) []T, put func(i int, v T)) error {
	return forPages(cc, n, func(p parquet.Page, row int) error {
		var bad error
		if dict := p.Dictionary(); dict != nil {
			idx := pageData(p).Int32()
			dv := data(dict.Page())
			err := presentRows(p, row, cc.sel, func(i, k int) {
				if k >= len(idx) || idx[k] < 0 || int(idx[k]) >= len(dv) {
					bad = errors.New("dictionary index out of range")
					return
				}
				put(i, dv[idx[k]])
			})
			return errors.Join(err, bad)
		}
		vals := data(p)
		err := presentRows(p, row, cc.sel, func(i, k int) {
			if k >= len(vals) {
				bad = errors.New("fewer values than rows")
				return
			}
			put(i, vals[k])
		})
		return errors.Join(err, bad)
	})
}

// readValues reads the columns whose values are few or rare (kind,
// status, ints, floats, bools) value by value, calling put with the batch
// index of each non-null one.
func readValues(cc colChunk, n int, put func(i int, v parquet.Value)) error {
	buf := make([]parquet.Value, 4096)
	return forPages(cc, n, func(p parquet.Page, row int) error {
		vr := p.Values()
		r := row
		for {
			k, err := vr.ReadValues(buf)
			for _, v := range buf[:k] {
				if r >= n {
					return errors.New("more values than rows")
				}
				if i := cc.sel.at(r); i >= 0 && !v.IsNull() {
					put(i, v)
				}
				r++
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		if r-row != int(p.NumRows()) {
			return errors.New("page value count differs from its row count")
		}
		return nil
	})
}

// keepRows keeps the rows of b for which want is true, and returns the
// old index of each row kept, or nil when it kept them all.
func keepRows(b *events.Batch, want func(i int) bool) []int {
	keep := make([]int, 0, b.Len)
	for i := range b.Len {
		if want(i) {
			keep = append(keep, i)
		}
	}
	if len(keep) == b.Len {
		return nil
	}
	b.Keep(keep)
	return keep
}

// maxBloomBytes bounds one trace ID filter: 10 bits for each of a row
// group's rows, with room to spare.
const maxBloomBytes = 1 << 20

// checkBloomFilters checks the header of every bloom filter before the
// library reads them, which allocates what a header says.
func checkBloomFilters(r io.ReaderAt, size int64, md *format.FileMetaData) error {
	var proto thrift.CompactProtocol
	var win [256]byte
	for rgi := range md.RowGroups {
		for ci := range md.RowGroups[rgi].Columns {
			off := md.RowGroups[rgi].Columns[ci].MetaData.BloomFilterOffset
			if off == 0 {
				continue
			}
			if off < 4 || off >= size-8 {
				return fmt.Errorf("row group %d column %d: bloom filter outside the file", rgi, ci)
			}
			n := min(int64(len(win)), size-8-off)
			if _, err := r.ReadAt(win[:n], off); err != nil {
				return fmt.Errorf("row group %d column %d: read bloom filter: %w", rgi, ci, err)
			}
			br := bytes.NewReader(win[:n])
			var h format.BloomFilterHeader
			if err := thrift.NewDecoder(proto.NewReader(br)).Decode(&h); err != nil {
				return fmt.Errorf("row group %d column %d: bloom filter header: %w", rgi, ci, err)
			}
			hlen := n - int64(br.Len())
			if h.NumBytes < 0 || h.NumBytes > maxBloomBytes || off+hlen+int64(h.NumBytes) > size-8 {
				return fmt.Errorf("row group %d column %d: bloom filter of %d bytes", rgi, ci, h.NumBytes)
			}
		}
	}
	return nil
}

// trace reads the events of one trace that start in [minT, maxT]. A row
// group its bloom filter lets through has its trace_id column read
// first, and the rest only when the trace is really there: a filter's
// false positives then cost one column.
func (er *eventsReader) trace(ctx context.Context, id events.TraceID, minT, maxT int64, fn func(*events.Batch) error) (err error) {
	defer recoverParquet(&err)
	s := &eventScan{minT: minT, maxT: maxT, trace: &id}
	for gi := range er.groups {
		if s.skipGroup(er, gi) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rg := er.pf.RowGroups()[gi]
		n := int(rg.NumRows())
		var rows []int
		err := readFixed(colChunk{rg.ColumnChunks()[er.fixed[evColTraceID]], nil}, n, 16, func(i int, v []byte) {
			if events.TraceID(v) == id {
				rows = append(rows, i)
			}
		})
		if err != nil {
			return fmt.Errorf("row group %d: %s: %w", gi, evColTraceID, err)
		}
		if len(rows) == 0 {
			continue
		}
		var b events.Batch
		if err := er.readGroup(gi, allEventColumns, &b, rows); err != nil {
			return fmt.Errorf("row group %d: %w", gi, err)
		}
		keepRows(&b, func(i int) bool { return b.TraceID[i] == id && b.Start[i] >= minT && b.Start[i] <= maxT })
		if b.Len > 0 {
			if err := fn(&b); err != nil {
				return err
			}
		}
	}
	return nil
}
