package traceql

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/hearth-profiler/hearth/internal/events"
)

// Match sets sel[i] to whether row i of b matches the filter, for every
// row; len(sel) must be b.Len. b must hold the columns Columns names (a
// batch without one of the fixed columns the filter reads panics, as a
// caller's mistake; a missing attribute column is an attribute no row
// has). Match allocates nothing per row; its working memory (selection
// buffers, regular expression memos) is pooled across calls.
func (f *Filter) Match(b *events.Batch, sel []bool) {
	if len(sel) != b.Len {
		panic(fmt.Sprintf("traceql: Match of a %d-row batch with a %d-row selection", b.Len, len(sel)))
	}
	fillTrue(sel)
	if f.eval == nil {
		return
	}
	s, _ := f.pool.Get().(*scratch)
	if s == nil {
		s = &scratch{bufs: make([][]bool, f.slots), memos: make([]regexMemo, f.memos)}
	}
	f.eval.narrow(b, sel, s)
	f.pool.Put(s)
}

// Columns says what storage must read for Match: the fixed columns and
// the attribute keys (sorted) the filter's conditions read. An unscoped
// .x reads both span.x and resource.x. The result is the caller's to keep.
func (f *Filter) Columns() events.Columns {
	c := f.cols
	c.Attrs = slices.Clone(c.Attrs)
	return c
}

func (f *Filter) columns() events.Columns {
	var c events.Columns
	for _, cond := range f.Conditions() {
		c.Intrinsics |= cond.Intrinsic
		c.Attrs = append(c.Attrs, cond.Keys...)
	}
	sort.Strings(c.Attrs)
	c.Attrs = slices.Compact(c.Attrs)
	return c
}

// Condition is one comparison of a filter, as Conditions lists them.
type Condition struct {
	// Field is the field compared, as the canonical text writes it:
	// "span.http.route", "resource.host.name", ".http.route", "name",
	// "duration", "status", "kind", "statusMessage",
	// "resource.service.name", "span:id", "span:parentID", "trace:id".
	Field string
	// Intrinsic is the fixed column the field reads (events.ColDuration
	// for duration, events.ColService for resource.service.name), 0 for
	// an attribute.
	Intrinsic events.Intrinsic
	// Keys are the attribute keys the field reads: ["span.http.route"]
	// for span.http.route; ["span.http.route", "resource.http.route"] for
	// .http.route (whose .service.name form also has Intrinsic
	// ColService); none for an intrinsic.
	Keys []string
	// Op is the operator, Value the literal as the canonical text writes
	// it ("\"GET\"", "500ms", "error", "nil" for an existence test).
	Op    Op
	Value string
}

// String is the comparison as the canonical text writes it.
func (c Condition) String() string { return c.Field + " " + c.Op.String() + " " + c.Value }

// Conditions lists the filter's comparisons in the order they are
// written, one per comparison (a field compared twice is listed twice),
// with the field each reads: what tells the events a filter selects apart
// from the rest. An intrinsic's "!= nil", which always holds, reads no
// column. { } has none.
func (f *Filter) Conditions() []Condition {
	var out []Condition
	var walk func(e expr)
	walk = func(e expr) {
		switch e := e.(type) {
		case *andExpr:
			for _, a := range e.args {
				walk(a)
			}
		case *orExpr:
			for _, a := range e.args {
				walk(a)
			}
		case *notExpr:
			walk(e.x)
		case *cmpExpr:
			out = append(out, condition(e))
		}
	}
	if f.root != nil {
		walk(f.root)
	}
	return out
}

func condition(e *cmpExpr) Condition {
	c := Condition{Field: e.field.String(), Op: e.op, Value: e.lit.String()}
	alwaysThere := e.lit.typ == lNil && !e.field.isAttr() && e.field.kind != fService
	switch e.field.kind {
	case fSpanAttr:
		c.Keys = []string{events.ScopeSpan + e.field.name}
	case fResourceAttr:
		c.Keys = []string{events.ScopeResource + e.field.name}
	case fAnyAttr:
		c.Keys = []string{events.ScopeSpan + e.field.name, events.ScopeResource + e.field.name}
		if e.field.name == "service.name" {
			c.Intrinsic = events.ColService
		}
	default:
		if !alwaysThere {
			c.Intrinsic = intrinsicColumn[e.field.kind]
		}
	}
	return c
}

var intrinsicColumn = map[fieldKind]events.Intrinsic{
	fName: events.ColName, fDuration: events.ColDuration, fStatus: events.ColStatus, fKind: events.ColKind,
	fStatusMessage: events.ColStatusMessage, fService: events.ColService, fSpanID: events.ColSpanID,
	fParentID: events.ColParentID, fTraceID: events.ColTraceID,
}

