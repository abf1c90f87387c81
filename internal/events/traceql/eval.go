package traceql

import (
	"encoding/binary"
	"encoding/hex"
	"math"
	"slices"
	"unsafe"

	"github.com/hearth-profiler/hearth/internal/events"
)

// bytesOf views a selection as bytes (a Go bool is one byte, 0 or 1), so
// that the loops below can AND a comparison into it without a branch: once
// a selection has been narrowed, which rows are set looks random, and a
// branch on it would be mispredicted half the time.
func bytesOf(sel []bool) []uint8 {
	return unsafe.Slice((*uint8)(unsafe.Pointer(unsafe.SliceData(sel))), len(sel))
}

// b2u is a bool as 0 or 1, without a branch.
func b2u(b bool) uint8 { return *(*uint8)(unsafe.Pointer(&b)) }

// anyTrue says whether any row is selected, eight at a time.
func anyTrue(sel []bool) bool {
	b := bytesOf(sel)
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if binary.LittleEndian.Uint64(b[i:]) != 0 {
			return true
		}
	}
	for ; i < len(b); i++ {
		if b[i] != 0 {
			return true
		}
	}
	return false
}

// fillTrue selects every row: doubling copies are memmoves, far faster than
// a loop of byte stores.
func fillTrue(sel []bool) {
	if len(sel) == 0 {
		return
	}
	sel[0] = true
	for n := 1; n < len(sel); n *= 2 {
		copy(sel[n:], sel[:n])
	}
}

// An evaluator narrows a selection: for each row i with sel[i] set, it
// sets sel[i] to whether the row satisfies its condition; rows not
// selected stay unselected and are not looked at. Narrowing is what makes
// && cheap (its right side sees only the rows its left side kept), and
// every evaluator works a whole column at a time: one interface call per
// node and batch, none per row.
type evaluator interface {
	narrow(b *events.Batch, sel []bool, s *scratch)
	// cost ranks evaluators for &&, which runs the cheap ones first.
	cost() int
}

// scratch is the per-call working memory of Match: selection buffers for
// the nodes that need one (|| , !, unscoped attributes), each node with
// its own slots, and the regex memos. Filters keep them in a pool.
type scratch struct {
	bufs  [][]bool
	memos []regexMemo
}

// buf returns slot i resized to n rows; its contents are garbage.
func (s *scratch) buf(i, n int) []bool {
	if cap(s.bufs[i]) < n {
		s.bufs[i] = make([]bool, n)
	}
	return s.bufs[i][:n]
}

// compiler turns parsed nodes into evaluators, handing out scratch slots.
type compiler struct {
	slots, memos int
}

func (c *compiler) slot() int {
	c.slots++
	return c.slots - 1
}

func (c *compiler) compile(e expr) evaluator {
	switch e := e.(type) {
	case *andExpr:
		ev := &evAnd{}
		for _, a := range e.args {
			ev.xs = append(ev.xs, c.compile(a))
		}
		// && has no side effects and cannot fail, so the order of its
		// operands is free: run the cheap ones first, on all the rows,
		// and the dear ones (regular expressions) on what is left.
		slices.SortStableFunc(ev.xs, func(a, b evaluator) int { return a.cost() - b.cost() })
		return ev
	case *orExpr:
		ev := &evOr{cand: c.slot(), rest: c.slot()}
		for _, a := range e.args {
			ev.xs = append(ev.xs, c.compile(a))
		}
		slices.SortStableFunc(ev.xs, func(a, b evaluator) int { return a.cost() - b.cost() })
		return ev
	case *notExpr:
		return &evNot{x: c.compile(e.x), tmp: c.slot()}
	case *constExpr:
		return evConst(e.v)
	case *cmpExpr:
		return c.compileCmp(e)
	}
	panic("traceql: unknown node")
}

