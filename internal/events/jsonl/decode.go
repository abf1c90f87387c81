package jsonl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/hearth-profiler/hearth/internal/events"
)

// DefaultMaxLineBytes bounds one line (or one object of an array), as
// Honeycomb bounds one event: 1 MiB.
const DefaultMaxLineBytes = 1 << 20

// maxDepth is how deep objects are flattened into attributes; deeper
// objects are kept whole, as their JSON text. It also bounds the work of
// a line of nested braces.
const maxDepth = 16

// unknownService is the service of an event that names none, as
// OpenTelemetry names a service it was not told.
const unknownService = "unknown_service"

// Options configure Decode.
type Options struct {
	// Limits bound each event and the events of a body; zero fields take
	// events.DefaultLimits.
	Limits events.Limits
	// MaxLineBytes bounds one line, or one object of an array; longer
	// ones are refused. Zero means DefaultMaxLineBytes.
	MaxLineBytes int
	// Now is the time of events without one.
	Now time.Time
}

func (o Options) withDefaults() Options {
	o.Limits = o.Limits.WithDefaults()
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	return o
}

// Refusal is one line (or object of an array) that was not stored.
type Refusal struct {
	// Line is the 1-based line of the body, for JSON lines.
	Line int `json:"line,omitempty"`
	// Index is the 0-based position in the array, for a JSON array; it
	// is present (and may be 0) only then.
	Index *int   `json:"index,omitempty"`
	Error string `json:"error"`
}

// where names the refused line or object in messages.
func (r Refusal) where() string {
	if r.Index != nil {
		return fmt.Sprintf("object %d", *r.Index)
	}
	return fmt.Sprintf("line %d", r.Line)
}

// Decoded is what a body decodes to.
type Decoded struct {
	Events  []events.Event
	Refused []Refusal
	// Cut is what the limits cut from Events.
	Cut events.Cut
}

// TooManyError refuses a body of more events than Limits.MaxPerRequest.
type TooManyError struct{ Events, Max int }

func (e *TooManyError) Error() string {
	return fmt.Sprintf("the body holds %d events or more, over the limit of %d per request (%s); send them in smaller batches",
		e.Events, e.Max, events.FlagMaxPerRequest)
}

// Decode reads a body of events: JSON lines (one object a line; blank
// lines are skipped) or one JSON array of objects. Lines that are not
// objects or whose fields do not map are refused one by one, the others
// decoded. The error is for the body as a whole: an array that is not
// valid JSON, or a *TooManyError.
func Decode(body []byte, opts Options) (Decoded, error) {
	opts = opts.withDefaults()
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		return decodeArray(trimmed, opts)
	}
	var d Decoded
	n := 0
	for line := 1; len(body) > 0; line++ {
		var text []byte
		text, body, _ = bytes.Cut(body, []byte{'\n'})
		text = bytes.TrimSpace(text)
		if len(text) == 0 {
			continue
		}
		if n++; n > opts.Limits.MaxPerRequest {
			return Decoded{}, &TooManyError{Events: n, Max: opts.Limits.MaxPerRequest}
		}
		d.add(text, Refusal{Line: line}, opts)
	}
	return d, nil
}

// decodeArray reads a JSON array of objects.
func decodeArray(body []byte, opts Options) (Decoded, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // the '['
		return Decoded{}, fmt.Errorf("JSON array: %w", err)
	}
	var d Decoded
	for i := 0; dec.More(); i++ {
		if i >= opts.Limits.MaxPerRequest {
			return Decoded{}, &TooManyError{Events: i + 1, Max: opts.Limits.MaxPerRequest}
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return Decoded{}, fmt.Errorf("JSON array, object %d: %w", i, err)
		}
		d.add(raw, Refusal{Index: &i}, opts)
	}
	if _, err := dec.Token(); err != nil { // the ']'
		return Decoded{}, fmt.Errorf("JSON array: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Decoded{}, errors.New("JSON array: more after its closing ]: send one array, or JSON lines")
	}
	return d, nil
}

// add decodes one object, text, at where.
func (d *Decoded) add(text []byte, where Refusal, opts Options) {
	if len(text) > opts.MaxLineBytes {
		where.Error = fmt.Sprintf("%d bytes, over the limit of %d", len(text), opts.MaxLineBytes)
		d.Refused = append(d.Refused, where)
		return
	}
	ev, err := decodeEvent(text, opts.Now)
	if err != nil {
		// A line may be anything: quote it as valid UTF-8, for JSON.
		where.Error = strings.ToValidUTF8(err.Error(), "\uFFFD")
		d.Refused = append(d.Refused, where)
		return
	}
	d.Cut.Add(opts.Limits.Enforce(&ev))
	d.Events = append(d.Events, ev)
}

