package traceql

import (
	"encoding/hex"
	"math"
	"math/big"
	"regexp"

	"github.com/hearth-profiler/hearth/internal/events"
)

// This file holds a second, row-at-a-time reading of the rules in the
// package documentation, written for clarity rather than speed, against
// which the columnar evaluators are checked.

// batchOf builds a batch that holds every column of evs.
func batchOf(evs []events.Event) *events.Batch {
	n := len(evs)
	b := &events.Batch{
		Len:   n,
		Start: make([]int64, n), Duration: make([]int64, n),
		TraceID: make([]events.TraceID, n), SpanID: make([]events.SpanID, n), ParentID: make([]events.SpanID, n),
		Service: make([]string, n), Name: make([]string, n),
		Kind: make([]events.Kind, n), Status: make([]events.Status, n), StatusMessage: make([]string, n),
		Attrs: map[string]*events.Column{},
	}
	for i, e := range evs {
		b.Start[i], b.Duration[i] = e.Start, e.Duration
		b.TraceID[i], b.SpanID[i], b.ParentID[i] = e.TraceID, e.SpanID, e.ParentID
		b.Service[i], b.Name[i] = e.Service, e.Name
		b.Kind[i], b.Status[i], b.StatusMessage[i] = e.Kind, e.Status, e.StatusMessage
		for _, a := range e.Attrs {
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

func refAttr(ev events.Event, key string) (events.Value, bool) {
	for _, a := range ev.Attrs {
		if a.Key == key && a.Value.Type != events.TypeNone {
			return a.Value, true
		}
	}
	return events.Value{}, false
}

// refEval says whether ev matches e.
func refEval(e expr, ev events.Event) bool {
	switch e := e.(type) {
	case nil:
		return true
	case *andExpr:
		for _, a := range e.args {
			if !refEval(a, ev) {
				return false
			}
		}
		return true
	case *orExpr:
		for _, a := range e.args {
			if refEval(a, ev) {
				return true
			}
		}
		return false
	case *notExpr:
		return !refEval(e.x, ev)
	case *constExpr:
		return e.v
	case *cmpExpr:
		return refCmp(e, ev)
	}
	panic("unknown node")
}

func refCmp(c *cmpExpr, ev events.Event) bool {
	var v events.Value
	var ok bool
	switch c.field.kind {
	case fSpanAttr:
		v, ok = refAttr(ev, "span."+c.field.name)
	case fResourceAttr:
		v, ok = refAttr(ev, "resource."+c.field.name)
	case fAnyAttr:
		v, ok = refAttr(ev, "span."+c.field.name)
		if !ok {
			if c.field.name == "service.name" {
				v, ok = events.String(ev.Service), ev.Service != ""
			} else {
				v, ok = refAttr(ev, "resource."+c.field.name)
			}
		}
	case fService:
		v, ok = events.String(ev.Service), ev.Service != ""
	case fName:
		v, ok = events.String(ev.Name), true
	case fStatusMessage:
		v, ok = events.String(ev.StatusMessage), true
	case fDuration:
		v, ok = events.Int(ev.Duration), true
	case fStatus:
		return (ev.Status == c.lit.status) == (c.op == OpEq) || c.lit.typ == lNil
	case fKind:
		return (ev.Kind == c.lit.kind) == (c.op == OpEq) || c.lit.typ == lNil
	case fTraceID, fSpanID, fParentID:
		if c.lit.typ == lNil {
			return true
		}
		var raw []byte
		var eq bool
		switch c.field.kind {
		case fTraceID:
			raw, eq = ev.TraceID[:], ev.TraceID == c.traceID
		case fSpanID:
			raw, eq = ev.SpanID[:], ev.SpanID == c.spanID
		default:
			raw, eq = ev.ParentID[:], ev.ParentID == c.spanID
		}
		switch c.op {
		case OpEq:
			return eq
		case OpNeq:
			return !eq
		}
		return refRegex(c.lit.str, hex.EncodeToString(raw)) == (c.op == OpRe)
	}
	if c.lit.typ == lNil {
		return ok == (c.op == OpNeq)
	}
	if !ok {
		return false
	}
	switch c.lit.typ {
	case lString:
		if v.Type != events.TypeString {
			return false
		}
		switch c.op {
		case OpRe:
			return refRegex(c.lit.str, v.Str)
		case OpNre:
			return !refRegex(c.lit.str, v.Str)
		}
		return refOrder(c.op, compareStrings(v.Str, c.lit.str))
	case lBool:
		if v.Type != events.TypeBool {
			return false
		}
		return (v.Bool() == (c.lit.i != 0)) == (c.op == OpEq)
	}
	// Numbers, compared exactly as big floats; NaN is unordered and
	// unequal to everything.
	var x *big.Float
	switch v.Type {
	case events.TypeInt:
		x = new(big.Float).SetInt64(v.Int())
	case events.TypeFloat:
		if math.IsNaN(v.Float()) {
			return c.op == OpNeq
		}
		x = new(big.Float).SetFloat64(v.Float())
	default:
		return false
	}
	var y *big.Float
	if c.lit.typ == lFloat {
		if math.IsNaN(c.lit.f) {
			return c.op == OpNeq
		}
		y = new(big.Float).SetFloat64(c.lit.f)
	} else {
		y = new(big.Float).SetInt64(c.lit.i)
	}
	if v.Type == events.TypeFloat {
		// A float value compares with the literal as float64s.
		y = new(big.Float).SetFloat64(c.lit.asFloat())
	}
	return refOrder(c.op, x.Cmp(y))
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func refOrder(op Op, cmp int) bool {
	switch op {
	case OpEq:
		return cmp == 0
	case OpNeq:
		return cmp != 0
	case OpLt:
		return cmp < 0
	case OpLte:
		return cmp <= 0
	case OpGt:
		return cmp > 0
	case OpGte:
		return cmp >= 0
	}
	panic("not an ordering")
}

var refRegexps = map[string]*regexp.Regexp{}

func refRegex(pattern, s string) bool {
	re := refRegexps[pattern]
	if re == nil {
		re = regexp.MustCompile("^(?s:" + pattern + ")$")
		refRegexps[pattern] = re
	}
	return re.MatchString(s)
}