func (c *compiler) compileCmp(e *cmpExpr) evaluator {
	memo := -1
	if e.re != nil && e.re.kind == mRegexp && !e.field.isID() {
		memo = c.memos
		c.memos++
	}
	switch e.field.kind {
	case fSpanAttr:
		return &evAttr{key: events.ScopeSpan + e.field.name, p: newPred(e, memo)}
	case fResourceAttr:
		return &evAttr{key: events.ScopeResource + e.field.name, p: newPred(e, memo)}
	case fAnyAttr:
		return &evAnyAttr{
			spanKey: events.ScopeSpan + e.field.name,
			resKey:  events.ScopeResource + e.field.name,
			service: e.field.name == "service.name",
			p:       newPred(e, memo),
			rest:    c.slot(),
		}
	case fName, fStatusMessage, fService:
		if e.lit.typ == lNil {
			if e.field.kind != fService {
				return evConst(true) // "name != nil": intrinsics always exist
			}
			return &evServiceExists{want: e.op == OpNeq}
		}
		return &evString{col: e.field.kind, p: newPred(e, memo)}
	case fDuration:
		if e.lit.typ == lNil {
			return evConst(true)
		}
		return &evDuration{p: newPred(e, memo)}
	case fStatus, fKind:
		if e.lit.typ == lNil {
			return evConst(true)
		}
		ev := &evEnum{status: e.field.kind == fStatus, eq: e.op == OpEq}
		if ev.status {
			ev.v = uint8(e.lit.status)
		} else {
			ev.v = uint8(e.lit.kind)
		}
		return ev
	case fSpanID, fParentID, fTraceID:
		if e.lit.typ == lNil {
			return evConst(true)
		}
		return &evID{col: e.field.kind, op: e.op, trace: e.traceID, span: e.spanID, re: e.re}
	}
	panic("traceql: unknown field")
}

// evConst is true or false.
type evConst bool

func (e evConst) narrow(_ *events.Batch, sel []bool, _ *scratch) {
	if !e {
		clear(sel)
	}
}

func (e evConst) cost() int { return 0 }

// evAnd narrows by each operand in turn.
type evAnd struct{ xs []evaluator }

func (e *evAnd) narrow(b *events.Batch, sel []bool, s *scratch) {
	for i, x := range e.xs {
		if i > 0 && !anyTrue(sel) {
			return
		}
		x.narrow(b, sel, s)
	}
}

func (e *evAnd) cost() int { return maxCost(e.xs) }

// evOr keeps the rows any operand keeps; each operand after the first sees
// only the rows the ones before it did not keep.
type evOr struct {
	xs         []evaluator
	cand, rest int // scratch slots
}

func (e *evOr) narrow(b *events.Batch, sel []bool, s *scratch) {
	n := len(sel)
	cand := s.buf(e.cand, n)
	copy(cand, sel)
	e.xs[0].narrow(b, sel, s)
	rest := s.buf(e.rest, n)
	for _, x := range e.xs[1:] {
		any := false
		for i := range rest {
			r := cand[i] && !sel[i]
			rest[i] = r
			any = any || r
		}
		if !any {
			return
		}
		x.narrow(b, rest, s)
		for i, r := range rest {
			if r {
				sel[i] = true
			}
		}
	}
}

func (e *evOr) cost() int { return maxCost(e.xs) + 1 }

// evNot keeps the rows its operand rejects.
type evNot struct {
	x   evaluator
	tmp int
}

func (e *evNot) narrow(b *events.Batch, sel []bool, s *scratch) {
	tmp := s.buf(e.tmp, len(sel))
	copy(tmp, sel)
	e.x.narrow(b, tmp, s)
	for i, t := range tmp {
		if t {
			sel[i] = false
		}
	}
}

func (e *evNot) cost() int { return e.x.cost() + 1 }

func maxCost(xs []evaluator) int {
	c := 0
	for _, x := range xs {
		c = max(c, x.cost())
	}
	return c
}

