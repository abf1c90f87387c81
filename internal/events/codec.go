package events

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// codecVersion starts every encoded batch, so that a later layout can be
// told apart from this one in an old log.
const codecVersion = 1

// AppendEncoded appends evs to b in Hearth's write-ahead log layout for
// events: a version byte, a table of the batch's distinct strings, then
// each event with its strings as indexes into the table. Interning makes
// a batch of spans of a few services and routes small, and the table is
// what decoding allocates strings from, once per distinct string.
func AppendEncoded(b []byte, evs []Event) []byte {
	var st stringTable
	st.idx = make(map[string]uint32, 64)
	// Two passes: the table must come first, so that a reader can make
	// every string before it reads the events.
	var body []byte
	body = binary.AppendUvarint(body, uint64(len(evs)))
	for i := range evs {
		body = appendEvent(body, &st, &evs[i])
	}
	b = append(b, codecVersion)
	b = binary.AppendUvarint(b, uint64(len(st.strs)))
	for _, s := range st.strs {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return append(b, body...)
}

type stringTable struct {
	strs []string
	idx  map[string]uint32
	// lastKeys are the key IDs of the last event's attributes, by
	// position: a sender repeats its keys in order, and comparing a
	// string costs less than a map lookup. vals is the state of each key
	// ID's values.
	lastKeys []uint32
	vals     []valueState
}

// valueState is what the encoder learnt of one key's string values: the
// last one, and how many were already in the table (hits) or new. A key whose values are mostly new
// (a user or order ID) has them written inline rather than interned: a
// table entry and a map insertion for each would only cost.
type valueState struct {
	last         string
	lastID       uint32
	seen         bool
	hits, misses int32
}

// inline says whether a key's values are written in place.
func (v *valueState) inline() bool { return v.misses >= 16 && v.hits*4 < v.misses }

// keyID returns the table ID of the key of the i-th attribute.
func (t *stringTable) keyID(i int, key string) uint32 {
	if i < len(t.lastKeys) {
		if id := t.lastKeys[i]; t.strs[id] == key {
			return id
		}
	}
	id := uint32(t.id(key))
	if i < len(t.lastKeys) {
		t.lastKeys[i] = id
	} else {
		t.lastKeys = append(t.lastKeys, id)
	}
	for len(t.vals) <= int(id) {
		t.vals = append(t.vals, valueState{})
	}
	return id
}

func (t *stringTable) id(s string) uint64 {
	if i, ok := t.idx[s]; ok {
		return uint64(i)
	}
	i := uint32(len(t.strs))
	t.strs = append(t.strs, s)
	t.idx[s] = i
	return uint64(i)
}

func appendEvent(b []byte, st *stringTable, e *Event) []byte {
	b = binary.AppendVarint(b, e.Start)
	b = binary.AppendVarint(b, e.Duration)
	b = append(b, e.TraceID[:]...)
	b = append(b, e.SpanID[:]...)
	b = append(b, e.ParentID[:]...)
	b = binary.AppendUvarint(b, st.id(e.Service))
	b = binary.AppendUvarint(b, st.id(e.Name))
	b = append(b, byte(e.Kind), byte(e.Status))
	b = binary.AppendUvarint(b, st.id(e.StatusMessage))
	b = appendAttrs(b, st, e.Attrs)
	b = binary.AppendUvarint(b, uint64(len(e.SpanEvents)))
	for _, se := range e.SpanEvents {
		b = binary.AppendVarint(b, se.Time)
		b = binary.AppendUvarint(b, st.id(se.Name))
		b = appendAttrs(b, st, se.Attrs)
	}
	b = binary.AppendUvarint(b, uint64(len(e.Links)))
	for _, l := range e.Links {
		b = append(b, l.TraceID[:]...)
		b = append(b, l.SpanID[:]...)
		b = appendAttrs(b, st, l.Attrs)
	}
	return b
}

// inlineString is the type byte of a string value written in place
// (length and bytes) rather than as a table index.
const inlineString = 0x80 | byte(TypeString)

func appendAttrs(b []byte, st *stringTable, attrs []Attr) []byte {
	b = binary.AppendUvarint(b, uint64(len(attrs)))
	for i, a := range attrs {
		k := st.keyID(i, a.Key)
		b = binary.AppendUvarint(b, uint64(k))
		if a.Value.Type != TypeString {
			b = append(b, byte(a.Value.Type))
			b = binary.AppendUvarint(b, a.Value.Num)
			continue
		}
		vs := &st.vals[k]
		switch {
		case vs.seen && vs.last == a.Value.Str:
			vs.hits++
		case vs.inline():
			b = append(b, inlineString)
			b = binary.AppendUvarint(b, uint64(len(a.Value.Str)))
			b = append(b, a.Value.Str...)
			continue
		default:
			id, ok := st.idx[a.Value.Str]
			if ok {
				vs.hits++
			} else {
				vs.misses++
				id = uint32(st.id(a.Value.Str))
			}
			vs.last, vs.lastID, vs.seen = a.Value.Str, id, true
		}
		b = append(b, byte(TypeString))
		b = binary.AppendUvarint(b, uint64(vs.lastID))
	}
	return b
}

// Decode reads a batch that AppendEncoded wrote. It checks everything it
// reads, since a log can be damaged, and fails with what it found wrong.
func Decode(b []byte) ([]Event, error) {
	d := decoder{b: b}
	if len(b) == 0 {
		return nil, errors.New("decode events: empty record")
	}
	if v := d.byte(); v != codecVersion {
		return nil, fmt.Errorf("decode events: layout version %d, this Hearth reads %d", v, codecVersion)
	}
	n := d.count(1)
	strs := make([]string, 0, n)
	for range n {
		l := d.count(1)
		if d.err != nil {
			break
		}
		strs = append(strs, string(d.b[:l]))
		d.b = d.b[l:]
	}
	d.strs = strs
	// An event takes at least 38 bytes: its IDs and a byte per other field.
	n = d.count(38)
	evs := make([]Event, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		var e Event
		e.Start = d.varint()
		e.Duration = d.varint()
		d.bytes(e.TraceID[:])
		d.bytes(e.SpanID[:])
		d.bytes(e.ParentID[:])
		e.Service = d.str()
		e.Name = d.str()
		e.Kind = Kind(d.byte())
		e.Status = Status(d.byte())
		e.StatusMessage = d.str()
		e.Attrs = d.attrs()
		if k := d.count(3); k > 0 {
			e.SpanEvents = make([]SpanEvent, k)
			for j := range e.SpanEvents {
				e.SpanEvents[j] = SpanEvent{Time: d.varint(), Name: d.str(), Attrs: d.attrs()}
			}
		}
		if k := d.count(25); k > 0 {
			e.Links = make([]Link, k)
			for j := range e.Links {
				l := &e.Links[j]
				d.bytes(l.TraceID[:])
				d.bytes(l.SpanID[:])
				l.Attrs = d.attrs()
			}
		}
		if d.err == nil {
			if e.Kind >= numKinds {
				d.fail("span kind %d", e.Kind)
			} else if e.Status >= numStatuses {
				d.fail("status %d", e.Status)
			}
		}
		evs = append(evs, e)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d bytes after the last event", len(d.b))
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode events: %w", d.err)
	}
	return evs, nil
}

type decoder struct {
	b    []byte
	strs []string
	err  error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *decoder) failVarint(k int) {
	if k == 0 {
		d.fail("truncated")
	} else {
		d.fail("varint overflows 64 bits")
	}
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes(dst []byte) {
	if d.err != nil {
		return
	}
	if len(d.b) < len(dst) {
		d.fail("truncated")
		return
	}
	copy(dst, d.b)
	d.b = d.b[len(dst):]
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, k := binary.Uvarint(d.b)
	if k <= 0 {
		d.failVarint(k)
		return 0
	}
	d.b = d.b[k:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, k := binary.Varint(d.b)
	if k <= 0 {
		d.failVarint(k)
		return 0
	}
	d.b = d.b[k:]
	return v
}

// count reads a length of items that take at least min bytes each, and
// refuses one that the rest of the input cannot hold, so that a damaged
// length does not make a huge allocation.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.b)/min) {
		d.fail("count %d past the end of the record", n)
		return 0
	}
	return int(n)
}

func (d *decoder) str() string {
	i := d.uvarint()
	if d.err != nil {
		return ""
	}
	if i >= uint64(len(d.strs)) {
		d.fail("string %d of a table of %d", i, len(d.strs))
		return ""
	}
	return d.strs[i]
}

func (d *decoder) attrs() []Attr {
	n := d.count(3)
	if n == 0 {
		return nil
	}
	out := make([]Attr, 0, n)
	for range n {
		if d.err != nil {
			return nil
		}
		a := Attr{Key: d.str()}
		typ := d.byte()
		a.Value.Type = Type(typ)
		switch {
		case typ == inlineString:
			a.Value.Type = TypeString
			l := d.count(1)
			if d.err == nil {
				a.Value.Str = string(d.b[:l])
				d.b = d.b[l:]
			}
		case a.Value.Type == TypeString:
			a.Value.Str = d.str()
		case a.Value.Type == TypeInt, a.Value.Type == TypeFloat, a.Value.Type == TypeBool:
			a.Value.Num = d.uvarint()
		default:
			d.fail("attribute %q of type %d", a.Key, a.Value.Type)
		}
		out = append(out, a)
	}
	return out
}

// sortAttrs sorts attributes by key.
func sortAttrs(attrs []Attr) {
	slices.SortFunc(attrs, func(a, b Attr) int { return strings.Compare(a.Key, b.Key) })
}

// Normalize sorts e's attributes by key and keeps the last value of a key
// given twice, the way a map keeps the last write. Decoders call it so that
// every stored event has unique, sorted keys.
func (e *Event) Normalize() {
	e.Attrs = normalizeAttrs(e.Attrs)
	for i := range e.SpanEvents {
		e.SpanEvents[i].Attrs = normalizeAttrs(e.SpanEvents[i].Attrs)
	}
	for i := range e.Links {
		e.Links[i].Attrs = normalizeAttrs(e.Links[i].Attrs)
	}
}

func normalizeAttrs(attrs []Attr) []Attr {
	sorted := true
	for i := 1; i < len(attrs); i++ {
		if attrs[i-1].Key >= attrs[i].Key {
			sorted = false
			break
		}
	}
	if sorted {
		return attrs // the decoders' usual case: a pass, no sort
	}
	slices.SortStableFunc(attrs, func(a, b Attr) int { return strings.Compare(a.Key, b.Key) })
	out := attrs[:0]
	for i, a := range attrs {
		if i+1 < len(attrs) && attrs[i+1].Key == a.Key {
			continue
		}
		out = append(out, a)
	}
	return out
}
