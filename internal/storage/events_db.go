package storage

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/hearth-profiler/hearth/internal/events"
	"github.com/hearth-profiler/hearth/internal/storage/wal"
)

// AppendEvents logs evs, as an events record, and stores them under
// tenantID. When it returns nil, they survive a crash. Errors are as
// Append's: one that wraps ErrUnavailable means nothing was logged or
// stored, and the same events may be sent again. It normalizes each
// event's attributes in place (events.Event.Normalize).
func (db *DB) AppendEvents(ctx context.Context, tenantID string, evs []events.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if db.opts.ReadOnly {
		return ErrReadOnly
	}
	if len(evs) == 0 {
		return nil
	}
	for i := range evs {
		evs[i].Normalize()
	}
	// Encoding needs no lock; logging and applying happen under the
	// tenant's, so that the log holds records in the order applied.
	rec := encodeRecord(recordEvents, tenantID, events.AppendEncoded(nil, evs))
	t := db.tenant(tenantID)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := db.behind(t); err != nil {
		return err
	}
	if err := db.wal.Log(rec); err != nil {
		if errors.Is(err, wal.ErrWrite) || errors.Is(err, wal.ErrClosed) {
			return fmt.Errorf("%w: log write: %w", ErrUnavailable, err)
		}
		return fmt.Errorf("log write: %w", err)
	}
	t.head.ev.append(evs)
	if t.head.memBytes() >= db.opts.MaxHeadBytes {
		select {
		case db.cutSoon <- struct{}{}:
		default:
		}
	}
	t.lastAppend = db.opts.Now()
	db.appends.Add(1)
	return nil
}

// EventQuery says which events SelectEvents reads.
type EventQuery struct {
	// Columns are those the caller needs; only these are read.
	Columns events.Columns
	// Start and End bound the events' start times: [Start, End), Unix
	// nanoseconds.
	Start, End int64
	// Services, when not nil, lets storage skip what holds none of
	// these services. Events of other services may still come.
	Services []string
	// Pick, when set, makes the read two steps for each batch: Columns
	// are read, Pick returns the rows of that batch it wants (ascending
	// indexes), and Then's columns are read for those rows alone; fn
	// gets the picked rows with both. In blocks, pages that hold no
	// picked row are not decoded: a query that samples events, or wants
	// a few of them whole, reads its filter's columns for every event
	// and the rest for the few. The batch Pick sees may hold more
	// columns than asked for.
	Pick func(*events.Batch) []int
	Then events.Columns
}

// errCallback marks an error that the caller's function returned, so
// that it is not taken for damage to the block being read.
type errCallback struct{ err error }

func (e *errCallback) Error() string { return e.err.Error() }
func (e *errCallback) Unwrap() error { return e.err }

// SelectEvents calls fn with the events of tenantID that start in
// [q.Start, q.End), in batches, from the head, heads being written out
// and blocks, in no particular order. A batch and what it holds are fn's
// only until it returns. A damaged block fails the select, or is left out
// and listed when ctx comes from WithSkipped.
func (db *DB) SelectEvents(ctx context.Context, tenantID string, q EventQuery, fn func(*events.Batch) error) error {
	if q.End <= q.Start {
		return nil
	}
	t, rv, err := db.readTenant(ctx, tenantID, q.Start, q.End)
	if t == nil || err != nil {
		return err
	}
	t.blocksMu.RLock()
	defer t.blocksMu.RUnlock()
	t.mu.RLock()
	heads := []*eventHead{t.head.ev.view()}
	for _, fh := range t.frozen {
		heads = append(heads, fh.head.ev)
	}
	t.mu.RUnlock()
	for _, h := range heads {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := h.scan(q, fn); err != nil {
			return err
		}
	}
	scan := &eventScan{cols: q.Columns, minT: q.Start, maxT: q.End - 1, services: q.Services, pick: q.Pick, then: q.Then}
	for _, b := range rv.blocks(t.blocks) {
		if b.ev == nil {
			continue
		}
		if m := b.meta.Events; m.MaxT < q.Start || m.MinT >= q.End {
			continue
		}
		err := b.ev.scan(ctx, scan, func(bt *events.Batch) error {
			if err := fn(bt); err != nil {
				return &errCallback{err}
			}
			return nil
		})
		if err == nil {
			continue
		}
		var cb *errCallback
		if errors.As(err, &cb) {
			return cb.err
		}
		err = readFailed(ctx, b, fmt.Errorf("events: %w", err))
		if db.skip(ctx, tenantID, err) {
			continue
		}
		return err
	}
	return nil
}

