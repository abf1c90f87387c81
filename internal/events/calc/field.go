package calc

import (
	"strconv"
	"strings"

	"github.com/hearth-profiler/hearth/internal/events"
)

// source says where a field's value comes from in a Batch.
type source uint8

const (
	srcAttr source = iota // an attribute column, by scoped key
	srcDuration
	srcName
	srcService
	srcStatus
	srcKind
	srcStatusMessage
	srcTraceID
	srcSpanID
)

// intrinsics names the fields every event has, as a query writes them.
// TraceQL's newer scoped spellings (span:name) are accepted beside the
// short ones; each maps to the short name, which is how results print it.
var intrinsics = map[string]source{
	"duration":              srcDuration,
	"span:duration":         srcDuration,
	"name":                  srcName,
	"span:name":             srcName,
	"status":                srcStatus,
	"span:status":           srcStatus,
	"kind":                  srcKind,
	"span:kind":             srcKind,
	"statusMessage":         srcStatusMessage,
	"span:statusMessage":    srcStatusMessage,
	"service":               srcService,
	"resource.service.name": srcService,
	"trace:id":              srcTraceID,
	"span:id":               srcSpanID,
}

var canonicalIntrinsic = map[source]string{
	srcDuration:      "duration",
	srcName:          "name",
	srcService:       "resource.service.name",
	srcStatus:        "status",
	srcKind:          "kind",
	srcStatusMessage: "statusMessage",
	srcTraceID:       "trace:id",
	srcSpanID:        "span:id",
}

var intrinsicColumn = map[source]events.Intrinsic{
	srcDuration:      events.ColDuration,
	srcName:          events.ColName,
	srcService:       events.ColService,
	srcStatus:        events.ColStatus,
	srcKind:          events.ColKind,
	srcStatusMessage: events.ColStatusMessage,
	srcTraceID:       events.ColTraceID,
	srcSpanID:        events.ColSpanID,
}

// Field is what a query groups by or computes over: an intrinsic
// (duration, name, status, kind, statusMessage, resource.service.name,
// trace:id, span:id) or an attribute. An attribute is written with its
// scope, span.http.route or resource.host.name; unscoped, .http.route
// reads the span's attribute where the event has one and the resource's
// otherwise, as TraceQL's unscoped attributes match either. A name with
// characters outside a bare name's is quoted: span."my key".
type Field struct {
	src source
	// keys are the attribute keys to read, in order of preference: one
	// for a scoped attribute, two for an unscoped one.
	keys []string
	// service is set on an unscoped .service.name, whose resource side
	// is the Service column rather than an attribute.
	service bool
	name    string
}

// String is the field as results name it: scoped attributes as written,
// intrinsics by their short names (resource.service.name for service).
func (f Field) String() string { return f.name }

// IsDuration says whether the field is the event's duration, whose
// values are nanoseconds.
func (f Field) IsDuration() bool { return f.src == srcDuration }

// CPUKey is the column of the cpu field: the CPU time, in nanoseconds,
// of the profile samples an event's span took in the functions a query
// runs over (hearth events --running). Events have no such attribute:
// the query adds the column to the batches it reads. Stored keys are
// scoped (span., resource.), so none collides with it.
const CPUKey = "hearth.cpu"

// IsCPU says whether the field is cpu, whose values are nanoseconds.
func (f Field) IsCPU() bool { return f.src == srcAttr && len(f.keys) == 1 && f.keys[0] == CPUKey }

// numeric says whether numeric calculations make sense on the field:
// the duration, or an attribute (whose non-numeric rows they skip).
func (f Field) numeric() bool { return f.src == srcDuration || f.src == srcAttr }

// Columns is what reading the field needs.
func (f Field) Columns() events.Columns {
	if f.src != srcAttr {
		return events.Columns{Intrinsics: intrinsicColumn[f.src]}
	}
	c := events.Columns{Attrs: append([]string(nil), f.keys...)}
	if f.service {
		c.Intrinsics = events.ColService
	}
	return c
}

// ParseField reads one field reference.
func ParseField(s string) (Field, error) {
	sc := &scanner{src: s}
	sc.space()
	f, err := sc.field()
	if err != nil {
		return Field{}, err
	}
	sc.space()
	if !sc.done() {
		return Field{}, sc.errorf(sc.pos, "unexpected %s after field %s", sc.what(), f)
	}
	return f, nil
}

// ParseFields reads a comma-separated list of fields, as --by takes
// them. An empty list is no grouping; a field named twice counts once.
func ParseFields(s string) ([]Field, error) {
	sc := &scanner{src: s}
	var out []Field
	seen := map[string]bool{}
	sc.space()
	if sc.done() {
		return nil, nil
	}
	for {
		f, err := sc.field()
		if err != nil {
			return nil, err
		}
		if !seen[f.name] {
			seen[f.name] = true
			out = append(out, f)
		}
		sc.space()
		if sc.done() {
			return out, nil
		}
		if sc.peek() != ',' {
			return nil, sc.errorf(sc.pos, "expected , between fields, found %s", sc.what())
		}
		sc.pos++
		sc.space()
	}
}