// pred is a comparison with a literal, applied to typed columns. What it
// does with a column depends on the literal's type:
//
//   - a string: string rows compare with it (= != < <= > >= =~ !~);
//   - a number or a duration: int and float rows compare numerically;
//   - a boolean: bool rows compare with it;
//   - nil: = nil keeps the rows without a value, != nil the rows with one.
//
// Rows whose value has another type, or none, are dropped by every
// operator but "= nil": in TraceQL, span.x != "a" means "span.x exists, is
// a string and is not a".
type pred struct {
	op  Op
	lit literal
	re  *matcher
	// memo is the scratch memo of a general regular expression, or -1.
	memo int

	// The comparison of an integer with the literal, made exact for a
	// float literal by floatToInt: intOp with intVal, unless always or
	// never settles it.
	intOp             Op
	intVal            int64
	intAlways, intNvr bool
	// The comparison of a float with the literal.
	fltVal float64
}

func newPred(e *cmpExpr, memo int) pred {
	p := pred{op: e.op, lit: e.lit, re: e.re, memo: memo}
	switch e.lit.typ {
	case lInt, lDuration:
		p.intOp, p.intVal = e.op, e.lit.i
		p.fltVal = float64(e.lit.i)
	case lFloat:
		p.intOp, p.intVal, p.intAlways, p.intNvr = floatToInt(e.op, e.lit.f)
		p.fltVal = e.lit.f
	}
	return p
}

func (p *pred) cost() int {
	switch {
	case p.lit.typ == lNil:
		return 1
	case p.re != nil && p.re.kind == mRegexp:
		return 8
	case p.re != nil:
		return 3
	}
	return 2
}

// column narrows sel by the predicate on an attribute column, nil if the
// batch has no such column.
func (p *pred) column(c *events.Column, sel []bool, s *scratch) {
	if c == nil {
		if !(p.lit.typ == lNil && p.op == OpEq) {
			clear(sel)
		}
		return
	}
	types := c.Types[:len(sel)]
	switch p.lit.typ {
	case lNil:
		want := p.op == OpNeq // != nil: has a value
		for i, t := range types {
			if sel[i] && (t != events.TypeNone) != want {
				sel[i] = false
			}
		}
	case lString:
		if c.Str == nil { // no row holds a string
			clear(sel)
			return
		}
		for i, t := range types {
			if t != events.TypeString {
				sel[i] = false
			}
		}
		p.strings(c.Str, sel, s)
	case lBool:
		want := p.lit.i != 0
		if p.op == OpNeq {
			want = !want
		}
		for i, t := range types {
			if sel[i] {
				sel[i] = t == events.TypeBool && (c.Num[i] != 0) == want
			}
		}
	default: // a number or a duration
		p.numbers(types, c.Num, sel)
	}
}

// numbers narrows sel by a numeric comparison of the int and float rows.
func (p *pred) numbers(types []events.Type, num []uint64, sel []bool) {
	for i, t := range types {
		if !sel[i] {
			continue
		}
		switch t {
		case events.TypeInt:
			sel[i] = p.cmpInt(int64(num[i]))
		case events.TypeFloat:
			sel[i] = cmpOrdered(p.op, math.Float64frombits(num[i]), p.fltVal)
		default:
			sel[i] = false
		}
	}
}

func (p *pred) cmpInt(v int64) bool {
	if p.intAlways || p.intNvr {
		return p.intAlways
	}
	return cmpOrdered(p.intOp, v, p.intVal)
}

// ints narrows sel by a numeric comparison of an integer column (the
// durations), one loop per operator so that the compiler keeps the
// comparison inside the loop branch-free of the operator.
func (p *pred) ints(vals []int64, sel []bool) {
	if p.intAlways || p.intNvr {
		if p.intNvr {
			clear(sel)
		}
		return
	}
	x := p.intVal
	vals = vals[:len(sel)]
	m := bytesOf(sel)
	switch p.intOp {
	case OpEq:
		for i, v := range vals {
			m[i] &= b2u(v == x)
		}
	case OpNeq:
		for i, v := range vals {
			m[i] &= b2u(v != x)
		}
	case OpLt:
		for i, v := range vals {
			m[i] &= b2u(v < x)
		}
	case OpLte:
		for i, v := range vals {
			m[i] &= b2u(v <= x)
		}
	case OpGt:
		for i, v := range vals {
			m[i] &= b2u(v > x)
		}
	case OpGte:
		for i, v := range vals {
			m[i] &= b2u(v >= x)
		}
	}
}