// Services returns the service names every matching event must have, for
// storage to skip the rest unread: ok when the filter requires
// resource.service.name to equal one of a known list, as in
// { resource.service.name = "a" && ... } or
// { resource.service.name = "a" || resource.service.name = "b" } or
// { resource.service.name =~ "a|b" }. names is sorted; it is empty with
// ok true when no event can match. An unscoped .service.name gives no
// list, since a span attribute service.name would take its place.
func (f *Filter) Services() (names []string, ok bool) {
	if f.root == nil {
		return nil, false
	}
	set, ok := services(f.root)
	if !ok {
		return nil, false
	}
	names = make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, true
}

// services returns a set that holds the service of every event e
// matches, if e bounds it.
func services(e expr) (map[string]bool, bool) {
	switch e := e.(type) {
	case *cmpExpr:
		if e.field.kind != fService {
			return nil, false
		}
		switch {
		case e.op == OpEq && e.lit.typ == lString:
			return map[string]bool{e.lit.str: true}, true
		case e.op == OpRe && e.re.kind == mLiteral:
			return map[string]bool{e.re.lit: true}, true
		case e.op == OpRe && e.re.kind == mSet:
			set := map[string]bool{}
			for s := range e.re.set {
				set[s] = true
			}
			return set, true
		}
	case *constExpr:
		if !e.v {
			return map[string]bool{}, true
		}
	case *andExpr:
		var set map[string]bool
		for _, a := range e.args {
			s, ok := services(a)
			if !ok {
				continue
			}
			if set == nil {
				set = s
				continue
			}
			for n := range set {
				if !s[n] {
					delete(set, n)
				}
			}
		}
		return set, set != nil
	case *orExpr:
		set := map[string]bool{}
		for _, a := range e.args {
			s, ok := services(a)
			if !ok {
				return nil, false
			}
			for n := range s {
				set[n] = true
			}
		}
		return set, true
	}
	return nil, false
}

// DurationRange returns bounds on the duration of every matching event,
// min <= duration <= max, for storage to skip what falls outside: ok when
// the filter bounds it at all, as { duration > 500ms && ... } does. min is
// math.MinInt64 and max math.MaxInt64 where unbounded; min > max when no
// event can match. Span filters have no condition on time itself, so time
// ranges stay with the query.
func (f *Filter) DurationRange() (minD, maxD time.Duration, ok bool) {
	if f.root == nil {
		return math.MinInt64, math.MaxInt64, false
	}
	r := durations(f.root)
	if r.empty {
		return 1, 0, true
	}
	return time.Duration(r.lo), time.Duration(r.hi), r.lo != math.MinInt64 || r.hi != math.MaxInt64
}

// MinDuration returns the least duration a matching event can have: ok when
// the filter bounds durations from below, as { duration > 500ms } does
// (the bound is then 500ms plus one nanosecond). It is DurationRange's min.
func (f *Filter) MinDuration() (time.Duration, bool) {
	minD, _, _ := f.DurationRange()
	return minD, minD != math.MinInt64
}

// interval is a closed range of durations, or the empty one.
type interval struct {
	lo, hi int64
	empty  bool
}

var fullInterval = interval{lo: math.MinInt64, hi: math.MaxInt64}

func durations(e expr) interval {
	switch e := e.(type) {
	case *cmpExpr:
		if e.field.kind != fDuration || e.lit.typ == lNil {
			return fullInterval
		}
		op, x := e.op, e.lit.i
		if e.lit.typ == lFloat {
			var always, never bool
			op, x, always, never = floatToInt(e.op, e.lit.f)
			switch {
			case never:
				return interval{empty: true}
			case always:
				return fullInterval
			}
		}
		switch op {
		case OpEq:
			return interval{lo: x, hi: x}
		case OpGt:
			if x == math.MaxInt64 {
				return interval{empty: true}
			}
			return interval{lo: x + 1, hi: math.MaxInt64}
		case OpGte:
			return interval{lo: x, hi: math.MaxInt64}
		case OpLt:
			if x == math.MinInt64 {
				return interval{empty: true}
			}
			return interval{lo: math.MinInt64, hi: x - 1}
		case OpLte:
			return interval{lo: math.MinInt64, hi: x}
		}
	case *constExpr:
		if !e.v {
			return interval{empty: true}
		}
	case *andExpr:
		r := fullInterval
		for _, a := range e.args {
			s := durations(a)
			if s.empty {
				return s
			}
			r.lo, r.hi = max(r.lo, s.lo), min(r.hi, s.hi)
			if r.lo > r.hi {
				return interval{empty: true}
			}
		}
		return r
	case *orExpr:
		r := interval{empty: true}
		for _, a := range e.args {
			s := durations(a)
			switch {
			case s.empty:
			case r.empty:
				r = s
			default:
				r.lo, r.hi = min(r.lo, s.lo), max(r.hi, s.hi)
			}
		}
		return r
	}
	return fullInterval
}
