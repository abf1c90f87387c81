package calc

import (
	"encoding/hex"
	"math"
	"strings"
	"unsafe"

	"github.com/hearth-profiler/hearth/internal/events"
)

// view is one field of one batch: where its value is, row by row.
type view struct {
	src  source
	col  *events.Column // an attribute: the first key's column
	col2 *events.Column // an unscoped attribute: the resource's
	strs []string       // name, service, statusMessage; an unscoped .service.name's fallback
	b    *events.Batch
}

func (f *Field) view(b *events.Batch) view {
	v := view{src: f.src, b: b}
	switch f.src {
	case srcAttr:
		v.col = b.Attrs[f.keys[0]]
		if len(f.keys) > 1 {
			v.col2 = b.Attrs[f.keys[1]]
		}
		if f.service {
			v.strs = b.Service
		}
	case srcName:
		v.strs = b.Name
	case srcService:
		v.strs = b.Service
	case srcStatusMessage:
		v.strs = b.StatusMessage
	}
	return v
}

// The value kinds of a view row beyond events.Type: the enums and IDs,
// which print as names and hex but are keyed as numbers and bytes.
const (
	kindStatus = events.Type(100 + iota)
	kindKind
	kindTraceID
	kindSpanID
)

// at returns row r's value: its type (TypeNone when absent) and its
// string or number. Trace and span IDs come as their raw bytes, in a
// string that aliases the batch.
func (v *view) at(r int32) (events.Type, string, uint64) {
	switch v.src {
	case srcAttr:
		if v.col != nil {
			if t := v.col.Types[r]; t != events.TypeNone {
				return colValue(v.col, t, r)
			}
		}
		if v.col2 != nil {
			if t := v.col2.Types[r]; t != events.TypeNone {
				return colValue(v.col2, t, r)
			}
		}
		if v.strs != nil {
			return events.TypeString, v.strs[r], 0
		}
		return events.TypeNone, "", 0
	case srcDuration:
		if v.b.Duration == nil {
			return events.TypeNone, "", 0
		}
		return events.TypeInt, "", uint64(v.b.Duration[r])
	case srcName, srcService, srcStatusMessage:
		if v.strs == nil {
			return events.TypeNone, "", 0
		}
		return events.TypeString, v.strs[r], 0
	case srcStatus:
		if v.b.Status == nil {
			return events.TypeNone, "", 0
		}
		return kindStatus, "", uint64(v.b.Status[r])
	case srcKind:
		if v.b.Kind == nil {
			return events.TypeNone, "", 0
		}
		return kindKind, "", uint64(v.b.Kind[r])
	case srcTraceID:
		if v.b.TraceID == nil {
			return events.TypeNone, "", 0
		}
		id := &v.b.TraceID[r]
		return kindTraceID, unsafe.String(&id[0], len(id)), 0
	case srcSpanID:
		if v.b.SpanID == nil {
			return events.TypeNone, "", 0
		}
		id := &v.b.SpanID[r]
		return kindSpanID, unsafe.String(&id[0], len(id)), 0
	}
	return events.TypeNone, "", 0
}

func colValue(c *events.Column, t events.Type, r int32) (events.Type, string, uint64) {
	if t == events.TypeString {
		return t, c.Str[r], 0
	}
	return t, "", c.Num[r]
}

// number returns row r's value as a number, and false when it has none:
// absent, not numeric, or not finite.
func (v *view) number(r int32) (float64, bool) {
	t, _, n := v.at(r)
	switch t {
	case events.TypeInt:
		return float64(int64(n)), true
	case events.TypeFloat:
		f := math.Float64frombits(n)
		return f, !math.IsNaN(f) && !math.IsInf(f, 0)
	}
	return 0, false
}

// hash returns row r's value's hash for counting distinct values, and
// false when the row has none.
func (v *view) hash(r int32) (uint64, bool) {
	t, s, n := v.at(r)
	switch t {
	case events.TypeNone:
		return 0, false
	case events.TypeString, kindTraceID, kindSpanID:
		return hashString(s) ^ uint64(t), true
	}
	return hashNum(uint8(t), n), true
}

