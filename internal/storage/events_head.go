package storage

import (
	"maps"
	"slices"
	"sort"

	"github.com/hearth-profiler/hearth/internal/events"
)

// eventHead holds a tenant's recent events in memory, as columns, next to
// its profiles: the two are cut into one block together, so that events
// go through the same log, checkpoints, blocks, compaction and retention.
// Like the profile head, it is only appended to: a view shares its slices
// and stays valid while appends go on.
type eventHead struct {
	strs   []string // interned strings; 0 is ""
	strIdx map[string]uint32

	start, dur        []int64
	trace             []events.TraceID
	span, parent      []events.SpanID
	service, name     []uint32
	statusMsg         []uint32
	kind              []events.Kind
	status            []events.Status
	attrs             map[string]*headAttr // by scoped key
	detailRows        []uint32             // rows with span events or links
	detail            []eventDetail
	minT, maxT, bytes int64
}

// headAttr is one attribute key over the head's rows, sparse: the rows
// that have it, in order, with their values.
type headAttr struct {
	rows  []uint32
	types []events.Type
	vals  []uint64 // a string's ID in strs, or Value.Num
}

type eventDetail struct {
	spanEvents []events.SpanEvent
	links      []events.Link
}

func newEventHead() *eventHead {
	return &eventHead{strs: []string{""}, strIdx: map[string]uint32{"": 0},
		attrs: map[string]*headAttr{}, minT: 1<<63 - 1, maxT: -1 << 63}
}

func (h *eventHead) len() int { return len(h.start) }

func (h *eventHead) str(s string) uint32 {
	if id, ok := h.strIdx[s]; ok {
		return id
	}
	id := uint32(len(h.strs))
	h.strs = append(h.strs, s)
	h.strIdx[s] = id
	h.bytes += int64(len(s)) + 40
	return id
}

// append adds evs, whose attributes are sorted with unique keys
// (events.Event.Normalize).
func (h *eventHead) append(evs []events.Event) {
	for i := range evs {
		e := &evs[i]
		row := uint32(len(h.start))
		h.start = append(h.start, e.Start)
		h.dur = append(h.dur, e.Duration)
		h.trace = append(h.trace, e.TraceID)
		h.span = append(h.span, e.SpanID)
		h.parent = append(h.parent, e.ParentID)
		h.service = append(h.service, h.str(e.Service))
		h.name = append(h.name, h.str(e.Name))
		h.statusMsg = append(h.statusMsg, h.str(e.StatusMessage))
		h.kind = append(h.kind, e.Kind)
		h.status = append(h.status, e.Status)
		for _, a := range e.Attrs {
			c := h.attrs[a.Key]
			if c == nil {
				c = &headAttr{}
				h.attrs[a.Key] = c
				h.str(a.Key)
			}
			c.rows = append(c.rows, row)
			c.types = append(c.types, a.Value.Type)
			if a.Value.Type == events.TypeString {
				c.vals = append(c.vals, uint64(h.str(a.Value.Str)))
			} else {
				c.vals = append(c.vals, a.Value.Num)
			}
		}
		if len(e.SpanEvents) > 0 || len(e.Links) > 0 {
			h.detailRows = append(h.detailRows, row)
			h.detail = append(h.detail, eventDetail{spanEvents: e.SpanEvents, links: e.Links})
			h.bytes += int64(len(e.SpanEvents)+len(e.Links)) * 96
		}
		h.minT = min(h.minT, e.Start)
		h.maxT = max(h.maxT, e.Start)
		h.bytes += 80 + int64(len(e.Attrs))*13
	}
}