// nameByte says whether c may appear in a bare (unquoted) name.
func nameByte(c byte) bool {
	if c <= ' ' || c == 0x7f {
		return false
	}
	return !strings.ContainsRune(`,()"<>=!&|`, rune(c))
}

// bareName says whether s can be written unquoted after a scope.
func bareName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !nameByte(s[i]) {
			return false
		}
	}
	return true
}

func quoteName(s string) string {
	if bareName(s) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// field reads a field at the scanner's position.
func (sc *scanner) field() (Field, error) {
	start := sc.pos
	for !sc.done() && nameByte(sc.peek()) {
		sc.pos++
	}
	word := sc.src[start:sc.pos]
	if strings.HasSuffix(word, ".") && sc.peek() == '"' {
		if word != events.ScopeSpan && word != events.ScopeResource && word != "." {
			return Field{}, sc.errorf(start, "%q: a quoted name follows a scope: span.\"...\", resource.\"...\" or .\"...\"", word)
		}
		q, err := sc.quoted()
		if err != nil {
			return Field{}, err
		}
		if q == "" {
			return Field{}, sc.errorf(start, "empty attribute name")
		}
		return attrField(word, q), nil
	}
	if word == "" {
		if sc.done() {
			return Field{}, sc.errorf(start, "expected a field, found end of input")
		}
		return Field{}, sc.errorf(start, "expected a field, found %s", sc.what())
	}
	if src, ok := intrinsics[word]; ok {
		return Field{src: src, name: canonicalIntrinsic[src]}, nil
	}
	if word == "cpu" {
		return Field{src: srcAttr, keys: []string{CPUKey}, name: "cpu"}, nil
	}
	for _, scope := range []string{events.ScopeSpan, events.ScopeResource, "."} {
		if rest, ok := strings.CutPrefix(word, scope); ok {
			if rest == "" {
				return Field{}, sc.errorf(start, "%q: attribute name missing after the scope", word)
			}
			return attrField(scope, rest), nil
		}
	}
	return Field{}, sc.errorf(start, "unknown field %q: attributes need a scope (span.%s, resource.%s or .%s); intrinsics are duration, name, status, kind, statusMessage, service, trace:id, span:id, and cpu with --running", word, word, word, word)
}

// attrField makes the field of an attribute written scope + name, where
// scope is "span.", "resource." or "." (unscoped).
func attrField(scope, name string) Field {
	switch scope {
	case ".":
		f := Field{src: srcAttr, keys: []string{events.ScopeSpan + name, events.ScopeResource + name}, name: "." + quoteName(name)}
		if name == "service.name" {
			f.keys = f.keys[:1]
			f.service = true
		}
		return f
	case events.ScopeResource:
		if name == "service.name" {
			return Field{src: srcService, name: canonicalIntrinsic[srcService]}
		}
	}
	return Field{src: srcAttr, keys: []string{scope + name}, name: scope + quoteName(name)}
}

// scanner reads the small languages of this package: field lists,
// calculation lists, an order and having conditions. Positions in its
// errors are 1-based columns of the one-line input.
type scanner struct {
	src string
	pos int
}

func (sc *scanner) done() bool { return sc.pos >= len(sc.src) }

func (sc *scanner) peek() byte {
	if sc.done() {
		return 0
	}
	return sc.src[sc.pos]
}

func (sc *scanner) space() {
	for !sc.done() && (sc.src[sc.pos] == ' ' || sc.src[sc.pos] == '\t' || sc.src[sc.pos] == '\n' || sc.src[sc.pos] == '\r') {
		sc.pos++
	}
}

// what describes what is at the scanner's position, for an error.
func (sc *scanner) what() string {
	if sc.done() {
		return "end of input"
	}
	end := sc.pos + 1
	for end < len(sc.src) && nameByte(sc.src[end]) && nameByte(sc.src[sc.pos]) {
		end++
	}
	return strconv.Quote(sc.src[sc.pos:end])
}

func (sc *scanner) errorf(pos int, format string, args ...any) error {
	return syntaxError(pos+1, format, args...)
}

// quoted reads a double-quoted name, with \" and \\ as its escapes.
func (sc *scanner) quoted() (string, error) {
	start := sc.pos
	sc.pos++ // the opening quote
	var b strings.Builder
	for !sc.done() {
		c := sc.src[sc.pos]
		switch c {
		case '"':
			sc.pos++
			return b.String(), nil
		case '\\':
			if sc.pos+1 < len(sc.src) && (sc.src[sc.pos+1] == '"' || sc.src[sc.pos+1] == '\\') {
				b.WriteByte(sc.src[sc.pos+1])
				sc.pos += 2
				continue
			}
			return "", sc.errorf(sc.pos, `unknown escape in a quoted name: only \" and \\ are escapes`)
		}
		b.WriteByte(c)
		sc.pos++
	}
	return "", sc.errorf(start, "quoted name not closed")
}