// outValue is a value as results show it: a string, number or bool, and
// nil for absent.
func outValue(t events.Type, s string, n uint64) any {
	switch t {
	case events.TypeString:
		return s
	case events.TypeInt:
		return int64(n)
	case events.TypeFloat:
		f := math.Float64frombits(n)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return events.Float(f).Text() // JSON has no NaN or Inf
		}
		return f
	case events.TypeBool:
		return n != 0
	case kindStatus:
		return events.Status(n).String()
	case kindKind:
		return events.Kind(n).String()
	case kindTraceID, kindSpanID:
		return hex.EncodeToString([]byte(s))
	}
	return nil
}

// noID is a value a dictionary had no room to add.
const noID = math.MaxUint32

type numKey struct {
	t events.Type
	n uint64
}

// dict numbers a field's distinct values; 0 is absent. Strings are
// copied in, as a batch's strings live only as long as the batch. A
// field's strings are all of one kind (text, or trace IDs, or span IDs),
// so one map holds them.
//
// Lookups go through two shortcuts before the map: a cache keyed by the
// string's address, which a storage decoding a dictionary column hands
// out once per distinct value, and the previous row's value (runs of one
// value are common in data sorted by service). Comparing addresses reads
// no string bytes; the cache is dropped between batches, so that a
// reused buffer cannot alias an old value.
type dict struct {
	strs  map[string]uint32
	nums  map[numKey]uint32
	types []events.Type
	sv    []string
	nv    []uint64
	max   int // values beyond which add refuses

	gen    uint32
	cache  *[ptrCacheSize]ptrEntry
	prev   string
	prevID uint32
}

const (
	ptrCacheBits = 10
	ptrCacheSize = 1 << ptrCacheBits
	ptrCacheMul  = 0x9e3779b97f4a7c15 // Fibonacci hashing of the address
)

type ptrEntry struct {
	p   uintptr
	n   int
	gen uint32
	id  uint32
}

func newDict(max int) *dict {
	return &dict{
		strs:  map[string]uint32{},
		nums:  map[numKey]uint32{},
		types: []events.Type{events.TypeNone},
		sv:    []string{""},
		nv:    []uint64{0},
		max:   max,
		gen:   1,
		cache: new([ptrCacheSize]ptrEntry),
	}
}

// newBatch forgets everything that points into the previous batch.
func (d *dict) newBatch() {
	d.gen++
	if d.gen == 0 { // wrapped: entries of gen 0 must not match
		*d.cache = [ptrCacheSize]ptrEntry{}
		d.gen = 1
	}
	d.prev, d.prevID = "", noID
}

func (d *dict) len() int { return len(d.types) }

// str returns the number of string s (of kind t: text or an ID), adding
// it when new and there is room, and noID when there is not. The cache
// hit is small enough to be inlined into the loops over rows.
func (d *dict) str(t events.Type, s string) uint32 {
	p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	e := &d.cache[(uint64(p)*ptrCacheMul)>>(64-ptrCacheBits)]
	if e.p == p && e.n == len(s) && e.gen == d.gen {
		return e.id
	}
	return d.strSlow(t, s, e, p)
}

func (d *dict) strSlow(t events.Type, s string, e *ptrEntry, p uintptr) uint32 {
	var id uint32
	if d.prevID != noID && s == d.prev {
		id = d.prevID
	} else {
		var ok bool
		if id, ok = d.strs[s]; !ok {
			if d.len() >= d.max {
				return noID
			}
			id = uint32(d.len())
			c := strings.Clone(s)
			d.strs[c] = id
			d.types, d.sv, d.nv = append(d.types, t), append(d.sv, c), append(d.nv, 0)
		}
		d.prev, d.prevID = s, id
	}
	*e = ptrEntry{p: p, n: len(s), gen: d.gen, id: id}
	return id
}

// id returns the value's number, adding it when new and there is room,
// and noID when there is not.
func (d *dict) id(t events.Type, s string, n uint64) uint32 {
	switch t {
	case events.TypeNone:
		return 0
	case events.TypeString, kindTraceID, kindSpanID:
		return d.str(t, s)
	}
	return d.num(t, n)
}

func (d *dict) num(t events.Type, n uint64) uint32 {
	k := numKey{t, n}
	id, ok := d.nums[k]
	if !ok {
		if d.len() >= d.max {
			return noID
		}
		id = uint32(d.len())
		d.nums[k] = id
		d.types, d.sv, d.nv = append(d.types, t), append(d.sv, ""), append(d.nv, n)
	}
	return id
}

func (d *dict) value(id uint32) any {
	return outValue(d.types[id], d.sv[id], d.nv[id])
}
