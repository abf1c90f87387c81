package storage

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/hearth-profiler/hearth/internal/events"
)

// events.parquet holds a block's events, one row each, sorted by service
// then start time, so that a filter on a service reads a few row groups
// and any Parquet reader (DuckDB, Spark) can open it. Its columns are
// the fixed fields every event has and one column per attribute key the
// block's events carry, typed; a key whose values come in several types
// gets a column per type. meta.json lists the attribute columns with
// their key, type and number of values.

const (
	eventsFile = "events.parquet"

	// eventsRowGroupRows bounds a row group: the unit a query skips by
	// its time and service statistics, and reads whole.
	eventsRowGroupRows = 64 << 10
	eventsPageBytes    = 256 << 10
	// maxEventAttrColumns caps the attribute columns of one block. Keys
	// past it, the rarest, go into the otherAttrsColumn as JSON: a
	// sender that makes a key per request (a user ID in the key) must
	// not make a file of a million columns.
	maxEventAttrColumns = 1000
)

// The fixed columns of events.parquet.
const (
	evColStart       = "start_time"
	evColDuration    = "duration_ns"
	evColTraceID     = "trace_id"
	evColSpanID      = "span_id"
	evColParentID    = "parent_span_id"
	evColService     = "service"
	evColName        = "name"
	evColKind        = "kind"
	evColStatus      = "status"
	evColStatusMsg   = "status_message"
	evColDetail      = "span_events_links"
	otherAttrsColumn = "other_attributes"
)

// eventsCodec compresses events.parquet's pages. zstd's default level:
// the better level costs a fifth of a block write more for about 1 % of
// its size on spans (BenchmarkEventsBlock), and events are written again
// by each compaction.
var eventsCodec = &zstd.Codec{Level: zstd.SpeedDefault}

// eventsMeta is the events part of meta.json.
type eventsMeta struct {
	Rows  int64 `json:"rows"`
	Bytes int64 `json:"bytes"`
	MinT  int64 `json:"minT"`
	MaxT  int64 `json:"maxT"`
	// Columns are the attribute columns.
	Columns []eventAttrColumn `json:"columns"`
	// Other counts the attribute values kept in other_attributes.
	Other int64 `json:"other,omitempty"`
}

// eventAttrColumn is one attribute column of events.parquet.
type eventAttrColumn struct {
	Name   string `json:"name"`
	Key    string `json:"key"`
	Type   string `json:"type"`
	Values int64  `json:"values"`
	// Plain says the column is not dictionary-encoded: its values are
	// mostly distinct (IDs), and a dictionary would only cost.
	Plain bool `json:"plain,omitempty"`
}

// attrKT is an attribute key with one of its types.
type attrKT struct {
	key string
	typ events.Type
}

// planEventColumns chooses the attribute columns of a block from the
// number of values of each key and type: a column per pair, named by the
// key for its most common type and key#type for the others; past
// maxEventAttrColumns, the rarest pairs go to other_attributes, and
// other says the file needs that column.
func planEventColumns(counts map[attrKT]int64, plain map[attrKT]bool) (cols []eventAttrColumn, other bool) {
	pairs := make([]attrKT, 0, len(counts))
	for p := range counts {
		pairs = append(pairs, p)
	}
	slices.SortFunc(pairs, func(a, b attrKT) int {
		return cmp.Or(-cmp.Compare(counts[a], counts[b]), strings.Compare(a.key, b.key), cmp.Compare(a.typ, b.typ))
	})
	if len(pairs) > maxEventAttrColumns {
		other = true
		pairs = pairs[:maxEventAttrColumns]
	}
	used := map[string]bool{}
	for _, p := range pairs { // most common first: the key's main type gets the plain name
		name := p.key
		for used[name] {
			name += "#" + p.typ.String()
		}
		used[name] = true
		cols = append(cols, eventAttrColumn{Name: name, Key: p.key, Type: p.typ.String(), Values: counts[p],
			Plain: plain[p] && (p.typ == events.TypeString || p.typ == events.TypeInt)})
	}
	slices.SortFunc(cols, func(a, b eventAttrColumn) int { return strings.Compare(a.Name, b.Name) })
	return cols, other
}

