package otlp

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"

	"github.com/hearth-profiler/hearth/internal/events"
	"github.com/hearth-profiler/hearth/internal/ingest"
)

// convertTraces turns the spans of td into events, one per span, held to
// lim (zero fields: the defaults). Spans that cannot be events (no trace
// or span ID, no start time, an end before the start) are refused, each
// with where it was and why.
func convertTraces(td ptrace.Traces, lim events.Limits) converted {
	lim = lim.WithDefaults()
	cv := converted{events: make([]events.Event, 0, td.SpanCount())}
	for i, rs := range td.ResourceSpans().All() {
		service, resAttrs := resourceOf(rs.Resource())
		res := attrsInOrder{wire: resAttrs, sorted: sortedAttrs(resAttrs)}
		for j, ss := range rs.ScopeSpans().All() {
			scope := scopeAttrs(nil, ss.Scope())
			for k, sp := range ss.Spans().All() {
				cv.total++
				ev, err := spanEvent(sp, res, scope, lim.MaxAttributes)
				if err != nil {
					cv.refused = append(cv.refused, refusal{
						where: fmt.Sprintf("resource_spans[%d].scope_spans[%d].spans[%d] %q", i, j, k, sp.Name()),
						why:   err.Error(),
					})
					continue
				}
				ev.Service = service
				if len(ev.Attrs) == 0 {
					ev.Attrs = nil // as storage gives it back
				}
				cv.cut.Add(lim.Enforce(&ev))
				cv.events = append(cv.events, ev)
			}
		}
	}
	return cv
}

// attrsInOrder are a resource's attributes as sent and sorted by key.
type attrsInOrder struct{ wire, sorted []events.Attr }

func sortedAttrs(attrs []events.Attr) []events.Attr {
	s := slices.Clone(attrs)
	slices.SortStableFunc(s, byKey)
	return s
}

func byKey(a, b events.Attr) int { return strings.Compare(a.Key, b.Key) }

// spanEvent converts one span of a resource with attributes res and a
// scope with attributes scope, which it copies. An event within
// maxAttrs attributes comes with them sorted, as storage keeps them:
// resource keys sort before span keys, so only the span's and scope's
// need sorting, a few instead of all. Past maxAttrs, they stay in the
// order sent, which says which ones the limit keeps.
func spanEvent(sp ptrace.Span, res attrsInOrder, scope []events.Attr, maxAttrs int) (events.Event, error) {
	var ev events.Event
	if sp.TraceID().IsEmpty() {
		return ev, fmt.Errorf("no trace_id: a span needs a 16-byte trace ID that is not all zeros")
	}
	if sp.SpanID().IsEmpty() {
		return ev, fmt.Errorf("no span_id: a span needs an 8-byte span ID that is not all zeros")
	}
	if sp.StartTimestamp() == 0 {
		return ev, fmt.Errorf("no start_time_unix_nano")
	}
	start, err := nanos(sp.StartTimestamp(), "start_time_unix_nano")
	if err != nil {
		return ev, err
	}
	end, err := nanos(sp.EndTimestamp(), "end_time_unix_nano")
	if err != nil {
		return ev, err
	}
	if end < start {
		return ev, fmt.Errorf("ends before it starts: end_time_unix_nano %d < start_time_unix_nano %d", end, start)
	}
	ev.Start, ev.Duration = start, end-start
	ev.TraceID = events.TraceID(sp.TraceID())
	ev.SpanID = events.SpanID(sp.SpanID())
	ev.ParentID = events.SpanID(sp.ParentSpanID())
	ev.Name = sp.Name()
	// Kinds and codes of a later OTLP are kept as unspecified and unset.
	if k := sp.Kind(); k >= 0 && k <= ptrace.SpanKind(events.KindConsumer) {
		ev.Kind = events.Kind(k)
	}
	if c := sp.Status().Code(); c >= 0 && c <= ptrace.StatusCode(events.StatusError) {
		ev.Status = events.Status(c)
	}
	ev.StatusMessage = sp.Status().Message()
	n := len(res.wire) + len(scope) + sp.Attributes().Len()
	ev.Attrs = make([]events.Attr, 0, n)
	if n <= maxAttrs {
		ev.Attrs = append(ev.Attrs, res.sorted...)
		ev.Attrs = append(ev.Attrs, scope...)
		ev.Attrs = appendAttrs(ev.Attrs, sp.Attributes(), events.ScopeSpan, "")
		slices.SortStableFunc(ev.Attrs[len(res.sorted):], byKey)
	} else {
		ev.Attrs = append(ev.Attrs, res.wire...)
		ev.Attrs = append(ev.Attrs, scope...)
		ev.Attrs = appendAttrs(ev.Attrs, sp.Attributes(), events.ScopeSpan, "")
	}
	for _, se := range sp.Events().All() {
		ev.SpanEvents = append(ev.SpanEvents, events.SpanEvent{
			// A span event's time past 2262 is kept as the span's start
			// rather than refusing the span for it.
			Time:  clampNanos(uint64(se.Timestamp()), start),
			Name:  se.Name(),
			Attrs: appendAttrs(nil, se.Attributes(), "", ""),
		})
	}
	for _, l := range sp.Links().All() {
		ev.Links = append(ev.Links, events.Link{
			TraceID: events.TraceID(l.TraceID()),
			SpanID:  events.SpanID(l.SpanID()),
			Attrs:   appendAttrs(nil, l.Attributes(), "", ""),
		})
	}
	return ev, nil
}

