package storage

import (
	"slices"
	"unsafe"

	"github.com/hearth-profiler/hearth/internal/events"
)

// eventHead holds a tenant's recent events in memory next to its
// profiles: the two are cut into one block together, so that events go
// through the same log, checkpoints, blocks, compaction and retention.
// Like the profile head, it is only appended to: a view shares its slices
// and stays valid while appends go on.
//
// The fixed fields are columns; attributes are kept row by row (each
// event's run in attrs), because that is the order they arrive in and
// the order a block writes them in, sorted by service and time. A query
// of the head reads the few keys it names by walking the runs.
type eventHead struct {
	start, dur    []int64
	trace         []events.TraceID
	span, parent  []events.SpanID
	service, name []string
	statusMsg     []string
	kind          []events.Kind
	status        []events.Status
	// Row i's attributes are attrChunks[c][o:o+attrN[i]], where
	// attrLoc[i] is c<<32 | o. Chunks of a fixed size, a row never split
	// between two, make appending a million events copy no attribute
	// twice; one big slice would be copied whole each time it grows.
	attrLoc    []uint64
	attrN      []uint16
	attrChunks [][]headAttr
	detailRows []uint32 // rows with span events or links
	detail     []eventDetail

	// keys are the attribute keys by ID, keyTypes their values' count per
	// type; keyIdx finds a key's ID. lastKeys are the keys of the last
	// event appended: events of one sender repeat them in order, and a
	// string comparison costs less than a map lookup.
	keys     []string
	keyTypes [][numEventTypes]int64
	arena    [][]byte
	// longStrs hold the rare values too long for an arena reference; a
	// headAttr's num is then an index here, and typ has longString set.
	longStrs []string
	keyIdx   map[string]uint32
	lastKeys []uint32

	minT, maxT, bytes int64
}

const numEventTypes = int(events.TypeBool) + 1

// headAttr is one attribute of one event: 16 bytes and no pointer, so
// that a head of millions of attributes costs the garbage collector
// nothing to scan. A string value is num, a reference into the arena.
type headAttr struct {
	key uint32
	typ events.Type
	num uint64
}

// String values are kept in an arena of byte chunks, not as Go strings:
// a string per value would be an allocation and a pointer each, and most
// values of a wide event are seen once, so interning would be a map
// insertion each. A reference packs the chunk (16 bits), the offset in it
// (24) and the length (24).
const (
	arenaChunkBytes = 1 << 20
	arenaMaxString  = 1<<24 - 1
)

type eventDetail struct {
	spanEvents []events.SpanEvent
	links      []events.Link
}

func newEventHead() *eventHead {
	return &eventHead{keyIdx: map[string]uint32{}, minT: 1<<63 - 1, maxT: -1 << 63}
}

// longString marks a headAttr whose string is in longStrs.
const longString events.Type = 0x40

// putString keeps s in the arena and returns its reference, or keeps it
// in longStrs and returns its index with ok false.
func (h *eventHead) putString(s string) (ref uint64, inArena bool) {
	if len(s) > arenaMaxString {
		h.longStrs = append(h.longStrs, s)
		return uint64(len(h.longStrs) - 1), false
	}
	last := len(h.arena) - 1
	if last < 0 || cap(h.arena[last])-len(h.arena[last]) < len(s) {
		h.arena = append(h.arena, make([]byte, 0, max(arenaChunkBytes, len(s))))
		last++
	}
	c := h.arena[last]
	off := len(c)
	h.arena[last] = append(c, s...)
	return uint64(last)<<48 | uint64(off)<<24 | uint64(len(s)), true
}

// getString returns the string a reference names, sharing the arena's
// bytes: a chunk is only appended to, never changed.
func (h *eventHead) getString(ref uint64) string {
	c, off, n := ref>>48, (ref>>24)&(1<<24-1), ref&(1<<24-1)
	if n == 0 {
		return ""
	}
	return unsafe.String(&h.arena[c][off], int(n))
}

// attrValue returns a's value.
func (h *eventHead) attrValue(a headAttr) events.Value {
	switch a.typ {
	case events.TypeString:
		return events.Value{Type: events.TypeString, Str: h.getString(a.num)}
	case events.TypeString | longString:
		return events.Value{Type: events.TypeString, Str: h.longStrs[a.num]}
	}
	return events.Value{Type: a.typ, Num: a.num}
}

// attrChunkSize is the number of attributes of one chunk.
const attrChunkSize = 1 << 16

// rowAttrs returns row r's attributes.
func (h *eventHead) rowAttrs(r uint32) []headAttr {
	loc := h.attrLoc[r]
	c, o := loc>>32, uint32(loc)
	return h.attrChunks[c][o : o+uint32(h.attrN[r])]
}

// chunkFor returns the chunk that a row of n attributes is appended to,
// starting a new one when the last cannot hold them.
func (h *eventHead) chunkFor(n int) int {
	last := len(h.attrChunks) - 1
	if last < 0 || cap(h.attrChunks[last])-len(h.attrChunks[last]) < n {
		h.attrChunks = append(h.attrChunks, make([]headAttr, 0, max(attrChunkSize, n)))
		last++
	}
	return last
}