// view returns a copy of h that appends do not change. The caller holds
// the tenant's read lock.
func (h *eventHead) view() *eventHead {
	n := len(h.start)
	v := &eventHead{
		strs:  h.strs[:len(h.strs):len(h.strs)],
		start: h.start[:n:n], dur: h.dur[:n:n], trace: h.trace[:n:n],
		span: h.span[:n:n], parent: h.parent[:n:n],
		service: h.service[:n:n], name: h.name[:n:n], statusMsg: h.statusMsg[:n:n],
		kind: h.kind[:n:n], status: h.status[:n:n],
		attrs:      make(map[string]*headAttr, len(h.attrs)),
		detailRows: h.detailRows[:len(h.detailRows):len(h.detailRows)],
		detail:     h.detail[:len(h.detail):len(h.detail)],
		minT:       h.minT, maxT: h.maxT, bytes: h.bytes,
	}
	for k, c := range h.attrs {
		m := len(c.rows)
		v.attrs[k] = &headAttr{rows: c.rows[:m:m], types: c.types[:m:m], vals: c.vals[:m:m]}
	}
	return v
}

// keys returns the attribute keys of h, sorted.
func (h *eventHead) keys() []string {
	return slices.Sorted(maps.Keys(h.attrs))
}

// fill sets the columns cols asks for of the rows perm[lo:hi] of h (or
// rows lo to hi when perm is nil) in b, reusing b's slices.
func (h *eventHead) fill(b *events.Batch, cols events.Columns, perm []uint32, lo, hi int) {
	n := hi - lo
	row := func(i int) uint32 {
		if perm != nil {
			return perm[lo+i]
		}
		return uint32(lo + i)
	}
	resetBatch(b, n)
	in := cols.Intrinsics
	if in&events.ColStart != 0 {
		b.Start = grow(b.Start, n)
		for i := range n {
			b.Start[i] = h.start[row(i)]
		}
	}
	if in&events.ColDuration != 0 {
		b.Duration = grow(b.Duration, n)
		for i := range n {
			b.Duration[i] = h.dur[row(i)]
		}
	}
	if in&events.ColTraceID != 0 {
		b.TraceID = grow(b.TraceID, n)
		for i := range n {
			b.TraceID[i] = h.trace[row(i)]
		}
	}
	if in&events.ColSpanID != 0 {
		b.SpanID = grow(b.SpanID, n)
		for i := range n {
			b.SpanID[i] = h.span[row(i)]
		}
	}
	if in&events.ColParentID != 0 {
		b.ParentID = grow(b.ParentID, n)
		for i := range n {
			b.ParentID[i] = h.parent[row(i)]
		}
	}
	strCol := func(dst []string, ids []uint32) []string {
		dst = grow(dst, n)
		for i := range n {
			dst[i] = h.strs[ids[row(i)]]
		}
		return dst
	}
	if in&events.ColService != 0 {
		b.Service = strCol(b.Service, h.service)
	}
	if in&events.ColName != 0 {
		b.Name = strCol(b.Name, h.name)
	}
	if in&events.ColStatusMessage != 0 {
		b.StatusMessage = strCol(b.StatusMessage, h.statusMsg)
	}
	if in&events.ColKind != 0 {
		b.Kind = grow(b.Kind, n)
		for i := range n {
			b.Kind[i] = h.kind[row(i)]
		}
	}
	if in&events.ColStatus != 0 {
		b.Status = grow(b.Status, n)
		for i := range n {
			b.Status[i] = h.status[row(i)]
		}
	}
	if in&events.ColDetail != 0 {
		b.SpanEvents = grow(b.SpanEvents, n)
		b.Links = grow(b.Links, n)
		for i := range n {
			r := row(i)
			b.SpanEvents[i], b.Links[i] = nil, nil
			if j, ok := slices.BinarySearch(h.detailRows, r); ok {
				b.SpanEvents[i], b.Links[i] = h.detail[j].spanEvents, h.detail[j].links
			}
		}
	}
	keys := cols.Attrs
	if cols.AllAttrs {
		keys = h.keys()
	}
	for _, k := range keys {
		c := h.attrs[k]
		if c == nil {
			continue
		}
		var col *events.Column
		if perm == nil {
			// Rows lo..hi in order: walk the key's rows in the range.
			j := sort.Search(len(c.rows), func(j int) bool { return c.rows[j] >= uint32(lo) })
			for ; j < len(c.rows) && c.rows[j] < uint32(hi); j++ {
				if col == nil {
					col = batchColumn(b, k, n)
				}
				col.Set(n, int(c.rows[j])-lo, h.value(c, j))
			}
		} else {
			for i := range n {
				if j, ok := slices.BinarySearch(c.rows, row(i)); ok {
					if col == nil {
						col = batchColumn(b, k, n)
					}
					col.Set(n, i, h.value(c, j))
				}
			}
		}
	}
}