// clampNanos is ts as an int64, or instead when it does not fit.
func clampNanos(ts uint64, instead int64) int64 {
	if ts > 1<<63-1 {
		return instead
	}
	return int64(ts)
}

// NewTracesHandler returns a handler of OTLP/HTTP trace exports
// (ExportTraceServiceRequest, protobuf or JSON, gzipped or not) that
// stores each span as an event through app, admitting requests through
// adm (the in-flight budget and the tenants' ingest rates).
func NewTracesHandler(app events.Appender, adm ingest.Admitter, opts Options) http.Handler {
	exp := newEventsExporter("spans", app, adm, opts)
	sig := &httpSignal{what: exp.what, logger: exp.logger, body: exp.opts.bodyLimits(), adm: exp.adm,
		export: func(ctx context.Context, ten, ct string, body []byte) (exportResponse, error) {
			req := ptraceotlp.NewExportRequest()
			var err error
			if ct == contentJSON {
				err = req.UnmarshalJSON(body)
			} else {
				err = req.UnmarshalProto(body)
			}
			if err != nil {
				return nil, decodeError("ExportTraceServiceRequest", ct, err)
			}
			return exp.exportTraces(ctx, ten, req.Traces())
		}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serveExport(w, r, sig) })
}

func newEventsExporter(what string, app events.Appender, adm ingest.Admitter, opts Options) *eventsExporter {
	opts = opts.withDefaults()
	if adm == nil {
		adm = ingest.OpenAdmitter{}
	}
	return &eventsExporter{what: what, app: app, adm: adm, opts: opts, logger: opts.Logger}
}

// exportTraces converts and stores the spans of td.
func (e *eventsExporter) exportTraces(ctx context.Context, ten string, td ptrace.Traces) (ptraceotlp.ExportResponse, error) {
	resp := ptraceotlp.NewExportResponse()
	if n := td.SpanCount(); n > e.opts.Events.MaxPerRequest {
		return resp, e.tooMany(n)
	}
	rejected, msg, err := e.store(ctx, ten, convertTraces(td, e.opts.Events))
	if err != nil {
		return resp, err
	}
	if msg != "" {
		ps := resp.PartialSuccess()
		ps.SetRejectedSpans(rejected)
		ps.SetErrorMessage(msg)
	}
	return resp, nil
}

type tracesGRPC struct {
	// The embedded value supplies the unexported method that the
	// GRPCServer interface requires; Export below replaces its Export.
	*ptraceotlp.UnimplementedGRPCServer
	exp *eventsExporter
}

// Export stores the spans of one request, decoded by grpc-go.
func (g *tracesGRPC) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	var sizer ptrace.ProtoMarshaler
	ctx, ten, release, err := grpcAdmit(ctx, g.exp.adm, func() int64 { return int64(sizer.TracesSize(req.Traces())) })
	defer release()
	resp := ptraceotlp.NewExportResponse()
	if err == nil {
		resp, err = g.exp.exportTraces(ctx, ten, req.Traces())
	}
	return resp, grpcError(err)
}

// RegisterEvents serves OTLP traces and logs on mux (TracesPath and
// LogsPath), storing through app and admitting through adm; see
// NewTracesHandler and NewLogsHandler.
func RegisterEvents(mux interface{ Handle(string, http.Handler) }, app events.Appender, adm ingest.Admitter, opts Options) {
	mux.Handle(TracesPath, NewTracesHandler(app, adm, opts))
	mux.Handle(LogsPath, NewLogsHandler(app, adm, opts))
}

// RegisterEventsGRPC serves opentelemetry.proto.collector.trace.v1
// .TraceService/Export and ...logs.v1.LogsService/Export on s, storing
// through app and admitting through adm. The size of one request is
// bounded by s's grpc.MaxRecvMsgSize; the number of its spans or log
// records by opts.Events.
func RegisterEventsGRPC(s *grpc.Server, app events.Appender, adm ingest.Admitter, opts Options) {
	ptraceotlp.RegisterGRPCServer(s, &tracesGRPC{exp: newEventsExporter("spans", app, adm, opts)})
	plogotlp.RegisterGRPCServer(s, &logsGRPC{exp: newEventsExporter("log records", app, adm, opts)})
}
