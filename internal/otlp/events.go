package otlp

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/hearth-profiler/hearth/internal/events"
	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/selfevents"
	"github.com/hearth-profiler/hearth/internal/storage"
)

// Paths of OTLP/HTTP exports of events.
const (
	TracesPath = "/v1/traces"
	LogsPath   = "/v1/logs"
)

// EventPaths are the URL paths the events handlers serve.
var EventPaths = []string{TracesPath, LogsPath}

// unknownService is the service of a resource without service.name, as
// OpenTelemetry SDKs name a service they were not told.
const unknownService = "unknown_service"

// The attributes that carry an instrumentation scope's name and version on
// a span, as OpenTelemetry's conventions name them for formats without
// scopes.
const (
	scopeNameKey    = events.ScopeSpan + "otel.scope.name"
	scopeVersionKey = events.ScopeSpan + "otel.scope.version"
)

// refusal is one span or log record not stored, and why.
type refusal struct {
	where string
	why   string
}

// converted is what a request of events converts to.
type converted struct {
	events  []events.Event
	refused []refusal
	// total counts the items of the request, refused ones too.
	total int
	cut   events.Cut
}

// value is an OTLP attribute value as an events.Value: strings, integers,
// doubles and booleans as themselves, bytes as lowercase hex, arrays and
// maps as their JSON text. An empty value has none (ok false).
func value(v pcommon.Value) (events.Value, bool) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return events.String(v.Str()), true
	case pcommon.ValueTypeInt:
		return events.Int(v.Int()), true
	case pcommon.ValueTypeDouble:
		return events.Float(v.Double()), true
	case pcommon.ValueTypeBool:
		return events.Bool(v.Bool()), true
	case pcommon.ValueTypeBytes:
		return events.String(hex.EncodeToString(v.Bytes().AsRaw())), true
	case pcommon.ValueTypeMap, pcommon.ValueTypeSlice:
		return events.String(v.AsString()), true
	}
	return events.Value{}, false
}

// text is v as a string, as value writes it.
func text(v pcommon.Value) string {
	if v.Type() == pcommon.ValueTypeBytes {
		return hex.EncodeToString(v.Bytes().AsRaw())
	}
	return v.AsString()
}

// appendAttrs appends the attributes of m to dst, each key after prefix,
// skipping the key skip ("" skips none).
func appendAttrs(dst []events.Attr, m pcommon.Map, prefix, skip string) []events.Attr {
	for k, v := range m.All() {
		if k == skip {
			continue
		}
		if ev, ok := value(v); ok {
			dst = append(dst, events.Attr{Key: prefix + k, Value: ev})
		}
	}
	return dst
}

// resourceOf reads a resource: its service, and its other attributes as
// resource.<key>.
func resourceOf(res pcommon.Resource) (service string, attrs []events.Attr) {
	service = unknownService
	if v, ok := res.Attributes().Get("service.name"); ok {
		if s := text(v); s != "" {
			service = s
		}
	}
	return service, appendAttrs(nil, res.Attributes(), events.ScopeResource, "service.name")
}

// scopeAttrs appends what a span or log record keeps of its
// instrumentation scope: its name and version as span.otel.scope.name and
// span.otel.scope.version, and its attributes as span attributes.
func scopeAttrs(dst []events.Attr, sc pcommon.InstrumentationScope) []events.Attr {
	if n := sc.Name(); n != "" {
		dst = append(dst, events.Attr{Key: scopeNameKey, Value: events.String(n)})
	}
	if v := sc.Version(); v != "" {
		dst = append(dst, events.Attr{Key: scopeVersionKey, Value: events.String(v)})
	}
	return appendAttrs(dst, sc.Attributes(), events.ScopeSpan, "")
}