func (h *eventHead) value(c *headAttr, j int) events.Value {
	t := c.types[j]
	if t == events.TypeString {
		return events.Value{Type: t, Str: h.strs[c.vals[j]]}
	}
	return events.Value{Type: t, Num: c.vals[j]}
}

// resetBatch empties b for n rows: every column nil, so that only those
// filled after count.
func resetBatch(b *events.Batch, n int) {
	*b = events.Batch{Len: n, Attrs: map[string]*events.Column{}}
}

// batchColumn adds an empty column of n rows to b.
func batchColumn(b *events.Batch, key string, n int) *events.Column {
	c := &events.Column{Types: make([]events.Type, n)}
	b.Attrs[key] = c
	return c
}

// sortedOrder returns h's rows ordered by service, then start time, the
// order of a block's events.
func (h *eventHead) sortedOrder() []uint32 {
	perm := make([]uint32, len(h.start))
	for i := range perm {
		perm[i] = uint32(i)
	}
	slices.SortStableFunc(perm, func(a, b uint32) int {
		if sa, sb := h.strs[h.service[a]], h.strs[h.service[b]]; sa != sb {
			if sa < sb {
				return -1
			}
			return 1
		}
		switch {
		case h.start[a] < h.start[b]:
			return -1
		case h.start[a] > h.start[b]:
			return 1
		}
		return 0
	})
	return perm
}

// sortedAttrs is every attribute value of a head in the order of a
// permutation of its rows, per key, for writing them in that order: a
// lookup per row and key instead would cost a search for each of the
// head's keys on each of its rows.
type sortedAttrs struct {
	keys []string
	cols []*headAttr
	pos  [][]uint32 // per key: the position in the permutation of each value
	js   [][]uint32 // per key: the value's index in the key's headAttr
	cur  []int
}

func (h *eventHead) sortAttrs(perm []uint32) *sortedAttrs {
	inv := make([]uint32, len(perm))
	for p, r := range perm {
		inv[r] = uint32(p)
	}
	sa := &sortedAttrs{keys: h.keys()}
	for _, k := range sa.keys {
		c := h.attrs[k]
		pos := make([]uint32, len(c.rows))
		js := make([]uint32, len(c.rows))
		for j, r := range c.rows {
			pos[j], js[j] = inv[r], uint32(j)
		}
		sort.Sort(byPos{pos, js})
		sa.cols = append(sa.cols, c)
		sa.pos = append(sa.pos, pos)
		sa.js = append(sa.js, js)
	}
	sa.cur = make([]int, len(sa.keys))
	return sa
}

type byPos struct{ pos, js []uint32 }

func (s byPos) Len() int           { return len(s.pos) }
func (s byPos) Less(i, j int) bool { return s.pos[i] < s.pos[j] }
func (s byPos) Swap(i, j int) {
	s.pos[i], s.pos[j] = s.pos[j], s.pos[i]
	s.js[i], s.js[j] = s.js[j], s.js[i]
}

// fill adds the attribute columns of positions [lo, hi) to b. Calls come
// in order of lo.
func (sa *sortedAttrs) fill(h *eventHead, b *events.Batch, lo, hi int) {
	n := hi - lo
	for ki, k := range sa.keys {
		pos, js, c := sa.pos[ki], sa.js[ki], sa.cols[ki]
		var col *events.Column
		for ; sa.cur[ki] < len(pos) && int(pos[sa.cur[ki]]) < hi; sa.cur[ki]++ {
			j := sa.cur[ki]
			if col == nil {
				col = batchColumn(b, k, n)
			}
			col.Set(n, int(pos[j])-lo, h.value(c, int(js[j])))
		}
	}
}