// field is one flattened field of an object: its dotted key and its value,
// a string, json.Number, bool, nil, or rawText (an array, or an object
// too deep to flatten).
type field struct {
	key string
	val any
}

// rawText is JSON kept as its text.
type rawText string

// flatten appends the fields of the object text to dst, nested objects'
// keys joined to their parent's with dots.
func flatten(dst []field, text []byte, prefix string, depth int) ([]field, error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("not a JSON object: each line must be one object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name := tok.(string) // in an object, a key is a string
		if name == "" {
			return nil, fmt.Errorf("a field without a name")
		}
		key := prefix + name
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		switch raw[0] {
		case '{':
			if depth < maxDepth {
				if dst, err = flatten(dst, raw, key+".", depth+1); err != nil {
					return nil, err
				}
				continue
			}
			dst = append(dst, field{key, compact(raw)})
		case '[':
			dst = append(dst, field{key, compact(raw)})
		case '"':
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, err
			}
			dst = append(dst, field{key, s})
		case 't', 'f':
			dst = append(dst, field{key, raw[0] == 't'})
		case 'n':
			dst = append(dst, field{key, nil})
		default:
			dst = append(dst, field{key, json.Number(raw)})
		}
	}
	if _, err := dec.Token(); err != nil { // the '}'
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("more after the object: each line must be one object")
	}
	return dst, nil
}

func compact(raw []byte) rawText {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return rawText(raw)
	}
	return rawText(b.String())
}

// The fields that fill an event's fixed fields rather than attributes;
// the first of each list that a line has wins.
var (
	serviceKeys  = []string{"service.name", "service_name", "service", "resource.service.name"}
	traceIDKeys  = []string{"trace.trace_id", "trace_id"}
	spanIDKeys   = []string{"trace.span_id", "span_id"}
	parentIDKeys = []string{"trace.parent_id", "parent_id"}
)

// decodeEvent maps one object to an event; see the package doc for how.
func decodeEvent(text []byte, now time.Time) (events.Event, error) {
	fields, err := flatten(nil, text, "", 0)
	if err != nil {
		return events.Event{}, err
	}
	ev := events.Event{Start: now.UnixNano(), Service: unknownService}
	idx := make(map[string]int, len(fields)) // the last of each key
	for i, f := range fields {
		idx[f.key] = i
	}
	used := make(map[string]bool)
	take := func(keys ...string) (field, bool) {
		for _, k := range keys {
			if i, ok := idx[k]; ok && fields[i].val != nil {
				for _, k := range keys {
					used[k] = true
				}
				return fields[i], true
			}
		}
		return field{}, false
	}
	if f, ok := take("time"); ok {
		if ev.Start, err = parseTime(f.val); err != nil {
			return ev, fmt.Errorf("time: %w", err)
		}
	}
	if f, ok := take("name"); ok {
		ev.Name = textOf(f.val)
	}
	if f, ok := take("duration_ms"); ok {
		if ev.Duration, err = parseMillis(f.val); err != nil {
			return ev, fmt.Errorf("duration_ms: %w", err)
		}
		used["duration"] = true
	} else if f, ok := take("duration"); ok {
		if ev.Duration, err = parseDuration(f.val); err != nil {
			return ev, fmt.Errorf("duration: %w", err)
		}
	}
	if f, ok := take(serviceKeys...); ok {
		if ev.Service = textOf(f.val); ev.Service == "" {
			ev.Service = unknownService
		}
	}
	if f, ok := take(traceIDKeys...); ok {
		if ev.TraceID, err = events.ParseTraceID(textOf(f.val)); err != nil {
			return ev, fmt.Errorf("%s: %w", f.key, err)
		}
	}
	for _, id := range []struct {
		keys []string
		dst  *events.SpanID
	}{{spanIDKeys, &ev.SpanID}, {parentIDKeys, &ev.ParentID}} {
		if f, ok := take(id.keys...); ok {
			if *id.dst, err = events.ParseSpanID(textOf(f.val)); err != nil {
				return ev, fmt.Errorf("%s: %w", f.key, err)
			}
		}
	}
	// status and kind are fixed fields only when they name a status or a
	// kind: "status": 200 is an HTTP status, kept as an attribute.
	if i, ok := idx["status"]; ok {
		if s, ok := fields[i].val.(string); ok {
			if st, ok := events.ParseStatus(strings.ToLower(s)); ok {
				ev.Status = st
				used["status"] = true
			}
		}
	}
	if i, ok := idx["kind"]; ok {
		if s, ok := fields[i].val.(string); ok {
			if k, ok := events.ParseKind(strings.ToLower(s)); ok {
				ev.Kind = k
				used["kind"] = true
			}
		}
	}
	if i, ok := idx["error"]; ok {
		used["error"] = true
		switch v := fields[i].val.(type) {
		case nil:
		case bool:
			if v {
				ev.Status = events.StatusError
			}
		case string:
			if v != "" {
				ev.Status, ev.StatusMessage = events.StatusError, v
			}
		default:
			ev.Status, ev.StatusMessage = events.StatusError, textOf(v)
		}
	}
	for _, f := range fields {
		if used[f.key] || f.val == nil {
			continue
		}
		key := f.key
		switch {
		case strings.HasPrefix(key, events.ScopeResource), strings.HasPrefix(key, events.ScopeSpan):
		default:
			key = events.ScopeSpan + key
		}
		ev.Attrs = append(ev.Attrs, events.Attr{Key: key, Value: valueOf(f.val)})
	}
	return ev, nil
}