func parseType(s string) (events.Type, bool) {
	for t := events.TypeString; t <= events.TypeBool; t++ {
		if t.String() == s {
			return t, true
		}
	}
	return 0, false
}

// eventsSchema is the Parquet schema of a block with attribute columns
// cols.
func eventsSchema(cols []eventAttrColumn, withOther bool) *parquet.Schema {
	dictString := parquet.Encoded(parquet.String(), &parquet.RLEDictionary)
	g := parquet.Group{
		evColStart:     parquet.Encoded(parquet.Timestamp(parquet.Nanosecond), &parquet.DeltaBinaryPacked),
		evColDuration:  parquet.Encoded(parquet.Int(64), &parquet.DeltaBinaryPacked),
		evColTraceID:   parquet.Encoded(parquet.Leaf(parquet.FixedLenByteArrayType(16)), &parquet.RLEDictionary),
		evColSpanID:    parquet.Leaf(parquet.FixedLenByteArrayType(8)),
		evColParentID:  parquet.Leaf(parquet.FixedLenByteArrayType(8)),
		evColService:   dictString,
		evColName:      dictString,
		evColKind:      parquet.Encoded(parquet.Int(32), &parquet.RLEDictionary),
		evColStatus:    parquet.Encoded(parquet.Int(32), &parquet.RLEDictionary),
		evColStatusMsg: parquet.Optional(dictString),
		evColDetail:    parquet.Optional(parquet.String()),
	}
	if withOther {
		g[otherAttrsColumn] = parquet.Optional(parquet.String())
	}
	for _, c := range cols {
		t, _ := parseType(c.Type)
		var n parquet.Node
		switch {
		case t == events.TypeString && c.Plain:
			n = parquet.String()
		case t == events.TypeString:
			n = dictString
		case t == events.TypeInt && c.Plain:
			n = parquet.Encoded(parquet.Int(64), &parquet.DeltaBinaryPacked)
		case t == events.TypeInt:
			n = parquet.Encoded(parquet.Int(64), &parquet.RLEDictionary)
		case t == events.TypeFloat:
			n = parquet.Leaf(parquet.DoubleType)
		case t == events.TypeBool:
			n = parquet.Leaf(parquet.BooleanType)
		}
		g[c.Name] = parquet.Optional(n)
	}
	return parquet.NewSchema("events", g)
}

// eventsWriter streams a block's events, in order, into events.parquet.
type eventsWriter struct {
	cw     countingWriter
	bw     *bufio.Writer
	pw     *parquet.GenericWriter[parquet.Row]
	schema *parquet.Schema
	meta   eventsMeta

	// Leaf column indexes of the fixed columns and of each attribute
	// column by key and type.
	idx         map[string]int
	attr        map[attrKT]int
	otherIdx    int
	ncol        int
	vals        []parquet.Value
	groupRows   int // rows written to the row group being built
	lastService string
	lastStart   int64
}

func newEventsWriter(w io.Writer, cols []eventAttrColumn, other bool) *eventsWriter {
	ew := &eventsWriter{cw: countingWriter{w: w}, idx: map[string]int{}, attr: map[attrKT]int{}, otherIdx: -1}
	ew.meta = eventsMeta{Columns: cols, MinT: 1<<63 - 1, MaxT: -1 << 63}
	ew.schema = eventsSchema(cols, other)
	ew.bw = bufio.NewWriterSize(&ew.cw, 1<<20)
	ew.pw = parquet.NewGenericWriter[parquet.Row](ew.bw, ew.schema,
		parquet.Compression(eventsCodec),
		parquet.MaxRowsPerRowGroup(eventsRowGroupRows),
		parquet.PageBufferSize(eventsPageBytes),
		parquet.CreatedBy("hearth", "1", ""),
		// A trace is looked up by ID across a day of blocks: the filter
		// lets a lookup skip the row groups without it, at about 10 bits
		// per distinct trace.
		parquet.BloomFilters(parquet.SplitBlockFilter(10, evColTraceID)),
	)
	for i, path := range ew.schema.Columns() {
		ew.idx[path[0]] = i
	}
	ew.ncol = len(ew.schema.Columns())
	for _, c := range cols {
		t, _ := parseType(c.Type)
		ew.attr[attrKT{c.Key, t}] = ew.idx[c.Name]
	}
	if other {
		ew.otherIdx = ew.idx[otherAttrsColumn]
	}
	return ew
}

