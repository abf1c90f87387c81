package traceql

import (
	"math"
	"strconv"
	"strings"

	"github.com/hearth-profiler/hearth/internal/events"
)

// Op is a comparison operator.
type Op uint8

// The comparison operators.
const (
	OpEq  Op = iota // =
	OpNeq           // !=
	OpLt            // <
	OpLte           // <=
	OpGt            // >
	OpGte           // >=
	OpRe            // =~
	OpNre           // !~
)

var opNames = [...]string{"=", "!=", "<", "<=", ">", ">=", "=~", "!~"}

// String is the operator as a filter writes it.
func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// flip is the operator that means the same with its operands swapped.
func (o Op) flip() Op {
	switch o {
	case OpLt:
		return OpGt
	case OpLte:
		return OpGte
	case OpGt:
		return OpLt
	case OpGte:
		return OpLte
	}
	return o
}

func (o Op) regex() bool { return o == OpRe || o == OpNre }

// fieldKind says what a field reads.
type fieldKind uint8

const (
	fSpanAttr      fieldKind = iota // span.x: the attribute "span.x"
	fResourceAttr                   // resource.x: the attribute "resource.x"
	fAnyAttr                        // .x: span.x if the event has it, else resource.x
	fName                           // name, span:name
	fDuration                       // duration, span:duration
	fStatus                         // status, span:status
	fKind                           // kind, span:kind
	fStatusMessage                  // statusMessage, span:statusMessage
	fService                        // resource.service.name: the Service column
	fSpanID                         // span:id
	fParentID                       // span:parentID
	fTraceID                        // trace:id
)

// field is what a comparison reads from each event.
type field struct {
	kind fieldKind
	name string // an attribute's name, without its scope
}

// String is the field as the canonical text writes it: intrinsics by their
// short names where TraceQL has one.
func (f field) String() string {
	switch f.kind {
	case fSpanAttr:
		return "span." + quoteAttrName(f.name, false)
	case fResourceAttr:
		return "resource." + quoteAttrName(f.name, false)
	case fAnyAttr:
		return "." + quoteAttrName(f.name, true)
	case fName:
		return "name"
	case fDuration:
		return "duration"
	case fStatus:
		return "status"
	case fKind:
		return "kind"
	case fStatusMessage:
		return "statusMessage"
	case fService:
		return "resource.service.name"
	case fSpanID:
		return "span:id"
	case fParentID:
		return "span:parentID"
	case fTraceID:
		return "trace:id"
	}
	return "field(" + strconv.Itoa(int(f.kind)) + ")"
}

// isAttr says whether the field is an attribute, whose type varies by row.
func (f field) isAttr() bool {
	return f.kind == fSpanAttr || f.kind == fResourceAttr || f.kind == fAnyAttr
}

// isID says whether the field is a trace or span ID.
func (f field) isID() bool { return f.kind == fSpanID || f.kind == fParentID || f.kind == fTraceID }

// litType is the type of a literal.
type litType uint8

const (
	lString litType = iota
	lInt
	lFloat
	lDuration
	lBool
	lStatus
	lKind
	lNil
)

// literal is a value written in a filter.
type literal struct {
	typ    litType
	str    string  // lString
	i      int64   // lInt; lDuration in nanoseconds; lBool as 0 or 1
	f      float64 // lFloat
	status events.Status
	kind   events.Kind
}

// String writes the literal so that the lexer reads the same value back.
func (l literal) String() string {
	switch l.typ {
	case lString:
		return strconv.Quote(l.str)
	case lInt:
		return strconv.FormatInt(l.i, 10)
	case lFloat:
		s := strconv.FormatFloat(l.f, 'g', -1, 64)
		// Keep a float a float when read back: "2" would be an integer.
		if !strings.ContainsAny(s, ".e") {
			s += ".0"
		}
		return s
	case lDuration:
		return formatDuration(l.i)
	case lBool:
		return strconv.FormatBool(l.i != 0)
	case lStatus:
		return l.status.String()
	case lKind:
		return l.kind.String()
	case lNil:
		return "nil"
	}
	return "literal(" + strconv.Itoa(int(l.typ)) + ")"
}