func (h *eventHead) len() int { return len(h.start) }

// keyID returns the ID of the key of the i-th attribute of an event.
func (h *eventHead) keyID(i int, key string) uint32 {
	if i < len(h.lastKeys) {
		if id := h.lastKeys[i]; h.keys[id] == key {
			return id
		}
	}
	id, ok := h.keyIdx[key]
	if !ok {
		id = uint32(len(h.keys))
		h.keys = append(h.keys, key)
		h.keyTypes = append(h.keyTypes, [numEventTypes]int64{})
		h.keyIdx[key] = id
		h.bytes += int64(len(key)) + 64
	}
	if i < len(h.lastKeys) {
		h.lastKeys[i] = id
	} else {
		h.lastKeys = append(h.lastKeys, id)
	}
	return id
}

// append adds evs. Strings are kept as they are, not interned: most
// values of a wide event (IDs, paths) are seen once, and the decoders
// make each its own allocation.
func (h *eventHead) append(evs []events.Event) {
	for i := range evs {
		e := &evs[i]
		row := uint32(len(h.start))
		h.start = append(h.start, e.Start)
		h.dur = append(h.dur, e.Duration)
		h.trace = append(h.trace, e.TraceID)
		h.span = append(h.span, e.SpanID)
		h.parent = append(h.parent, e.ParentID)
		h.service = append(h.service, e.Service)
		h.name = append(h.name, e.Name)
		h.statusMsg = append(h.statusMsg, e.StatusMessage)
		h.kind = append(h.kind, e.Kind)
		h.status = append(h.status, e.Status)
		var strBytes int
		attrs := e.Attrs[:min(len(e.Attrs), 1<<16-1)] // the limits keep far fewer
		c := h.chunkFor(len(attrs))
		chunk := h.attrChunks[c]
		h.attrLoc = append(h.attrLoc, uint64(c)<<32|uint64(len(chunk)))
		h.attrN = append(h.attrN, uint16(len(attrs)))
		for j, a := range attrs {
			id := h.keyID(j, a.Key)
			if a.Value.Type > events.TypeNone && int(a.Value.Type) < numEventTypes {
				h.keyTypes[id][a.Value.Type]++
			}
			ha := headAttr{key: id, typ: a.Value.Type, num: a.Value.Num}
			if a.Value.Type == events.TypeString {
				ref, inArena := h.putString(a.Value.Str)
				ha.num = ref
				if !inArena {
					ha.typ |= longString
				}
				strBytes += len(a.Value.Str)
			}
			chunk = append(chunk, ha)
		}
		h.attrChunks[c] = chunk
		if len(e.SpanEvents) > 0 || len(e.Links) > 0 {
			h.detailRows = append(h.detailRows, row)
			h.detail = append(h.detail, eventDetail{spanEvents: e.SpanEvents, links: e.Links})
			h.bytes += int64(len(e.SpanEvents)+len(e.Links)) * 96
		}
		h.minT = min(h.minT, e.Start)
		h.maxT = max(h.maxT, e.Start)
		h.bytes += 140 + int64(len(e.Attrs))*int64(unsafe.Sizeof(headAttr{})) + int64(strBytes+len(e.Name)+len(e.StatusMessage))
	}
}

// view returns a copy of h that appends do not change. The caller holds
// the tenant's read lock.
func (h *eventHead) view() *eventHead {
	n := len(h.start)
	nk := len(h.keys)
	// Chunks are appended to in place past what the view's rows use,
	// which the view never reads; the list of chunks is copied.
	chunks := slices.Clone(h.attrChunks)
	return &eventHead{
		start: h.start[:n:n], dur: h.dur[:n:n], trace: h.trace[:n:n],
		span: h.span[:n:n], parent: h.parent[:n:n],
		service: h.service[:n:n], name: h.name[:n:n], statusMsg: h.statusMsg[:n:n],
		kind: h.kind[:n:n], status: h.status[:n:n],
		attrLoc: h.attrLoc[:n:n], attrN: h.attrN[:n:n], attrChunks: chunks,
		detailRows: h.detailRows[:len(h.detailRows):len(h.detailRows)],
		detail:     h.detail[:len(h.detail):len(h.detail)],
		keys:       h.keys[:nk:nk],
		// Appends change the counts in place: the view takes a copy.
		keyTypes: slices.Clone(h.keyTypes),
		arena:    slices.Clone(h.arena),
		longStrs: h.longStrs[:len(h.longStrs):len(h.longStrs)],
		minT:     h.minT, maxT: h.maxT, bytes: h.bytes,
	}
}

