package storage

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/hearth-profiler/hearth/internal/labels"
)

// A sample taken while a request ran names it: its span, its local root
// span (the outermost span of the request in the process) and its trace.
// Profilers write these as per-sample labels, one distinct value per
// request. Stored as label sets, every request would add a set of three
// hex strings to the block's tables; stored as strings, 64 bytes a sample.
// Hearth keeps them apart instead: a table of SpanRefs per head and block,
// and a per-sample column of indexes into it. A span's samples share one
// entry, so a sample costs its index, and a span its 8-byte ID and a
// reference to its local root, which holds the 8-byte root ID and the
// 16-byte trace ID once for the request.

// SpanRef is what a sample knows of the request that took it. A zero
// field is unknown.
type SpanRef struct {
	Span  uint64
	Root  uint64 // the local root span
	Trace [16]byte
}

// The per-sample label names under which answers show a SpanRef, and that
// matchers select it by: IDs in lower-case hex, as OpenTelemetry writes
// them.
const (
	SpanIDLabel          = "span_id"
	LocalRootSpanIDLabel = "local_root_span_id"
	TraceIDLabel         = "trace_id"
)

// spanFields are the per-sample labels that a SpanRef is read from, and
// the field each fills. profile_id is otel-profiling-go's older name of
// span_id; "span id" and "local root span id" are Datadog's, in decimal.
var spanFields = map[string]spanField{
	SpanIDLabel: fieldSpan, "profile_id": fieldSpan, "span id": fieldSpan,
	LocalRootSpanIDLabel: fieldRoot, "local root span id": fieldRoot,
	TraceIDLabel: fieldTrace,
}

type spanField uint8

const (
	fieldSpan spanField = iota + 1
	fieldRoot
	fieldTrace
)

// IsSpanLabel says whether name is one of the labels a SpanRef is shown
// as.
func IsSpanLabel(name string) bool {
	return name == SpanIDLabel || name == LocalRootSpanIDLabel || name == TraceIDLabel
}

// Get returns the value of a span label name of r, "" when r does not
// know it or name is no span label.
func (r SpanRef) Get(name string) string {
	switch name {
	case SpanIDLabel:
		return formatID(r.Span)
	case LocalRootSpanIDLabel:
		return formatID(r.Root)
	case TraceIDLabel:
		if r.Trace == ([16]byte{}) {
			return ""
		}
		return hex.EncodeToString(r.Trace[:])
	}
	return ""
}

func formatID(id uint64) string {
	if id == 0 {
		return ""
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], id)
	return hex.EncodeToString(b[:])
}

// AddTo returns ls with r's IDs as span labels.
func (r SpanRef) AddTo(ls labels.Labels) labels.Labels {
	if r == (SpanRef{}) {
		return ls
	}
	var b labels.Builder
	ls.Range(func(l labels.Label) { b.Set(l.Name, l.Value) })
	for _, name := range []string{SpanIDLabel, LocalRootSpanIDLabel, TraceIDLabel} {
		if v := r.Get(name); v != "" {
			b.Set(name, v)
		}
	}
	return b.Labels()
}

// ParseSpanID reads a span ID as 16 hex digits (OpenTelemetry) or as a
// decimal uint64 (Datadog). Zero is no ID.
func ParseSpanID(s string) (uint64, bool) {
	if len(s) == 16 {
		var b [8]byte
		if _, err := hex.Decode(b[:], []byte(s)); err == nil {
			id := binary.BigEndian.Uint64(b[:])
			return id, id != 0
		}
	}
	id, err := strconv.ParseUint(s, 10, 64)
	return id, err == nil && id != 0
}

// parseTraceID reads a trace ID as 32 hex digits.
func parseTraceID(s string) ([16]byte, bool) {
	var t [16]byte
	if len(s) != 32 {
		return t, false
	}
	if _, err := hex.Decode(t[:], []byte(s)); err != nil {
		return t, false
	}
	return t, t != [16]byte{}
}

