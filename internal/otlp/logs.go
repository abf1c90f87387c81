package otlp

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/hearth-profiler/hearth/internal/events"
	"github.com/hearth-profiler/hearth/internal/ingest"
)

// logName is the name of a log record's event when the record has no
// event_name: one name for every plain log line, so that { name = "log" }
// selects them.
const logName = "log"

// The attributes of a log record's own fields.
const (
	bodyKey           = events.ScopeSpan + "body"
	severityKey       = events.ScopeSpan + "severity"
	severityNumberKey = events.ScopeSpan + "severity_number"
)

// convertLogs turns the log records of ld into events, one per record, held
// to lim (zero fields: the defaults). A record without a time takes its
// observed time, or now when it has neither. Records whose time is past
// what Hearth keeps (the year 2262) are refused, each with where it was
// and why.
func convertLogs(ld plog.Logs, lim events.Limits, now time.Time) converted {
	lim = lim.WithDefaults()
	cv := converted{events: make([]events.Event, 0, ld.LogRecordCount())}
	for i, rl := range ld.ResourceLogs().All() {
		service, resAttrs := resourceOf(rl.Resource())
		for j, sl := range rl.ScopeLogs().All() {
			base := scopeAttrs(resAttrs[:len(resAttrs):len(resAttrs)], sl.Scope())
			for k, lr := range sl.LogRecords().All() {
				cv.total++
				ev, err := logEvent(lr, base, now)
				if err != nil {
					cv.refused = append(cv.refused, refusal{
						where: fmt.Sprintf("resource_logs[%d].scope_logs[%d].log_records[%d]", i, j, k),
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

// logEvent converts one log record; base are its resource's and scope's
// attributes, which it copies.
func logEvent(lr plog.LogRecord, base []events.Attr, now time.Time) (events.Event, error) {
	var ev events.Event
	ts, what := lr.Timestamp(), "time_unix_nano"
	if ts == 0 {
		ts, what = lr.ObservedTimestamp(), "observed_time_unix_nano"
	}
	if ts == 0 {
		ev.Start = now.UnixNano()
	} else {
		start, err := nanos(ts, what)
		if err != nil {
			return ev, err
		}
		ev.Start = start
	}
	// A log record is written inside a span, and is not one: the span is
	// its parent, which places it in its trace's tree under that span.
	ev.TraceID = events.TraceID(lr.TraceID())
	ev.ParentID = events.SpanID(lr.SpanID())
	ev.Name = lr.EventName()
	if ev.Name == "" {
		ev.Name = logName
	}
	ev.Attrs = make([]events.Attr, len(base), len(base)+3+lr.Attributes().Len())
	copy(ev.Attrs, base)
	if body := lr.Body(); body.Type() != pcommon.ValueTypeEmpty {
		ev.Attrs = append(ev.Attrs, events.Attr{Key: bodyKey, Value: events.String(text(body))})
	}
	if s := lr.SeverityText(); s != "" {
		ev.Attrs = append(ev.Attrs, events.Attr{Key: severityKey, Value: events.String(s)})
	}
	if n := lr.SeverityNumber(); n != plog.SeverityNumberUnspecified {
		ev.Attrs = append(ev.Attrs, events.Attr{Key: severityNumberKey, Value: events.Int(int64(n))})
	}
	ev.Attrs = appendAttrs(ev.Attrs, lr.Attributes(), events.ScopeSpan, "")
	return ev, nil
}

// NewLogsHandler returns a handler of OTLP/HTTP log exports
// (ExportLogsServiceRequest, protobuf or JSON, gzipped or not) that stores
// each log record as an event through app, admitting requests through adm
// (the in-flight budget and the tenants' ingest rates).
func NewLogsHandler(app events.Appender, adm ingest.Admitter, opts Options) http.Handler {
	exp := newEventsExporter("log records", app, adm, opts)
	sig := &httpSignal{what: exp.what, logger: exp.logger, body: exp.opts.bodyLimits(), adm: exp.adm,
		export: func(ctx context.Context, ten, ct string, body []byte) (exportResponse, error) {
			req := plogotlp.NewExportRequest()
			var err error
			if ct == contentJSON {
				err = req.UnmarshalJSON(body)
			} else {
				err = req.UnmarshalProto(body)
			}
			if err != nil {
				return nil, decodeError("ExportLogsServiceRequest", ct, err)
			}
			return exp.exportLogs(ctx, ten, req.Logs())
		}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serveExport(w, r, sig) })
}

// exportLogs converts and stores the log records of ld.
func (e *eventsExporter) exportLogs(ctx context.Context, ten string, ld plog.Logs) (plogotlp.ExportResponse, error) {
	resp := plogotlp.NewExportResponse()
	if n := ld.LogRecordCount(); n > e.opts.Events.MaxPerRequest {
		return resp, e.tooMany(n)
	}
	rejected, msg, err := e.store(ctx, ten, convertLogs(ld, e.opts.Events, time.Now()))
	if err != nil {
		return resp, err
	}
	if msg != "" {
		ps := resp.PartialSuccess()
		ps.SetRejectedLogRecords(rejected)
		ps.SetErrorMessage(msg)
	}
	return resp, nil
}

type logsGRPC struct {
	// The embedded value supplies the unexported method that the
	// GRPCServer interface requires; Export below replaces its Export.
	*plogotlp.UnimplementedGRPCServer
	exp *eventsExporter
}

// Export stores the log records of one request, decoded by grpc-go.
func (g *logsGRPC) Export(ctx context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	var sizer plog.ProtoMarshaler
	ctx, ten, release, err := grpcAdmit(ctx, g.exp.adm, func() int64 { return int64(sizer.LogsSize(req.Logs())) })
	defer release()
	resp := plogotlp.NewExportResponse()
	if err == nil {
		resp, err = g.exp.exportLogs(ctx, ten, req.Logs())
	}
	return resp, grpcError(err)
}