func cmpOrdered[T int64 | float64 | string](op Op, a, b T) bool {
	switch op {
	case OpEq:
		return a == b
	case OpNeq:
		return a != b
	case OpLt:
		return a < b
	case OpLte:
		return a <= b
	case OpGt:
		return a > b
	case OpGte:
		return a >= b
	}
	return false
}

// strings narrows sel by a string comparison of vals.
func (p *pred) strings(vals []string, sel []bool, s *scratch) {
	vals = vals[:len(sel)]
	x := p.lit.str
	switch p.op {
	case OpEq:
		for i, v := range vals {
			if sel[i] {
				sel[i] = v == x
			}
		}
	case OpNeq:
		for i, v := range vals {
			if sel[i] {
				sel[i] = v != x
			}
		}
	case OpRe, OpNre:
		want := p.op == OpRe
		var memo *regexMemo
		if p.memo >= 0 {
			memo = &s.memos[p.memo]
			memo.reset()
		}
		for i, v := range vals {
			if sel[i] {
				sel[i] = p.re.matchString(v, memo) == want
			}
		}
	default:
		for i, v := range vals {
			if sel[i] {
				sel[i] = cmpOrdered(p.op, v, x)
			}
		}
	}
}

// evAttr compares a scoped attribute.
type evAttr struct {
	key string
	p   pred
}

func (e *evAttr) narrow(b *events.Batch, sel []bool, s *scratch) {
	e.p.column(b.Attrs[e.key], sel, s)
}

func (e *evAttr) cost() int { return e.p.cost() + 1 }

// evAnyAttr compares an unscoped attribute, .x: the span's attribute x
// where the event has one, else the resource's (for .service.name, the
// service). This is Tempo's reading: a span attribute shadows a resource
// attribute of the same name, whatever either's value.
type evAnyAttr struct {
	spanKey, resKey string
	service         bool
	p               pred
	rest            int
}

func (e *evAnyAttr) narrow(b *events.Batch, sel []bool, s *scratch) {
	sc := b.Attrs[e.spanKey]
	if sc == nil {
		e.resource(b, sel, s)
		return
	}
	// Split the selection: rows with a span value are compared on it,
	// the others on the resource's value.
	rest := s.buf(e.rest, len(sel))
	anyRest := false
	for i, t := range sc.Types[:len(sel)] {
		r := sel[i] && t == events.TypeNone
		rest[i] = r
		if r {
			sel[i] = false
			anyRest = true
		}
	}
	e.p.column(sc, sel, s)
	if !anyRest {
		return
	}
	e.resource(b, rest, s)
	for i, r := range rest {
		if r {
			sel[i] = true
		}
	}
}

func (e *evAnyAttr) resource(b *events.Batch, sel []bool, s *scratch) {
	if !e.service {
		e.p.column(b.Attrs[e.resKey], sel, s)
		return
	}
	svc := needStrings(b, fService)
	switch {
	case e.p.lit.typ == lNil:
		narrowServiceExists(svc, sel, e.p.op == OpNeq)
	case e.p.lit.typ == lString:
		narrowServiceExists(svc, sel, true)
		e.p.strings(svc, sel, s)
	default: // the service is a string, never a number or a boolean
		clear(sel)
	}
}

func (e *evAnyAttr) cost() int { return e.p.cost() + 2 }

// evString compares a string intrinsic: name, statusMessage or the
// service. An event without a service (an empty one) has no
// resource.service.name: it matches no comparison but "= nil".
type evString struct {
	col fieldKind
	p   pred
}

func (e *evString) narrow(b *events.Batch, sel []bool, s *scratch) {
	vals := needStrings(b, e.col)
	if e.col == fService {
		narrowServiceExists(vals, sel, true)
	}
	e.p.strings(vals, sel, s)
}

func (e *evString) cost() int { return e.p.cost() }

// evServiceExists is resource.service.name != nil (want) or = nil.
type evServiceExists struct{ want bool }

func (e *evServiceExists) narrow(b *events.Batch, sel []bool, _ *scratch) {
	narrowServiceExists(needStrings(b, fService), sel, e.want)
}