func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// add writes the rows of b, which holds every column (AllIntrinsics,
// ColDetail, AllAttrs) and comes in block order. It writes column by
// column: a row at a time would visit every attribute column for every
// row, most of them empty.
func (w *eventsWriter) add(b *events.Batch) error {
	n := b.Len
	if n == 0 {
		return nil
	}
	for i := range n {
		if w.meta.Rows > 0 || i > 0 {
			if b.Service[i] < w.lastService || b.Service[i] == w.lastService && b.Start[i] < w.lastStart {
				return fmt.Errorf("BUG: event of %s at %d out of order", b.Service[i], b.Start[i])
			}
		}
		w.lastService, w.lastStart = b.Service[i], b.Start[i]
		w.meta.MinT = min(w.meta.MinT, b.Start[i])
		w.meta.MaxT = max(w.meta.MaxT, b.Start[i])
	}
	cws := w.pw.ColumnWriters()
	w.vals = grow(w.vals, n)
	vals := w.vals
	// Each column is filled by a loop of its own type: a call per value
	// through a closure cost a third of a block write.
	flush := func(col int) error {
		_, err := cws[col].WriteRowValues(vals)
		return err
	}
	int64s := func(name string, xs []int64) error {
		col := w.idx[name]
		for i, x := range xs[:n] {
			vals[i] = parquet.Int64Value(x).Level(0, 0, col)
		}
		return flush(col)
	}
	strs := func(name string, xs []string) error {
		col := w.idx[name]
		for i, x := range xs[:n] {
			vals[i] = parquet.ByteArrayValue(bytesOf(x)).Level(0, 0, col)
		}
		return flush(col)
	}
	spanIDs := func(name string, xs []events.SpanID) error {
		col := w.idx[name]
		for i := range xs[:n] {
			vals[i] = parquet.FixedLenByteArrayValue(xs[i][:]).Level(0, 0, col)
		}
		return flush(col)
	}
	err := errors.Join(
		int64s(evColStart, b.Start),
		int64s(evColDuration, b.Duration),
		func() error {
			col := w.idx[evColTraceID]
			for i := range b.TraceID[:n] {
				vals[i] = parquet.FixedLenByteArrayValue(b.TraceID[i][:]).Level(0, 0, col)
			}
			return flush(col)
		}(),
		spanIDs(evColSpanID, b.SpanID),
		spanIDs(evColParentID, b.ParentID),
		strs(evColService, b.Service),
		strs(evColName, b.Name),
		func() error {
			col := w.idx[evColKind]
			for i, k := range b.Kind[:n] {
				vals[i] = parquet.Int32Value(int32(k)).Level(0, 0, col)
			}
			return flush(col)
		}(),
		func() error {
			col := w.idx[evColStatus]
			for i, st := range b.Status[:n] {
				vals[i] = parquet.Int32Value(int32(st)).Level(0, 0, col)
			}
			return flush(col)
		}(),
		func() error {
			col := w.idx[evColStatusMsg]
			null := parquet.NullValue().Level(0, 0, col)
			for i, m := range b.StatusMessage[:n] {
				if m == "" {
					vals[i] = null
				} else {
					vals[i] = parquet.ByteArrayValue(bytesOf(m)).Level(0, 1, col)
				}
			}
			return flush(col)
		}(),
	)
	if err != nil {
		return err
	}
	write := func(col int, f func(i int) (parquet.Value, bool)) error {
		for i := range n {
			if v, ok := f(i); ok {
				vals[i] = v.Level(0, 1, col)
			} else {
				vals[i] = parquet.NullValue().Level(0, 0, col)
			}
		}
		return flush(col)
	}
	var detailErr error
	err = write(w.idx[evColDetail], func(i int) (parquet.Value, bool) {
		if len(b.SpanEvents[i]) == 0 && len(b.Links[i]) == 0 {
			return parquet.Value{}, false
		}
		d, err := json.Marshal(encodeDetail(b.SpanEvents[i], b.Links[i]))
		detailErr = cmp.Or(detailErr, err)
		return parquet.ByteArrayValue(d), true
	})
	if err = cmp.Or(err, detailErr); err != nil {
		return err
	}
	// Attribute columns: each from the batch's column of its key, typed;
	// values of pairs without a column go to other_attributes.
	var otherKeys []string
	for k, c := range b.Attrs {
		for _, t := range c.Types {
			if _, ok := w.attr[attrKT{k, t}]; t != events.TypeNone && !ok {
				if w.otherIdx < 0 {
					return fmt.Errorf("BUG: attribute %s of type %s has no column", k, t)
				}
				otherKeys = append(otherKeys, k)
				break
			}
		}
	}
	for kt, col := range w.attr {
		if err := w.attrColumn(col, kt.typ, b.Attrs[kt.key], vals[:n]); err != nil {
			return err
		}
		if err := flush(col); err != nil {
			return err
		}
	}
	if w.otherIdx >= 0 {
		slices.Sort(otherKeys)
		var attrBuf []events.Attr
		var jerr error
		err := write(w.otherIdx, func(i int) (parquet.Value, bool) {
			attrBuf = attrBuf[:0]
			for _, k := range otherKeys {
				v := b.Attrs[k].Value(i)
				if _, ok := w.attr[attrKT{k, v.Type}]; v.Type != events.TypeNone && !ok {
					attrBuf = append(attrBuf, events.Attr{Key: k, Value: v})
				}
			}
			if len(attrBuf) == 0 {
				return parquet.Value{}, false
			}
			w.meta.Other += int64(len(attrBuf))
			d, err := json.Marshal(encodeAttrs(attrBuf))
			jerr = cmp.Or(jerr, err)
			return parquet.ByteArrayValue(d), true
		})
		if err = cmp.Or(err, jerr); err != nil {
			return err
		}
	}
	w.meta.Rows += int64(n)
	w.groupRows += n
	if w.groupRows >= eventsRowGroupRows {
		w.groupRows = 0
		return w.pw.Flush()
	}
	return nil
}