// numeric says whether the literal is a number (a duration counts as its
// nanoseconds).
func (l literal) numeric() bool { return l.typ == lInt || l.typ == lFloat || l.typ == lDuration }

// describe names the literal's type for error messages.
func (l literal) describe() string {
	switch l.typ {
	case lString:
		return "a string"
	case lInt:
		return "an integer"
	case lFloat:
		return "a float"
	case lDuration:
		return "a duration"
	case lBool:
		return "a boolean"
	case lStatus:
		return "the status " + l.status.String()
	case lKind:
		return "the kind " + l.kind.String()
	case lNil:
		return "nil"
	}
	return "a literal"
}

// asFloat is a numeric literal's value as a float64.
func (l literal) asFloat() float64 {
	if l.typ == lFloat {
		return l.f
	}
	return float64(l.i)
}

// expr is a node of a parsed filter.
type expr interface {
	// write appends the node's canonical text.
	write(b *strings.Builder)
}

// andExpr and orExpr are lists of two or more conditions; nested lists
// of the same operator are flattened while parsing.
type andExpr struct{ args []expr }
type orExpr struct{ args []expr }

// notExpr is !( x ).
type notExpr struct{ x expr }

// constExpr is true or false written as a condition.
type constExpr struct{ v bool }

// cmpExpr is one comparison of a field with a literal.
type cmpExpr struct {
	field field
	op    Op
	lit   literal
	// Parsed forms of the literal, for the fields that need them.
	re      *matcher       // =~ and !~
	traceID events.TraceID // trace:id = or !=
	spanID  events.SpanID  // span:id, span:parentID = or !=
}

func writeList(b *strings.Builder, args []expr, sep string) {
	for i, a := range args {
		if i > 0 {
			b.WriteString(sep)
		}
		switch a.(type) {
		case *andExpr, *orExpr:
			// A list inside a list of the other operator: TraceQL gives
			// && and || the same precedence, so the parentheses matter.
			b.WriteByte('(')
			a.write(b)
			b.WriteByte(')')
		default:
			a.write(b)
		}
	}
}

func (e *andExpr) write(b *strings.Builder) { writeList(b, e.args, " && ") }
func (e *orExpr) write(b *strings.Builder)  { writeList(b, e.args, " || ") }

func (e *notExpr) write(b *strings.Builder) {
	b.WriteString("!(")
	e.x.write(b)
	b.WriteByte(')')
}

func (e *constExpr) write(b *strings.Builder) { b.WriteString(strconv.FormatBool(e.v)) }

func (e *cmpExpr) write(b *strings.Builder) {
	b.WriteString(e.field.String())
	b.WriteByte(' ')
	b.WriteString(e.op.String())
	b.WriteByte(' ')
	b.WriteString(e.lit.String())
}

// floatToInt turns "v op f", v an integer, into an integer comparison
// "v op2 n" that holds for exactly the same v, or says the comparison
// always (or never) holds. Comparing exactly avoids float64's rounding of
// integers past 2^53.
func floatToInt(op Op, f float64) (op2 Op, n int64, always, never bool) {
	switch {
	case math.IsNaN(f):
		// NaN equals nothing and orders with nothing.
		return op, 0, op == OpNeq, op != OpNeq
	case f >= 1<<63:
		return op, 0, op == OpNeq || op == OpLt || op == OpLte, !(op == OpNeq || op == OpLt || op == OpLte)
	case f < -(1 << 63):
		return op, 0, op == OpNeq || op == OpGt || op == OpGte, !(op == OpNeq || op == OpGt || op == OpGte)
	}
	fl := math.Floor(f)
	if fl == f {
		return op, int64(f), false, false
	}
	n = int64(fl)
	switch op {
	case OpEq:
		return op, 0, false, true
	case OpNeq:
		return op, 0, true, false
	case OpGt, OpGte: // v > 1.5 ⇔ v > 1
		return OpGt, n, false, false
	default: // v < 1.5 ⇔ v <= 1
		return OpLte, n, false, false
	}
}