// spanRefOf reads the SpanRef of a sample from its labels. The first label
// that parses fills its field; the others are left as labels (see takes).
func spanRefOf(str map[string][]string, num map[string][]int64) SpanRef {
	var r SpanRef
	set := func(f spanField, id uint64) {
		switch {
		case f == fieldSpan && r.Span == 0:
			r.Span = id
		case f == fieldRoot && r.Root == 0:
			r.Root = id
		}
	}
	for k, vs := range str {
		f := spanFields[k]
		if f == 0 || len(vs) == 0 {
			continue
		}
		if f == fieldTrace {
			if t, ok := parseTraceID(vs[0]); ok && r.Trace == ([16]byte{}) {
				r.Trace = t
			}
			continue
		}
		if id, ok := ParseSpanID(vs[0]); ok {
			set(f, id)
		}
	}
	for k, vs := range num {
		if f := spanFields[k]; f != 0 && f != fieldTrace && len(vs) > 0 && vs[0] != 0 {
			set(f, uint64(vs[0]))
		}
	}
	return r
}

// takes says whether the string label k=v is held by r, and so is not kept
// as a label of its own.
func (r SpanRef) takes(k, v string) bool {
	switch spanFields[k] {
	case fieldSpan:
		id, ok := ParseSpanID(v)
		return ok && id == r.Span
	case fieldRoot:
		id, ok := ParseSpanID(v)
		return ok && id == r.Root
	case fieldTrace:
		t, ok := parseTraceID(v)
		return ok && t == r.Trace
	}
	return false
}

// takesNum is takes for a numeric label.
func (r SpanRef) takesNum(k string, v int64) bool {
	switch spanFields[k] {
	case fieldSpan:
		return v != 0 && uint64(v) == r.Span
	case fieldRoot:
		return v != 0 && uint64(v) == r.Root
	}
	return false
}

// spanTable interns SpanRefs. ID 0 is the zero SpanRef: samples outside
// any request.
type spanTable struct {
	refs []SpanRef
	idx  map[SpanRef]uint32 // nil in a view or a block: read-only
}

func newSpanTable() spanTable {
	return spanTable{refs: []SpanRef{{}}, idx: map[SpanRef]uint32{{}: 0}}
}

// intern returns the ID of r, adding it when new.
func (t *spanTable) intern(r SpanRef) (id uint32, added bool) {
	if id, ok := t.idx[r]; ok {
		return id, false
	}
	id = uint32(len(t.refs))
	t.refs = append(t.refs, r)
	t.idx[r] = id
	return id, true
}

// spanNames adds to names the span labels that r has.
func spanNames(r SpanRef, names map[string]struct{}) {
	if r.Span != 0 {
		names[SpanIDLabel] = struct{}{}
	}
	if r.Root != 0 {
		names[LocalRootSpanIDLabel] = struct{}{}
	}
	if r.Trace != ([16]byte{}) {
		names[TraceIDLabel] = struct{}{}
	}
}

// spans.bin holds a block's SpanRefs: the distinct local roots (root ID
// and trace ID) once each, then per span its ID and its root's index.
// IDs are random, so they are stored as fixed 8 and 16 bytes; the root
// indexes, in order of first use, are small deltas.
const (
	spansMagic   = "HSPN"
	spansVersion = 1
	spansFile    = "spans.bin"
)

type rootKey struct {
	id    uint64
	trace [16]byte
}

// appendSpans appends the encoding of refs, whose entry 0 is the zero
// SpanRef, to dst.
func appendSpans(dst []byte, refs []SpanRef) ([]byte, error) {
	if len(refs) == 0 || refs[0] != (SpanRef{}) {
		return nil, fmt.Errorf("BUG: span table entry 0 is not the zero span")
	}
	rootIdx := map[rootKey]uint32{{}: 0}
	roots := []rootKey{{}}
	spanRoot := make([]uint32, len(refs))
	for i, r := range refs[1:] {
		k := rootKey{r.Root, r.Trace}
		id, ok := rootIdx[k]
		if !ok {
			id = uint32(len(roots))
			roots = append(roots, k)
			rootIdx[k] = id
		}
		spanRoot[i+1] = id
	}
	var b []byte
	b = binary.AppendUvarint(b, uint64(len(roots)-1))
	for _, r := range roots[1:] {
		b = binary.LittleEndian.AppendUint64(b, r.id)
	}
	for _, r := range roots[1:] {
		b = append(b, r.trace[:]...)
	}
	b = binary.AppendUvarint(b, uint64(len(refs)-1))
	for _, r := range refs[1:] {
		b = binary.LittleEndian.AppendUint64(b, r.Span)
	}
	// Roots are numbered in order of first use: a span's root is most
	// often a recent one, a small step back from the highest so far.
	var top uint32
	for _, id := range spanRoot[1:] {
		b = binary.AppendUvarint(b, uint64(top+1-id))
		top = max(top, id)
	}
	return appendEnvelope(dst, spansMagic, spansVersion, b)
}