// attrColumn fills vals with column col of values of type t, from c (nil:
// none).
func (w *eventsWriter) attrColumn(col int, t events.Type, c *events.Column, vals []parquet.Value) error {
	null := parquet.NullValue().Level(0, 0, col)
	if c == nil || t == events.TypeString && c.Str == nil || t != events.TypeString && c.Num == nil {
		for i := range vals { // no row has a value of the column's type
			vals[i] = null
		}
		return nil
	}
	types := c.Types[:len(vals)]
	switch t {
	case events.TypeString:
		strs := c.Str[:len(vals)]
		for i, ty := range types {
			if ty == t {
				vals[i] = parquet.ByteArrayValue(bytesOf(strs[i])).Level(0, 1, col)
			} else {
				vals[i] = null
			}
		}
	case events.TypeInt:
		nums := c.Num[:len(vals)]
		for i, ty := range types {
			if ty == t {
				vals[i] = parquet.Int64Value(int64(nums[i])).Level(0, 1, col)
			} else {
				vals[i] = null
			}
		}
	case events.TypeFloat:
		nums := c.Num[:len(vals)]
		for i, ty := range types {
			if ty == t {
				vals[i] = parquet.DoubleValue(math.Float64frombits(nums[i])).Level(0, 1, col)
			} else {
				vals[i] = null
			}
		}
	case events.TypeBool:
		nums := c.Num[:len(vals)]
		for i, ty := range types {
			if ty == t {
				vals[i] = parquet.BooleanValue(nums[i] != 0).Level(0, 1, col)
			} else {
				vals[i] = null
			}
		}
	default:
		return fmt.Errorf("BUG: attribute column of type %s", t)
	}
	return nil
}