func (e *evServiceExists) cost() int { return 1 }

func narrowServiceExists(svc []string, sel []bool, want bool) {
	for i, v := range svc[:len(sel)] {
		if sel[i] && (v != "") != want {
			sel[i] = false
		}
	}
}

// evDuration compares the duration.
type evDuration struct{ p pred }

func (e *evDuration) narrow(b *events.Batch, sel []bool, _ *scratch) {
	if b.Duration == nil && len(sel) > 0 {
		missing("duration")
	}
	e.p.ints(b.Duration, sel)
}

func (e *evDuration) cost() int { return 1 }

// evEnum compares the status or the kind with = or !=.
type evEnum struct {
	status bool
	eq     bool
	v      uint8
}

func (e *evEnum) narrow(b *events.Batch, sel []bool, _ *scratch) {
	if e.status {
		if b.Status == nil && len(sel) > 0 {
			missing("status")
		}
		narrowEnum(b.Status, events.Status(e.v), e.eq, sel)
		return
	}
	if b.Kind == nil && len(sel) > 0 {
		missing("kind")
	}
	narrowEnum(b.Kind, events.Kind(e.v), e.eq, sel)
}

func narrowEnum[T events.Status | events.Kind](vals []T, x T, eq bool, sel []bool) {
	vals = vals[:len(sel)]
	m := bytesOf(sel)
	if eq {
		for i, v := range vals {
			m[i] &= b2u(v == x)
		}
		return
	}
	for i, v := range vals {
		m[i] &= b2u(v != x)
	}
}

func (e *evEnum) cost() int { return 1 }

// evID compares a trace, span or parent span ID: with = and != as IDs
// (so "abc" and "0abc" are the same ID), with =~ and !~ as lowercase hex
// of full width (32 digits for a trace, 16 for a span).
type evID struct {
	col   fieldKind
	op    Op
	trace events.TraceID
	span  events.SpanID
	re    *matcher
}

func (e *evID) narrow(b *events.Batch, sel []bool, _ *scratch) {
	n := len(sel)
	if e.col == fTraceID {
		if b.TraceID == nil && n > 0 {
			missing("trace ID")
		}
		ids := b.TraceID[:n]
		if e.re == nil {
			m, eq := bytesOf(sel), e.op == OpEq
			for i := range ids {
				m[i] &= b2u((ids[i] == e.trace) == eq)
			}
			return
		}
		want := e.op == OpRe
		var buf [32]byte
		for i := range ids {
			if sel[i] {
				hex.Encode(buf[:], ids[i][:])
				sel[i] = e.re.matchBytes(buf[:]) == want
			}
		}
		return
	}
	ids := b.SpanID
	what := "span ID"
	if e.col == fParentID {
		ids, what = b.ParentID, "parent span ID"
	}
	if ids == nil && n > 0 {
		missing(what)
	}
	ids = ids[:n]
	if e.re == nil {
		m, eq := bytesOf(sel), e.op == OpEq
		for i := range ids {
			m[i] &= b2u((ids[i] == e.span) == eq)
		}
		return
	}
	want := e.op == OpRe
	var buf [16]byte
	for i := range ids {
		if sel[i] {
			hex.Encode(buf[:], ids[i][:])
			sel[i] = e.re.matchBytes(buf[:]) == want
		}
	}
}

func (e *evID) cost() int {
	if e.re != nil {
		return 6
	}
	return 1
}

// needStrings returns a string intrinsic's column of b.
func needStrings(b *events.Batch, f fieldKind) []string {
	var vals []string
	var what string
	switch f {
	case fName:
		vals, what = b.Name, "name"
	case fStatusMessage:
		vals, what = b.StatusMessage, "statusMessage"
	case fService:
		vals, what = b.Service, "service"
	}
	if vals == nil && b.Len > 0 {
		missing(what)
	}
	return vals
}

// missing reports a batch without a column the filter needs: a caller that
// did not read the filter's Columns, which no input can cause.
func missing(what string) {
	panic("traceql: the batch has no " + what + " column, which the filter needs (see Filter.Columns)")
}