// decodeSpans decodes what appendSpans wrote, checking every reference.
func decodeSpans(src []byte) ([]SpanRef, error) {
	body, version, err := openEnvelope(src, spansMagic)
	if err != nil {
		return nil, fmt.Errorf("decode spans: %w", err)
	}
	if version != spansVersion {
		return nil, fmt.Errorf("decode spans: unknown version %d", version)
	}
	d := &decoder{b: body}
	n := d.count(24)
	roots := make([]rootKey, n+1)
	for i := 1; i <= n; i++ {
		roots[i].id = d.fixed64()
	}
	for i := 1; i <= n; i++ {
		copy(roots[i].trace[:], d.bytes(16))
	}
	m := d.count(9)
	refs := make([]SpanRef, m+1)
	for i := 1; i <= m; i++ {
		refs[i].Span = d.fixed64()
	}
	var top uint32
	for i := 1; i <= m && d.err == nil; i++ {
		step := d.uvarint()
		if d.err == nil && step > uint64(top)+1 {
			d.fail("span %d: root step %d out of range", i, step)
			break
		}
		id := top + 1 - uint32(step)
		if int(id) > n {
			d.fail("span %d: root %d out of range [0, %d]", i, id, n)
			break
		}
		top = max(top, id)
		refs[i].Root, refs[i].Trace = roots[id].id, roots[id].trace
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode spans: %w", d.err)
	}
	return refs, nil
}

// legacySpans are the span labels of a block written before spans.bin:
// its sample sets hold them as strings. A block written since never has
// a set with a span label that names an ID. Opening it splits each set into
// the set without them and a request, so that it answers as a block
// written now does.
type legacySpans struct {
	set  []int32 // old set ID: the set without span labels
	span []int32 // old set ID: its request
}

// takeLegacySpans splits the span labels out of *sets into *spans and
// returns the translation, nil when no set holds any.
func takeLegacySpans(sets *[]labels.Labels, spans *[]SpanRef) *legacySpans {
	found := false
	str := map[string][]string{}
	for _, set := range *sets {
		clear(str)
		set.Range(func(l labels.Label) { str[l.Name] = []string{l.Value} })
		if spanRefOf(str, nil) != (SpanRef{}) {
			found = true
			break
		}
	}
	if !found {
		return nil
	}
	t := spanTable{refs: *spans, idx: make(map[SpanRef]uint32, len(*spans))}
	for i, r := range *spans {
		t.idx[r] = uint32(i)
	}
	old := *sets
	l := &legacySpans{set: make([]int32, len(old)), span: make([]int32, len(old))}
	out := []labels.Labels{{}}
	seen := map[string]int32{"": 0}
	for i, set := range old {
		clear(str)
		set.Range(func(lb labels.Label) { str[lb.Name] = []string{lb.Value} })
		r := spanRefOf(str, nil)
		id, _ := t.intern(r)
		l.span[i] = int32(id)
		var kept []labels.Label
		set.Range(func(lb labels.Label) {
			if !r.takes(lb.Name, lb.Value) {
				kept = append(kept, lb)
			}
		})
		rest := labels.New(kept...)
		k := setKey(rest)
		sid, ok := seen[k]
		if !ok {
			sid = int32(len(out))
			out = append(out, rest)
			seen[k] = sid
		}
		l.set[i] = sid
	}
	*sets, *spans = out, t.refs
	return l
}

// translate turns a batch's old set IDs into new ones and requests.
func (l *legacySpans) translate(sc *scanner, bt *sampleBatch) error {
	sc.spanBuf = grow(sc.spanBuf, len(bt.sets))
	bt.spans = sc.spanBuf
	for r, s := range bt.sets {
		if s < 0 || int(s) >= len(l.set) {
			return fmt.Errorf("sample set %d out of range", s)
		}
		bt.spans[r] = l.span[s]
		bt.sets[r] = l.set[s]
	}
	return nil
}