// valueOf is a field's value as an attribute: integers that fit an int64
// as ints, other numbers as floats, arrays and deep objects as their JSON
// text.
func valueOf(v any) events.Value {
	switch v := v.(type) {
	case string:
		return events.String(v)
	case bool:
		return events.Bool(v)
	case json.Number:
		if !strings.ContainsAny(string(v), ".eE") {
			if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
				return events.Int(i)
			}
		}
		f, _ := strconv.ParseFloat(string(v), 64) // ±Inf past float64's range
		return events.Float(f)
	case rawText:
		return events.String(string(v))
	}
	return events.String(fmt.Sprint(v))
}

// textOf is a field's value as text.
func textOf(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return string(v)
	case rawText:
		return string(v)
	}
	return fmt.Sprint(v)
}

// The magnitudes past which a Unix time number is read in a finer unit: a
// time in seconds below 1e11 (until the year 5138), in milliseconds below
// 1e14, in microseconds below 1e17, else in nanoseconds.
const (
	secondsBelow = 1e11
	millisBelow  = 1e14
	microsBelow  = 1e17
)

// parseTime reads a time: an RFC 3339 string, with any fraction of a
// second, or a Unix time number whose unit its magnitude says.
func parseTime(v any) (int64, error) {
	switch v := v.(type) {
	case string:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return 0, fmt.Errorf("%q is not an RFC 3339 time such as 2026-11-01T12:00:00.123Z", v)
		}
		if t.Unix() <= 0 || t.After(time.Unix(0, math.MaxInt64)) {
			return 0, fmt.Errorf("%q is outside the times Hearth keeps, 1970 to 2262", v)
		}
		return t.UnixNano(), nil
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || f <= 0 {
			return 0, fmt.Errorf("%s is not a Unix time: want a positive number of seconds, milliseconds, microseconds or nanoseconds", v)
		}
		var unit int64
		switch {
		case f < secondsBelow:
			unit = 1e9
		case f < millisBelow:
			unit = 1e6
		case f < microsBelow:
			unit = 1e3
		default:
			unit = 1
		}
		ns, ok := scale(string(v), unit)
		if !ok {
			return 0, fmt.Errorf("%s is past the year 2262, the last time Hearth keeps", v)
		}
		return ns, nil
	}
	return 0, fmt.Errorf("want an RFC 3339 string or a Unix time number, not %s", typeName(v))
}

// scale returns the decimal number s times unit, exactly when s has no
// exponent (a float64 would lose the nanoseconds of a time in seconds);
// ok is false when the product does not fit an int64.
func scale(s string, unit int64) (int64, bool) {
	if !strings.ContainsAny(s, "eE-") {
		whole, frac, _ := strings.Cut(s, ".")
		w, err := strconv.ParseInt(whole, 10, 64)
		if err != nil || w > math.MaxInt64/unit {
			return 0, false
		}
		n := w * unit
		// The fraction's digits, as many as unit has zeros.
		for u := unit / 10; u > 0 && len(frac) > 0; u /= 10 {
			n += int64(frac[0]-'0') * u
			frac = frac[1:]
		}
		return n, n >= 0
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f*float64(unit) >= math.MaxInt64 {
		return 0, false
	}
	return int64(f * float64(unit)), true
}

// parseMillis reads a duration in milliseconds, a number.
func parseMillis(v any) (int64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("want a number of milliseconds, not %s", typeName(v))
	}
	ms, err := strconv.ParseFloat(string(n), 64)
	if err != nil || ms < 0 || ms*1e6 >= math.MaxInt64 {
		return 0, fmt.Errorf("%s is not a duration in milliseconds: want a number from 0", n)
	}
	return int64(math.Round(ms * 1e6)), nil
}

// parseDuration reads a duration: a string as Go and TraceQL write them
// ("412ms", "1.5s", "1m30s"), or a number of milliseconds.
func parseDuration(v any) (int64, error) {
	s, ok := v.(string)
	if !ok {
		return parseMillis(v)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 412ms or 1.5s", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return int64(d), nil
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case rawText:
		return "an array or object"
	}
	return "null"
}