// scan calls fn with h's events in q's range, in batches. A pick reads
// every column it may need at once: a head is in memory.
func (h *eventHead) scan(q EventQuery, fn func(*events.Batch) error) error {
	if h.len() == 0 || h.maxT < q.Start || h.minT >= q.End {
		return nil
	}
	cols := q.Columns
	if q.Pick != nil {
		cols = cols.Merge(q.Then)
	}
	asked := cols
	cut := h.minT < q.Start || h.maxT >= q.End
	if cut {
		cols.Intrinsics |= events.ColStart
	}
	var b events.Batch
	for lo := 0; lo < h.len(); lo += eventsRowGroupRows {
		hi := min(lo+eventsRowGroupRows, h.len())
		h.fill(&b, cols, nil, lo, hi)
		if cut {
			keepRows(&b, func(i int) bool { return b.Start[i] >= q.Start && b.Start[i] < q.End })
			if asked.Intrinsics&events.ColStart == 0 {
				b.Start = nil
			}
		}
		if b.Len == 0 {
			continue
		}
		if q.Pick != nil {
			picked := q.Pick(&b)
			if err := checkPicked(picked, b.Len); err != nil {
				return err
			}
			b.Keep(picked)
			if b.Len == 0 {
				continue
			}
		}
		if err := fn(&b); err != nil {
			return err
		}
	}
	return nil
}

// EventAttribute is an attribute key with a type its values have.
type EventAttribute struct {
	Key  string
	Type events.Type
}

// EventAttributes returns the attribute keys, with their types, of
// tenantID's events in [start, end), sorted. Blocks are counted whole:
// a key they hold anywhere is listed.
func (db *DB) EventAttributes(ctx context.Context, tenantID string, start, end int64) ([]EventAttribute, error) {
	t, rv, err := db.readTenant(ctx, tenantID, start, end)
	if t == nil || err != nil {
		return nil, err
	}
	seen := map[EventAttribute]bool{}
	t.blocksMu.RLock()
	t.mu.RLock()
	heads := []*eventHead{t.head.ev.view()}
	for _, fh := range t.frozen {
		heads = append(heads, fh.head.ev)
	}
	t.mu.RUnlock()
	for _, b := range rv.blocks(t.blocks) {
		if m := b.meta.Events; m == nil || m.MaxT < start || m.MinT >= end {
			continue
		}
		for _, c := range b.meta.Events.Columns {
			typ, _ := parseType(c.Type)
			seen[EventAttribute{c.Key, typ}] = true
		}
	}
	t.blocksMu.RUnlock()
	for _, h := range heads {
		if h.len() == 0 || h.maxT < start || h.minT >= end {
			continue
		}
		for id, k := range h.keys {
			for t, n := range h.keyTypes[id] {
				if n > 0 {
					seen[EventAttribute{k, events.Type(t)}] = true
				}
			}
		}
	}
	out := slices.Collect(maps.Keys(seen))
	sort.Slice(out, func(i, j int) bool {
		if out[i].Key != out[j].Key {
			return out[i].Key < out[j].Key
		}
		return out[i].Type < out[j].Type
	})
	return out, ctx.Err()
}

// Trace returns the events of trace id of tenantID that start in
// [start, end), sorted by start time, with every column. Blocks whose
// trace ID filters rule the trace out are not read.
func (db *DB) Trace(ctx context.Context, tenantID string, id events.TraceID, start, end int64) ([]events.Event, error) {
	if end <= start {
		return nil, nil
	}
	t, rv, err := db.readTenant(ctx, tenantID, start, end)
	if t == nil || err != nil {
		return nil, err
	}
	var out []events.Event
	collect := func(b *events.Batch) error {
		for i := range b.Len {
			if b.TraceID[i] == id {
				out = append(out, b.Event(i))
			}
		}
		return nil
	}
	t.blocksMu.RLock()
	defer t.blocksMu.RUnlock()
	t.mu.RLock()
	heads := []*eventHead{t.head.ev.view()}
	for _, fh := range t.frozen {
		heads = append(heads, fh.head.ev)
	}
	t.mu.RUnlock()
	for _, h := range heads {
		if err := h.traceRows(id, start, end, collect); err != nil {
			return nil, err
		}
	}
	for _, b := range rv.blocks(t.blocks) {
		if m := b.meta.Events; m == nil || m.MaxT < start || m.MinT >= end {
			continue
		}
		if err := b.ev.trace(ctx, id, start, end-1, collect); err != nil {
			err = readFailed(ctx, b, fmt.Errorf("events: %w", err))
			if db.skip(ctx, tenantID, err) {
				continue
			}
			return nil, err
		}
	}
	slices.SortStableFunc(out, func(a, b events.Event) int {
		switch {
		case a.Start < b.Start:
			return -1
		case a.Start > b.Start:
			return 1
		}
		return 0
	})
	return out, nil
}

// traceRows calls fn with h's rows of trace id in [start, end), all columns.
func (h *eventHead) traceRows(id events.TraceID, start, end int64, fn func(*events.Batch) error) error {
	var rows []uint32
	for i := range h.len() {
		if h.trace[i] == id && h.start[i] >= start && h.start[i] < end {
			rows = append(rows, uint32(i))
		}
	}
	if len(rows) == 0 {
		return nil
	}
	var b events.Batch
	h.fill(&b, allEventColumns, rows, 0, len(rows))
	return fn(&b)
}
