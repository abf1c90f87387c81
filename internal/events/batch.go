package events

import "slices"

// Intrinsic is a set of the fixed columns every event has.
type Intrinsic uint16

// The fixed columns.
const (
	ColStart Intrinsic = 1 << iota
	ColDuration
	ColTraceID
	ColSpanID
	ColParentID
	ColService
	ColName
	ColKind
	ColStatus
	ColStatusMessage
	// ColDetail is the span events and links of a span, read to show it,
	// never to filter on.
	ColDetail

	// AllIntrinsics is every fixed column but ColDetail.
	AllIntrinsics = ColDetail - 1
)

// Columns says what a reader of events needs: storage fills only these
// in the Batches it hands over, and reads only these from disk.
type Columns struct {
	Intrinsics Intrinsic
	// Attrs are scoped attribute keys ("span.http.route").
	Attrs []string
	// AllAttrs asks for every attribute, as for showing whole events.
	AllAttrs bool
}

// Merge returns the columns that c or o needs.
func (c Columns) Merge(o Columns) Columns {
	out := Columns{Intrinsics: c.Intrinsics | o.Intrinsics, AllAttrs: c.AllAttrs || o.AllAttrs}
	seen := map[string]bool{}
	for _, k := range append(append([]string(nil), c.Attrs...), o.Attrs...) {
		if !seen[k] {
			seen[k] = true
			out.Attrs = append(out.Attrs, k)
		}
	}
	return out
}

// Batch is a run of events as columns: the fixed ones asked for (the
// others nil) and the attribute columns asked for, by scoped key. Every
// non-nil slice has Len entries. A Batch and what it holds belong to the
// reader only until the callback it was passed to returns.
type Batch struct {
	Len int

	Start, Duration []int64
	TraceID         []TraceID
	SpanID          []SpanID
	ParentID        []SpanID
	Service, Name   []string
	Kind            []Kind
	Status          []Status
	StatusMessage   []string
	SpanEvents      [][]SpanEvent
	Links           [][]Link

	// Attrs holds a column per attribute key asked for that some event
	// of the batch has. A key asked for that no event has is absent.
	Attrs map[string]*Column
}

// Keep keeps the rows rows (ascending indexes) of b, in place. A column
// left without a value is dropped.
func (b *Batch) Keep(rows []int) {
	if len(rows) == b.Len {
		return
	}
	b.Len = len(rows)
	b.Start = keep(b.Start, rows)
	b.Duration = keep(b.Duration, rows)
	b.TraceID = keep(b.TraceID, rows)
	b.SpanID = keep(b.SpanID, rows)
	b.ParentID = keep(b.ParentID, rows)
	b.Service = keep(b.Service, rows)
	b.Name = keep(b.Name, rows)
	b.Kind = keep(b.Kind, rows)
	b.Status = keep(b.Status, rows)
	b.StatusMessage = keep(b.StatusMessage, rows)
	b.SpanEvents = keep(b.SpanEvents, rows)
	b.Links = keep(b.Links, rows)
	for k, c := range b.Attrs {
		c.Types, c.Str, c.Num = keep(c.Types, rows), keep(c.Str, rows), keep(c.Num, rows)
		if !slices.ContainsFunc(c.Types, func(t Type) bool { return t != TypeNone }) {
			delete(b.Attrs, k)
		}
	}
}

// keep keeps the entries of s at rows, in place; nil stays nil.
func keep[T any](s []T, rows []int) []T {
	if s == nil {
		return nil
	}
	for i, k := range rows {
		s[i] = s[k]
	}
	return s[:len(rows)]
}

// Column is one attribute over the rows of a Batch. The same key may hold
// values of several types, row by row.
type Column struct {
	// Types says, per row, which type the row's value has; TypeNone
	// where the event lacks the attribute.
	Types []Type
	// Str holds the string values, Num the bits of the others (see
	// Value), each indexed by row; either is nil when no row needs it.
	Str []string
	Num []uint64
}

// Value returns row i's value; its Type is TypeNone when the row has none.
func (c *Column) Value(i int) Value {
	switch t := c.Types[i]; t {
	case TypeNone:
		return Value{}
	case TypeString:
		return Value{Type: t, Str: c.Str[i]}
	default:
		return Value{Type: t, Num: c.Num[i]}
	}
}

// Set stores v as row i's value in a column of n rows, making the slices
// it needs.
func (c *Column) Set(n, i int, v Value) {
	if c.Types == nil {
		c.Types = make([]Type, n)
	}
	c.Types[i] = v.Type
	switch v.Type {
	case TypeNone:
	case TypeString:
		if c.Str == nil {
			c.Str = make([]string, n)
		}
		c.Str[i] = v.Str
	default:
		if c.Num == nil {
			c.Num = make([]uint64, n)
		}
		c.Num[i] = v.Num
	}
}

// Event returns row i as an Event, with what the batch holds of it.
func (b *Batch) Event(i int) Event {
	var e Event
	if b.Start != nil {
		e.Start = b.Start[i]
	}
	if b.Duration != nil {
		e.Duration = b.Duration[i]
	}
	if b.TraceID != nil {
		e.TraceID = b.TraceID[i]
	}
	if b.SpanID != nil {
		e.SpanID = b.SpanID[i]
	}
	if b.ParentID != nil {
		e.ParentID = b.ParentID[i]
	}
	if b.Service != nil {
		e.Service = b.Service[i]
	}
	if b.Name != nil {
		e.Name = b.Name[i]
	}
	if b.Kind != nil {
		e.Kind = b.Kind[i]
	}
	if b.Status != nil {
		e.Status = b.Status[i]
	}
	if b.StatusMessage != nil {
		e.StatusMessage = b.StatusMessage[i]
	}
	if b.SpanEvents != nil {
		e.SpanEvents = b.SpanEvents[i]
	}
	if b.Links != nil {
		e.Links = b.Links[i]
	}
	for k, c := range b.Attrs {
		if v := c.Value(i); v.Type != TypeNone {
			e.Attrs = append(e.Attrs, Attr{Key: k, Value: v})
		}
	}
	sortAttrs(e.Attrs)
	return e
}