// close finishes the file and returns the events part of meta.json.
func (w *eventsWriter) close() (*eventsMeta, error) {
	err := w.pw.Close()
	if err == nil {
		err = w.bw.Flush()
	}
	if err != nil {
		return nil, err
	}
	m := w.meta // a copy: a pointer into w would keep the writer, its buffers and the head's strings alive with the block
	m.Bytes = w.cw.n
	if m.Rows == 0 {
		m.MinT, m.MaxT = 0, 0
	}
	return &m, nil
}

// jsonAttr is an attribute as span_events_links and other_attributes
// hold it: the key and the value under the name of its type, so that
// ints and floats stay apart.
type jsonAttr struct {
	Key   string   `json:"key"`
	Str   *string  `json:"str,omitempty"`
	Int   *int64   `json:"int,omitempty"`
	Float *float64 `json:"float,omitempty"`
	Bool  *bool    `json:"bool,omitempty"`
}

type jsonSpanEvent struct {
	Time  int64      `json:"time"`
	Name  string     `json:"name"`
	Attrs []jsonAttr `json:"attributes,omitempty"`
}

type jsonLink struct {
	TraceID string     `json:"trace_id"`
	SpanID  string     `json:"span_id"`
	Attrs   []jsonAttr `json:"attributes,omitempty"`
}

type jsonDetail struct {
	Events []jsonSpanEvent `json:"events,omitempty"`
	Links  []jsonLink      `json:"links,omitempty"`
}

func encodeAttrs(attrs []events.Attr) []jsonAttr {
	out := make([]jsonAttr, len(attrs))
	for i, a := range attrs {
		out[i].Key = a.Key
		switch v := a.Value; v.Type {
		case events.TypeString:
			out[i].Str = &v.Str
		case events.TypeInt:
			n := v.Int()
			out[i].Int = &n
		case events.TypeFloat:
			f := v.Float()
			out[i].Float = &f
		case events.TypeBool:
			b := v.Bool()
			out[i].Bool = &b
		}
	}
	return out
}

func decodeAttrs(in []jsonAttr) ([]events.Attr, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]events.Attr, len(in))
	for i, a := range in {
		out[i].Key = a.Key
		switch {
		case a.Str != nil:
			out[i].Value = events.String(*a.Str)
		case a.Int != nil:
			out[i].Value = events.Int(*a.Int)
		case a.Float != nil:
			out[i].Value = events.Float(*a.Float)
		case a.Bool != nil:
			out[i].Value = events.Bool(*a.Bool)
		default:
			return nil, fmt.Errorf("attribute %q without a value", a.Key)
		}
	}
	return out, nil
}

func encodeDetail(evs []events.SpanEvent, links []events.Link) jsonDetail {
	var d jsonDetail
	for _, e := range evs {
		d.Events = append(d.Events, jsonSpanEvent{Time: e.Time, Name: e.Name, Attrs: encodeAttrs(e.Attrs)})
	}
	for _, l := range links {
		d.Links = append(d.Links, jsonLink{TraceID: l.TraceID.String(), SpanID: l.SpanID.String(), Attrs: encodeAttrs(l.Attrs)})
	}
	return d
}

func decodeDetail(b []byte) ([]events.SpanEvent, []events.Link, error) {
	var d jsonDetail
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, nil, fmt.Errorf("span events and links: %w", err)
	}
	var evs []events.SpanEvent
	var links []events.Link
	for _, e := range d.Events {
		attrs, err := decodeAttrs(e.Attrs)
		if err != nil {
			return nil, nil, err
		}
		evs = append(evs, events.SpanEvent{Time: e.Time, Name: e.Name, Attrs: attrs})
	}
	for _, l := range d.Links {
		tid, err := events.ParseTraceID(l.TraceID)
		if err != nil {
			return nil, nil, err
		}
		sid, err := events.ParseSpanID(l.SpanID)
		if err != nil {
			return nil, nil, err
		}
		attrs, err := decodeAttrs(l.Attrs)
		if err != nil {
			return nil, nil, err
		}
		links = append(links, events.Link{TraceID: tid, SpanID: sid, Attrs: attrs})
	}
	return evs, links, nil
}
