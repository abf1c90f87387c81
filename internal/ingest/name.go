package ingest

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hearth-profiler/hearth/internal/labels"
)

// MaxNameLabels is the most labels ParseName accepts in one name.
const MaxNameLabels = 64

// SessionIDLabel is the label the pyroscope-go SDK adds to every name: 16 hex
// digits drawn when a profiling session starts. The SDK seeds its generator
// with a hash of the host name, so the first session of every process on one
// host gets the same ID, and each new host or pod a new one.
const SessionIDLabel = "__session_id__"

// Name is the parsed "name" query parameter of a Pyroscope ingest request.
type Name struct {
	// App is the application name, without the kind suffix when there is
	// one. It is never empty.
	App string
	// Kind is the profile kind that older clients append to the application
	// name ("my.app.cpu"): the part after the last dot when it is one of
	// cpu, itimer, wall, alloc_objects, alloc_space, inuse_objects,
	// inuse_space, goroutine, goroutines, mutex_count, mutex_duration,
	// block_count, block_duration, lock_count, lock_duration, live,
	// exceptions, alloc_in_new_tlab_objects, alloc_in_new_tlab_bytes,
	// alloc_outside_tlab_objects or alloc_outside_tlab_bytes. Otherwise Kind
	// is "" and App is the whole name. Pyroscope reads the kind only for the
	// stack formats (folded, lines, trie, tree); a pprof upload names its own
	// sample types.
	Kind string
	// SessionID is the value of the __session_id__ label, or "". It names
	// the SDK's session, not anything users select on, and would split
	// series at every new session and pod: it is kept out of Labels.
	SessionID string
	// Labels are the labels in braces, as valid Prometheus label names, plus
	// service_name (set to App when the client sent none).
	Labels labels.Labels
}

// NameError reports a malformed name query parameter.
type NameError struct {
	Name   string // the parameter as given
	Offset int    // byte offset into Name of the problem
	Msg    string
	Err    error // ErrLimitExceeded for more than MaxNameLabels labels, else nil
}

// Error formats the error with the name, cut to a readable length.
func (e *NameError) Error() string {
	n := e.Name
	if len(n) > 120 {
		n = n[:120] + "..."
	}
	return fmt.Sprintf("name %q: offset %d: %s", n, e.Offset, e.Msg)
}

// Unwrap returns ErrLimitExceeded for too many labels, else nil.
func (e *NameError) Unwrap() error { return e.Err }

// knownKinds are the suffixes Pyroscope's ingest adapter reads as the kind of
// a non-pprof upload, plus "goroutine", the name of the pyroscope-go SDK's
// goroutine profile type.
var knownKinds = map[string]bool{
	"cpu": true, "itimer": true, "wall": true,
	"alloc_objects": true, "alloc_space": true, "inuse_objects": true, "inuse_space": true,
	"goroutine": true, "goroutines": true,
	"mutex_count": true, "mutex_duration": true,
	"block_count": true, "block_duration": true,
	"lock_count": true, "lock_duration": true,
	"live": true, "exceptions": true,
	"alloc_in_new_tlab_objects": true, "alloc_in_new_tlab_bytes": true,
	"alloc_outside_tlab_objects": true, "alloc_outside_tlab_bytes": true,
}

