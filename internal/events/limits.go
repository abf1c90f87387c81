package events

import (
	"context"
	"fmt"
	"unicode/utf8"
)

// Appender stores events for a tenant: storage's DB is one. The ways in
// (OTLP traces and logs, JSON lines) take it, so that they know nothing of
// storage but this. An error means that none of evs was stored; one that
// wraps storage.ErrUnavailable means that the log could not be written and
// the client may send them again later.
type Appender interface {
	AppendEvents(ctx context.Context, tenantID string, evs []Event) error
}

// Limits bound what one request of events may hold. Like Honeycomb and
// Tempo, Hearth cuts what is over a per-event limit rather than refuse the
// event: an event with its first attributes is worth more than none. What
// was cut is counted in the answer. A request of too many events is
// refused whole.
type Limits struct {
	// MaxAttributes is the most attributes one event keeps (resource and
	// span attributes together); each span event and link keeps as many
	// of its own. Attributes past it are dropped, in the order the sender
	// gave them: resource attributes first, then scope, then the event's
	// own, so that a span with runaway attributes loses its own extras
	// and keeps where it came from.
	MaxAttributes int
	// MaxValueBytes is the longest string value kept, in bytes; longer
	// values (attributes, names, status messages, log bodies) are cut to
	// it at a UTF-8 character boundary.
	MaxValueBytes int
	// MaxPerRequest is the most events one request may hold; a request of
	// more is refused whole (HTTP 413) before anything is converted.
	MaxPerRequest int
}

// Default limits. 128 attributes is OpenTelemetry SDKs' own default
// attribute count limit; 16 KiB keeps a stack trace or a long log line
// whole; 20,000 events is over twice what the Collector's batcher sends
// at once by default (8192).
const (
	DefaultMaxAttributes = 128
	DefaultMaxValueBytes = 16 << 10
	DefaultMaxPerRequest = 20_000
)

// The server flags that set Limits.
const (
	FlagMaxAttributes = "--events.max-attributes"
	FlagMaxValueBytes = "--events.max-value-bytes"
	FlagMaxPerRequest = "--events.max-per-request"
)

// DefaultLimits returns the default limits.
func DefaultLimits() Limits {
	return Limits{MaxAttributes: DefaultMaxAttributes, MaxValueBytes: DefaultMaxValueBytes, MaxPerRequest: DefaultMaxPerRequest}
}

// Validate refuses negative limits, which could only be mistakes; zero
// fields take the defaults.
func (l Limits) Validate() error {
	for _, f := range []struct {
		flag string
		v    int
	}{{FlagMaxAttributes, l.MaxAttributes}, {FlagMaxValueBytes, l.MaxValueBytes}, {FlagMaxPerRequest, l.MaxPerRequest}} {
		if f.v < 0 {
			return fmt.Errorf("%s is %d: want a positive number, or 0 for the default", f.flag, f.v)
		}
	}
	return nil
}

// WithDefaults returns l with its zero or negative fields set to the
// defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxAttributes <= 0 {
		l.MaxAttributes = DefaultMaxAttributes
	}
	if l.MaxValueBytes <= 0 {
		l.MaxValueBytes = DefaultMaxValueBytes
	}
	if l.MaxPerRequest <= 0 {
		l.MaxPerRequest = DefaultMaxPerRequest
	}
	return l
}

// Cut counts what Enforce removed from events.
type Cut struct {
	// Attributes is the attributes dropped over MaxAttributes.
	Attributes int
	// Values is the values (and names and messages) cut to
	// MaxValueBytes.
	Values int
}

// Add adds o to c.
func (c *Cut) Add(o Cut) {
	c.Attributes += o.Attributes
	c.Values += o.Values
}

// Any says whether anything was cut.
func (c Cut) Any() bool { return c.Attributes > 0 || c.Values > 0 }

// Enforce holds e to l's per-event limits and normalizes it (see
// Normalize). Its attribute lists must be in the order the sender gave
// them: a key given twice keeps its last value and counts once, and the
// attributes past MaxAttributes distinct keys are dropped. Zero fields of
// l take the defaults.
func (l Limits) Enforce(e *Event) Cut {
	l = l.WithDefaults()
	var c Cut
	e.Name = l.cutString(e.Name, &c)
	e.StatusMessage = l.cutString(e.StatusMessage, &c)
	e.Attrs = l.enforceAttrs(e.Attrs, &c)
	for i := range e.SpanEvents {
		se := &e.SpanEvents[i]
		se.Name = l.cutString(se.Name, &c)
		se.Attrs = l.enforceAttrs(se.Attrs, &c)
	}
	for i := range e.Links {
		e.Links[i].Attrs = l.enforceAttrs(e.Links[i].Attrs, &c)
	}
	e.Normalize()
	return c
}

// enforceAttrs keeps the first MaxAttributes distinct keys of attrs, each
// with its last value, values cut to MaxValueBytes.
func (l Limits) enforceAttrs(attrs []Attr, c *Cut) []Attr {
	if len(attrs) > l.MaxAttributes {
		seen := make(map[string]int, l.MaxAttributes)
		out := attrs[:0]
		for _, a := range attrs {
			if i, ok := seen[a.Key]; ok {
				if i >= 0 { // -1: a key dropped already
					out[i].Value = a.Value
				}
				continue
			}
			if len(out) >= l.MaxAttributes {
				// Counted once per key, however often it repeats.
				c.Attributes++
				seen[a.Key] = -1
				continue
			}
			seen[a.Key] = len(out)
			out = append(out, a)
		}
		attrs = out
	}
	for i := range attrs {
		if attrs[i].Value.Type == TypeString {
			attrs[i].Value.Str = l.cutString(attrs[i].Value.Str, c)
		}
	}
	return attrs
}

// cutString returns s cut to MaxValueBytes at a character boundary,
// counting the cut in c.
func (l Limits) cutString(s string, c *Cut) string {
	if len(s) <= l.MaxValueBytes {
		return s
	}
	c.Values++
	n := l.MaxValueBytes
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