// fill sets the columns cols asks for of the rows perm[lo:hi] of h (or
// rows lo to hi when perm is nil) in b.
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
		b.Start = gather(h.start, perm, lo, hi)
	}
	if in&events.ColDuration != 0 {
		b.Duration = gather(h.dur, perm, lo, hi)
	}
	if in&events.ColTraceID != 0 {
		b.TraceID = gather(h.trace, perm, lo, hi)
	}
	if in&events.ColSpanID != 0 {
		b.SpanID = gather(h.span, perm, lo, hi)
	}
	if in&events.ColParentID != 0 {
		b.ParentID = gather(h.parent, perm, lo, hi)
	}
	if in&events.ColService != 0 {
		b.Service = gather(h.service, perm, lo, hi)
	}
	if in&events.ColName != 0 {
		b.Name = gather(h.name, perm, lo, hi)
	}
	if in&events.ColStatusMessage != 0 {
		b.StatusMessage = gather(h.statusMsg, perm, lo, hi)
	}
	if in&events.ColKind != 0 {
		b.Kind = gather(h.kind, perm, lo, hi)
	}
	if in&events.ColStatus != 0 {
		b.Status = gather(h.status, perm, lo, hi)
	}
	if in&events.ColDetail != 0 {
		b.SpanEvents = make([][]events.SpanEvent, n)
		b.Links = make([][]events.Link, n)
		for i := range n {
			if j, ok := slices.BinarySearch(h.detailRows, row(i)); ok {
				b.SpanEvents[i], b.Links[i] = h.detail[j].spanEvents, h.detail[j].links
			}
		}
	}
	// The columns wanted, by key ID; nil for keys not asked for.
	want := make([]*events.Column, len(h.keys))
	wantAny := false
	if cols.AllAttrs {
		for id := range h.keys {
			want[id] = &events.Column{}
		}
		wantAny = len(h.keys) > 0
	} else {
		for _, k := range cols.Attrs {
			if id, ok := h.lookupKey(k); ok {
				want[id] = &events.Column{}
				wantAny = true
			}
		}
	}
	if !wantAny {
		return
	}
	for i := range n {
		r := row(i)
		for _, a := range h.rowAttrs(r) {
			if c := want[a.key]; c != nil {
				c.Set(n, i, h.attrValue(a))
			}
		}
	}
	for id, c := range want {
		if c != nil && c.Types != nil {
			b.Attrs[h.keys[id]] = c
		}
	}
}

// lookupKey finds a key's ID. A view has no keyIdx: it searches keys,
// which a query does once per key it names.
func (h *eventHead) lookupKey(k string) (uint32, bool) {
	if h.keyIdx != nil {
		id, ok := h.keyIdx[k]
		return id, ok
	}
	if i := slices.Index(h.keys, k); i >= 0 {
		return uint32(i), true
	}
	return 0, false
}

// gather returns s[perm[lo:hi]], or s[lo:hi] copied when perm is nil.
func gather[T any](s []T, perm []uint32, lo, hi int) []T {
	out := make([]T, hi-lo)
	if perm == nil {
		copy(out, s[lo:hi])
		return out
	}
	for i, r := range perm[lo:hi] {
		out[i] = s[r]
	}
	return out
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
// order of a block's events. Services are ranked once, so that the sort
// compares integers, not strings.
func (h *eventHead) sortedOrder() []uint32 {
	rank := map[string]uint32{}
	for _, s := range h.service {
		if _, ok := rank[s]; !ok {
			rank[s] = 0
		}
	}
	names := make([]string, 0, len(rank))
	for s := range rank {
		names = append(names, s)
	}
	slices.Sort(names)
	for i, s := range names {
		rank[s] = uint32(i)
	}
	type key struct {
		rank  uint32
		row   uint32
		start int64
	}
	keys := make([]key, len(h.start))
	last, lastRank := "", uint32(0)
	for i, s := range h.service {
		if i == 0 || s != last {
			last, lastRank = s, rank[s]
		}
		keys[i] = key{lastRank, uint32(i), h.start[i]}
	}
	slices.SortFunc(keys, func(a, b key) int {
		switch {
		case a.rank != b.rank:
			return int(a.rank) - int(b.rank)
		case a.start < b.start:
			return -1
		case a.start > b.start:
			return 1
		}
		return int(a.row) - int(b.row)
	})
	perm := make([]uint32, len(keys))
	for i, k := range keys {
		perm[i] = k.row
	}
	return perm
}

// mostlyDistinct returns the string and int attributes whose values are
// mostly distinct in a sample of h's rows: user, order and request IDs,
// which a block stores without a dictionary.
func (h *eventHead) mostlyDistinct() map[attrKT]bool {
	const sampleRows = 2048
	step := max(1, h.len()/sampleRows)
	type sample struct {
		n    int
		seen map[events.Value]struct{}
	}
	samples := map[uint32]*sample{}
	for r := 0; r < h.len(); r += step {
		for _, a := range h.rowAttrs(uint32(r)) {
			if t := a.typ &^ longString; t != events.TypeString && t != events.TypeInt {
				continue
			}
			s := samples[a.key]
			if s == nil {
				s = &sample{seen: map[events.Value]struct{}{}}
				samples[a.key] = s
			}
			s.n++
			s.seen[h.attrValue(a)] = struct{}{}
		}
	}
	out := map[attrKT]bool{}
	for id, s := range samples {
		if s.n >= 64 && len(s.seen)*2 > s.n {
			for t := events.TypeString; t <= events.TypeInt; t++ {
				out[attrKT{h.keys[id], t}] = true
			}
		}
	}
	return out
}