// ParseName parses the "name" query parameter of a Pyroscope ingest request:
// an application name, optionally followed by labels in braces,
//
//	my.app.cpu{env=staging,region=eu-west-1}
//
// in the syntax of the pyroscope-go SDK (its internal/labelset package),
// which builds and sends names such as
//
//	my-app{__session_id__=77e425ea48b3919f,env=prod,otel.scope.name=com.grafana.pyroscope/go,process.runtime.version=go1.26.8}
//
// The application name may hold ASCII letters, digits and "_.-/". A label
// name may hold ASCII letters, digits, "_" and "."; its value is everything
// up to the next "," or "}" (so it may hold "{", "=" and spaces, but never ","
// or "}": the SDK does not escape values). Spaces around the application
// name, label names and values are ignored; a comma may follow the last
// label; empty values are dropped, and when a label repeats, the last value
// wins.
//
// Label names are made valid Prometheus names: dots, as in OpenTelemetry's
// "service.name", become underscores, and a name that starts with a digit gets
// the prefix "key_", as the OpenTelemetry-to-Prometheus translation does.
// Names that then start with "__" are reserved for Hearth and are dropped: the
// SDK's __session_id__ goes to Name.SessionID instead (a new one with every
// session and pod would split the series), and __name__ is ignored (the SDK
// itself already turns "x{__name__=y}" into the application name y).
//
// Errors are of type *NameError and give the byte offset of the problem: an
// empty application name, a character that is not allowed, a label without
// "=", an unclosed "{", text after the "}", invalid UTF-8 in a value, or more
// than MaxNameLabels labels (that error matches ErrLimitExceeded).
func ParseName(s string) (Name, error) {
	fail := func(off int, format string, args ...any) (Name, error) {
		return Name{}, &NameError{Name: s, Offset: off, Msg: fmt.Sprintf(format, args...)}
	}
	open := strings.IndexByte(s, '{')
	appEnd := open
	if open < 0 {
		appEnd = len(s)
	}
	app, appOff := trimSpaceAt(s, 0, appEnd)
	if app == "" {
		return fail(appOff, "empty application name")
	}
	for i := 0; i < len(app); i++ {
		if !isAppNameByte(app[i]) {
			r, _ := utf8.DecodeRuneInString(app[i:])
			return fail(appOff+i, "character %q is not allowed in an application name (want letters, digits and _.-/)", r)
		}
	}
	n := Name{App: app}
	if dot := strings.LastIndexByte(app, '.'); dot > 0 && knownKinds[app[dot+1:]] {
		n.App, n.Kind = app[:dot], app[dot+1:]
	}

	var b labels.Builder
	if open >= 0 {
		count := 0
		i := open + 1
		for {
			// The label name runs up to "=", or is missing before "," or "}".
			j := i + strings.IndexAny(s[i:], "=,}")
			if j < i {
				return fail(open, "unclosed '{': want '}' after the labels")
			}
			key, keyOff := trimSpaceAt(s, i, j)
			if s[j] != '=' {
				if key == "" && s[j] == '}' {
					i = j + 1 // "{}", or a comma after the last label
					break
				}
				if key == "" {
					return fail(j, "empty label: want name=value")
				}
				return fail(keyOff, "label %q has no value: want name=value", key)
			}
			if key == "" {
				return fail(j, "empty label name: want name=value")
			}
			for k := 0; k < len(key); k++ {
				if !isLabelNameByte(key[k]) {
					r, _ := utf8.DecodeRuneInString(key[k:])
					return fail(keyOff+k, "character %q is not allowed in a label name (want letters, digits, _ and .)", r)
				}
			}
			// The value runs up to "," or "}".
			e := j + 1 + strings.IndexAny(s[j+1:], ",}")
			if e <= j {
				return fail(open, "unclosed '{': want '}' after the labels")
			}
			value, valueOff := trimSpaceAt(s, j+1, e)
			if !utf8.ValidString(value) {
				return fail(valueOff, "value of label %q is not valid UTF-8", key)
			}
			if count++; count > MaxNameLabels {
				return Name{}, &NameError{Name: s, Offset: keyOff, Msg: fmt.Sprintf("more than %d labels", MaxNameLabels), Err: ErrLimitExceeded}
			}
			name := promLabelName(key)
			switch {
			case name == SessionIDLabel:
				n.SessionID = value
			case strings.HasPrefix(name, "__"):
				// Reserved for Hearth: drop.
			default:
				b.Set(name, value)
			}
			i = e + 1
			if s[e] == '}' {
				break
			}
		}
		if rest, off := trimSpaceAt(s, i, len(s)); rest != "" {
			return fail(off, "unexpected text after '}'")
		}
	}
	if b.Get(labels.ServiceName) == "" {
		b.Set(labels.ServiceName, n.App)
	}
	n.Labels = b.Labels()
	return n, nil
}

// promLabelName turns a label name the SDK accepts ([a-zA-Z0-9_.]+) into a
// valid Prometheus label name.
func promLabelName(k string) string {
	k = strings.ReplaceAll(k, ".", "_")
	if k[0] >= '0' && k[0] <= '9' {
		k = "key_" + k
	}
	return k
}

// trimSpaceAt returns s[start:end] without leading and trailing white space,
// and the offset in s at which the result starts.
func trimSpaceAt(s string, start, end int) (string, int) {
	sub := s[start:end]
	left := strings.TrimLeftFunc(sub, unicode.IsSpace)
	return strings.TrimRightFunc(left, unicode.IsSpace), start + len(sub) - len(left)
}

// isLabelNameByte reports whether the pyroscope-go SDK allows c in a label
// name.
func isLabelNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.'
}

// isAppNameByte reports whether the pyroscope-go SDK allows c in an
// application name.
func isAppNameByte(c byte) bool {
	return isLabelNameByte(c) || c == '-' || c == '/'
}
