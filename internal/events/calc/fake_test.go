package calc

import (
	"context"
	"slices"

	"github.com/hearth-profiler/hearth/internal/events"
)

// fakeScan hands out evs in batches of size, filling only the columns
// asked for, as storage will: a query that forgets to ask for a column
// sees it empty and computes a wrong answer.
func fakeScan(evs []events.Event, size int) (Scan, *[]events.Columns) {
	var asked []events.Columns
	scan := func(ctx context.Context, cols events.Columns, fn func(*events.Batch) error) error {
		asked = append(asked, cols)
		for lo := 0; lo < len(evs); lo += size {
			b := batchOf(evs[lo:min(lo+size, len(evs))], cols)
			if err := fn(b); err != nil {
				return err
			}
		}
		return nil
	}
	return scan, &asked
}

func batchOf(evs []events.Event, cols events.Columns) *events.Batch {
	n := len(evs)
	b := &events.Batch{Len: n, Attrs: map[string]*events.Column{}}
	has := func(c events.Intrinsic) bool { return cols.Intrinsics&c != 0 }
	if has(events.ColStart) {
		b.Start = make([]int64, n)
	}
	if has(events.ColDuration) {
		b.Duration = make([]int64, n)
	}
	if has(events.ColTraceID) {
		b.TraceID = make([]events.TraceID, n)
	}
	if has(events.ColSpanID) {
		b.SpanID = make([]events.SpanID, n)
	}
	if has(events.ColService) {
		b.Service = make([]string, n)
	}
	if has(events.ColName) {
		b.Name = make([]string, n)
	}
	if has(events.ColKind) {
		b.Kind = make([]events.Kind, n)
	}
	if has(events.ColStatus) {
		b.Status = make([]events.Status, n)
	}
	if has(events.ColStatusMessage) {
		b.StatusMessage = make([]string, n)
	}
	for i, e := range evs {
		if b.Start != nil {
			b.Start[i] = e.Start
		}
		if b.Duration != nil {
			b.Duration[i] = e.Duration
		}
		if b.TraceID != nil {
			b.TraceID[i] = e.TraceID
		}
		if b.SpanID != nil {
			b.SpanID[i] = e.SpanID
		}
		if b.Service != nil {
			b.Service[i] = e.Service
		}
		if b.Name != nil {
			b.Name[i] = e.Name
		}
		if b.Kind != nil {
			b.Kind[i] = e.Kind
		}
		if b.Status != nil {
			b.Status[i] = e.Status
		}
		if b.StatusMessage != nil {
			b.StatusMessage[i] = e.StatusMessage
		}
		for _, a := range e.Attrs {
			if !cols.AllAttrs && !slices.Contains(cols.Attrs, a.Key) {
				continue
			}
			c := b.Attrs[a.Key]
			if c == nil {
				c = &events.Column{}
				b.Attrs[a.Key] = c
			}
			c.Set(n, i, a.Value)
		}
	}
	return b
}

// funcFilter selects the events match says yes to, reading them through
// the batch: it sees only the columns it names.
type funcFilter struct {
	cols  events.Columns
	match func(e events.Event) bool
}

func (f funcFilter) Columns() events.Columns { return f.cols }

func (f funcFilter) Match(b *events.Batch, sel []bool) {
	for i := range b.Len {
		if f.match(b.Event(i)) {
			sel[i] = true
		}
	}
}

func attr(e events.Event, key string) events.Value {
	for _, a := range e.Attrs {
		if a.Key == key {
			return a.Value
		}
	}
	return events.Value{}
}
