// Package events holds Hearth's model of wide events: one row per unit of
// work a service did (a span of a trace, a log record, a line sent as
// JSON), with fixed fields every event has and typed attributes for every
// identifier the sender gave it.
//
// Decoders (OTLP traces and logs, JSON lines) turn what clients send into
// Events; storage logs them with AppendEncoded, keeps them in columns and
// hands them to queries as Batches.
package events

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
)

// Event is one unit of work.
type Event struct {
	// Start is when it began, in Unix nanoseconds.
	Start int64
	// Duration is how long it took in nanoseconds; 0 for a log record or
	// any event without one.
	Duration int64
	// TraceID, SpanID and ParentID place a span in its trace; they are
	// zero for events that are not spans.
	TraceID  TraceID
	SpanID   SpanID
	ParentID SpanID
	// Service is the resource's service.name. Queries read it as
	// resource.service.name; it is not repeated in Attrs.
	Service string
	// Name is the span's name (its operation), or the name of the event.
	Name string
	Kind Kind
	// Status and StatusMessage are the span's result.
	Status        Status
	StatusMessage string
	// Attrs are the resource and span attributes, each key with its scope
	// prefix ("resource.host.name", "span.http.route"). Keys are unique.
	Attrs []Attr
	// SpanEvents and Links are kept with the span and shown with it; they
	// are not filtered on.
	SpanEvents []SpanEvent
	Links      []Link
}

// SpanEvent is a point in time a span recorded (an exception, a retry).
type SpanEvent struct {
	Time  int64
	Name  string
	Attrs []Attr
}

// Link points from a span to another span, of its trace or another.
type Link struct {
	TraceID TraceID
	SpanID  SpanID
	Attrs   []Attr
}

// The scope prefixes of attribute keys.
const (
	ScopeResource = "resource."
	ScopeSpan     = "span."
)

// TraceID identifies a trace.
type TraceID [16]byte

// SpanID identifies a span in its trace.
type SpanID [8]byte

// IsZero says whether id is unset.
func (id TraceID) IsZero() bool { return id == TraceID{} }

// IsZero says whether id is unset.
func (id SpanID) IsZero() bool { return id == SpanID{} }

// String is the ID in lowercase hex, as OTLP JSON and Tempo write it.
func (id TraceID) String() string { return hex.EncodeToString(id[:]) }

// String is the ID in lowercase hex.
func (id SpanID) String() string { return hex.EncodeToString(id[:]) }

// ParseTraceID reads a trace ID written in hex. Shorter IDs (64-bit trace
// IDs of older tracers) are padded with zeros on the left, as Tempo does.
func ParseTraceID(s string) (TraceID, error) {
	var id TraceID
	if len(s) == 0 || len(s) > 32 {
		return id, fmt.Errorf("trace ID %q: want 1 to 32 hex digits", s)
	}
	b, err := hex.DecodeString(padEven(s))
	if err != nil {
		return id, fmt.Errorf("trace ID %q: not hex", s)
	}
	copy(id[16-len(b):], b)
	return id, nil
}

// ParseSpanID reads a span ID written in hex, padded like ParseTraceID.
func ParseSpanID(s string) (SpanID, error) {
	var id SpanID
	if len(s) == 0 || len(s) > 16 {
		return id, fmt.Errorf("span ID %q: want 1 to 16 hex digits", s)
	}
	b, err := hex.DecodeString(padEven(s))
	if err != nil {
		return id, fmt.Errorf("span ID %q: not hex", s)
	}
	copy(id[8-len(b):], b)
	return id, nil
}

// padEven pads s with a zero on the left to an even length, for
// hex.DecodeString; error messages quote s as it was sent.
func padEven(s string) string {
	if len(s)%2 == 1 {
		return "0" + s
	}
	return s
}

// Kind is a span's kind, numbered as OTLP numbers them.
type Kind uint8

// The span kinds.
const (
	KindUnspecified Kind = iota
	KindInternal
	KindServer
	KindClient
	KindProducer
	KindConsumer
	numKinds
)

var kindNames = [numKinds]string{"unspecified", "internal", "server", "client", "producer", "consumer"}

// String is the kind as TraceQL writes it.
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// ParseKind reads a kind as TraceQL writes it.
func ParseKind(s string) (Kind, bool) {
	for i, n := range kindNames {
		if n == s {
			return Kind(i), true
		}
	}
	return 0, false
}

// Status is a span's result, numbered as OTLP numbers it.
type Status uint8

// The statuses.
const (
	StatusUnset Status = iota
	StatusOK
	StatusError
	numStatuses
)

var statusNames = [numStatuses]string{"unset", "ok", "error"}

// String is the status as TraceQL writes it.
func (s Status) String() string {
	if s < numStatuses {
		return statusNames[s]
	}
	return "status(" + strconv.Itoa(int(s)) + ")"
}

// ParseStatus reads a status as TraceQL writes it.
func ParseStatus(s string) (Status, bool) {
	for i, n := range statusNames {
		if n == s {
			return Status(i), true
		}
	}
	return 0, false
}

// Type is the type of an attribute's value.
type Type uint8

// The value types. Arrays, maps and bytes from OTLP arrive as strings (JSON,
// and hex for bytes), which keeps every column one of these.
const (
	TypeNone Type = iota
	TypeString
	TypeInt
	TypeFloat
	TypeBool
	numTypes
)

var typeNames = [numTypes]string{"none", "string", "int", "float", "bool"}

func (t Type) String() string {
	if t < numTypes {
		return typeNames[t]
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// Value is an attribute's value: Str for strings, Num for the rest (an
// int64's bits, a float64's bits, 1 or 0 for a bool).
type Value struct {
	Type Type
	Str  string
	Num  uint64
}

// String makes a string Value.
func String(s string) Value { return Value{Type: TypeString, Str: s} }

// Int makes an int Value.
func Int(i int64) Value { return Value{Type: TypeInt, Num: uint64(i)} }

// Float makes a float Value.
func Float(f float64) Value { return Value{Type: TypeFloat, Num: math.Float64bits(f)} }

// Bool makes a bool Value.
func Bool(b bool) Value {
	v := Value{Type: TypeBool}
	if b {
		v.Num = 1
	}
	return v
}

// Int returns the value of an int Value.
func (v Value) Int() int64 { return int64(v.Num) }

// Float returns the value of a float Value.
func (v Value) Float() float64 { return math.Float64frombits(v.Num) }

// Bool returns the value of a bool Value.
func (v Value) Bool() bool { return v.Num != 0 }

// Text is the value as a user reads it.
func (v Value) Text() string {
	switch v.Type {
	case TypeString:
		return v.Str
	case TypeInt:
		return strconv.FormatInt(v.Int(), 10)
	case TypeFloat:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case TypeBool:
		return strconv.FormatBool(v.Bool())
	}
	return ""
}

// Attr is one attribute: a scoped key and its value.
type Attr struct {
	Key   string
	Value Value
}