// nanos reads an OTLP timestamp, refusing those past what an int64 holds
// (after the year 2262).
func nanos(ts pcommon.Timestamp, what string) (int64, error) {
	if uint64(ts) > math.MaxInt64 {
		return 0, fmt.Errorf("%s %d is past the year 2262", what, uint64(ts))
	}
	return int64(ts), nil
}

// eventsExporter stores the events of OTLP requests of one signal; the
// HTTP and gRPC handlers share it.
type eventsExporter struct {
	// what names the signal's items: "spans" or "log records".
	what   string
	app    events.Appender
	adm    ingest.Admitter
	opts   Options
	logger *slog.Logger
}

// tooMany refuses a request of n items, over the limit.
func (e *eventsExporter) tooMany(n int) error {
	return ingest.TooLarge("the request holds %d %s, over the limit of %d per request (%s); send them in smaller batches",
		n, e.what, e.opts.Events.MaxPerRequest, events.FlagMaxPerRequest)
}

// store stores the events of cv, and returns the partial_success of the
// answer: how many were refused and a message naming the first few
// refusals, and what the limits cut. A *storageError means that nothing
// was stored.
func (e *eventsExporter) store(ctx context.Context, tenant string, cv converted) (rejected int64, msg string, err error) {
	if len(cv.events) > 0 {
		if err := e.app.AppendEvents(ctx, tenant, cv.events); err != nil {
			e.opts.Tally.Failed(len(cv.events))
			if errors.Is(err, storage.ErrUnavailable) {
				e.logger.Debug("OTLP events not stored", "tenant", tenant, "signal", e.what, "events", len(cv.events), "err", err)
				return 0, "", &storageError{what: e.what, err: err}
			}
			return 0, "", fmt.Errorf("store %d %s: %w", len(cv.events), e.what, err)
		}
	}
	e.opts.Tally.Stored(len(cv.events), cv.cut)
	e.opts.Tally.Refused(len(cv.refused))
	selfevents.Add(ctx, events.Attr{Key: "hearth.events.stored", Value: events.Int(int64(len(cv.events)))},
		events.Attr{Key: "hearth.events.refused", Value: events.Int(int64(len(cv.refused)))})
	var parts []string
	if n := len(cv.refused); n > 0 {
		var reasons []string
		for _, r := range cv.refused[:min(n, maxReasons)] {
			reasons = append(reasons, r.where+": "+r.why)
		}
		m := fmt.Sprintf("%d of %d %s refused: %s", n, cv.total, e.what, strings.Join(reasons, "; "))
		if n > maxReasons {
			m += fmt.Sprintf("; and %d more", n-maxReasons)
		}
		parts = append(parts, m)
		e.logger.Debug("OTLP events refused", "tenant", tenant, "signal", e.what, "refused", n, "first", reasons[0])
	}
	if s := cutMessage(cv.cut, e.opts.Events); s != "" {
		parts = append(parts, s)
	}
	// A reason may quote the input; the message must be UTF-8 to encode.
	return int64(len(cv.refused)), strings.ToValidUTF8(strings.Join(parts, "; "), "\uFFFD"), nil
}

// cutMessage says what the limits cut, "" when nothing: OTLP's
// partial_success carries it as a warning, with nothing rejected.
func cutMessage(c events.Cut, lim events.Limits) string {
	var s []string
	if c.Attributes > 0 {
		s = append(s, fmt.Sprintf("%d attributes dropped over the limit of %d per event (%s)", c.Attributes, lim.MaxAttributes, events.FlagMaxAttributes))
	}
	if c.Values > 0 {
		s = append(s, fmt.Sprintf("%d values cut to the limit of %d bytes (%s)", c.Values, lim.MaxValueBytes, events.FlagMaxValueBytes))
	}
	return strings.Join(s, "; ")
}

// decodeError refuses a body that does not decode as message (of content
// type ct).
func decodeError(message, ct string, err error) error {
	return httpErrorf(http.StatusBadRequest, "decode OTLP %s (%s): %v", message, ct, err)
}
