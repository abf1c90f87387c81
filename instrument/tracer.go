package instrument

import (
	"context"
	"encoding/hex"
	"runtime/pprof"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// The pprof labels a span's code runs under. Hearth's ingest moves them
// off the series onto each sample, so they cost no series per request.
const (
	LabelSpanID          = "span_id"
	LabelLocalRootSpanID = "local_root_span_id"
	LabelTraceID         = "trace_id"
)

// ProfileIDAttribute is the attribute a local root span gets with its own
// span ID: Grafana's trace view looks for it to link a span to its
// profile.
const ProfileIDAttribute = "pyroscope.profile.id"

// TracerProvider returns tp with its tracers wrapped: every span they
// start that records runs, until it ends, under pprof labels with its
// span ID, its local root span ID (the first span of the request in this
// process) and its trace ID, so that any Go profiler (the runtime's,
// pyroscope-go, a scrape of /debug/pprof) ties each sample to the span
// that took it. Ending the span gives the goroutine back its parent's
// labels.
//
// Labels belong to a goroutine: a span must end on the goroutine that
// started it, as spans in Go usually do; a goroutine started inside the
// span inherits its labels from the context it is given, if it calls
// pprof.SetGoroutineLabels, or from its parent goroutine otherwise. End
// the span Start returned: trace.SpanFromContext gives the SDK's span,
// whose End leaves the labels as they are (putting the wrapper in the
// context would cost another allocation per span).
//
// Spans started from a context that carries fields of AddTraceFields get
// them as attributes.
func TracerProvider(tp trace.TracerProvider) trace.TracerProvider {
	return &tracerProvider{tp: tp}
}

type tracerProvider struct {
	embedded.TracerProvider
	tp trace.TracerProvider
}

func (p *tracerProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return &tracer{t: p.tp.Tracer(name, opts...)}
}

type tracer struct {
	embedded.Tracer
	t trace.Tracer
}

// Start starts a span with the wrapped tracer and labels the goroutine
// with it.
func (t *tracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	parent := trace.SpanContextFromContext(ctx)
	sctx, span := t.t.Start(ctx, name, opts...)
	if !span.IsRecording() {
		return sctx, span
	}
	if f, ok := ctx.Value(traceFieldsKey{}).(*traceFields); ok {
		span.SetAttributes(f.all()...)
	}
	sc := span.SpanContext()
	ls := &labeledSpan{Span: span, parent: ctx}
	// The IDs in hex live in the span's own allocation: labels are
	// strings, and the bytes are never written again.
	sid, tid := sc.SpanID(), sc.TraceID()
	hex.Encode(ls.ids[:16], sid[:])
	hex.Encode(ls.ids[16:], tid[:])
	spanID, traceID := unsafe.String(&ls.ids[0], 16), unsafe.String(&ls.ids[16], 32)
	root, ok := "", false
	if parent.IsValid() && !parent.IsRemote() && parent.TraceID() == tid {
		root, ok = pprof.Label(ctx, LabelLocalRootSpanID)
	}
	if !ok {
		root = spanID
		span.SetAttributes(attribute.String(ProfileIDAttribute, spanID))
	}
	sctx = pprof.WithLabels(sctx, pprof.Labels(LabelLocalRootSpanID, root, LabelSpanID, spanID, LabelTraceID, traceID))
	pprof.SetGoroutineLabels(sctx)
	return sctx, ls
}

// labeledSpan is a span that gives its goroutine back the labels of the
// context it started from when it ends.
type labeledSpan struct {
	trace.Span
	parent context.Context
	ids    [16 + 32]byte // span ID and trace ID in hex
}

func (s *labeledSpan) End(opts ...trace.SpanEndOption) {
	s.Span.End(opts...)
	pprof.SetGoroutineLabels(s.parent)
}
