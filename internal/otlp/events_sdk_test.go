package otlp

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/hearth-profiler/hearth/internal/events"
)

// These tests send with OpenTelemetry's Go SDK and its OTLP exporters, as
// an instrumented service does, to the events handlers with a recorder
// behind them.

const sdkTenant = "team-sdk"

func sdkResource(t *testing.T) *resource.Resource {
	t.Helper()
	res, err := resource.New(context.Background(), resource.WithAttributes(
		attribute.String("service.name", "shop"),
		attribute.String("deployment.environment.name", "prod"),
		attribute.Int("shard", 3),
	))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// sdkSpans is what a request to a shop makes: a server span, and a client
// span under it that fails, records the error and links to another trace.
type sdkSpans struct {
	root, child trace.SpanContext
	linked      trace.SpanContext
	start       time.Time
}

func emitSpans(t *testing.T, exp sdktrace.SpanExporter) sdkSpans {
	t.Helper()
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(sdkResource(t)), sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(sdktrace.AlwaysSample()))
	tr := tp.Tracer("hearth.test/shop", trace.WithInstrumentationVersion("1.2.3"))
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	ctx, root := tr.Start(context.Background(), "POST /checkout", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start),
		trace.WithAttributes(attribute.String("user.id", "u-7"), attribute.Int("cart.items", 3), attribute.Float64("cart.total", 41.5),
			attribute.Bool("user.beta", true), attribute.StringSlice("flags", []string{"a", "b"})))
	_, other := tr.Start(context.Background(), "refresh prices")
	other.End()
	_, child := tr.Start(ctx, "charge card", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start.Add(5*time.Millisecond)),
		trace.WithLinks(trace.Link{SpanContext: other.SpanContext(), Attributes: []attribute.KeyValue{attribute.String("why", "prices")}}))
	child.RecordError(errors.New("card declined"), trace.WithTimestamp(start.Add(30*time.Millisecond)))
	child.SetStatus(codes.Error, "card declined")
	child.End(trace.WithTimestamp(start.Add(35 * time.Millisecond)))
	root.End(trace.WithTimestamp(start.Add(412 * time.Millisecond)))
	// Shutdown flushes every span before it returns.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("export: %v", err)
	}
	return sdkSpans{root: root.SpanContext(), child: child.SpanContext(), linked: other.SpanContext(), start: start}
}

// checkSDKSpans checks what the spans of emitSpans became.
func checkSDKSpans(t *testing.T, got []events.Event, s sdkSpans) {
	t.Helper()
	byName := map[string]events.Event{}
	for _, e := range got {
		byName[e.Name] = e
	}
	if len(got) != 3 || len(byName) != 3 {
		t.Fatalf("stored %d events (%d names), want 3: %+v", len(got), len(byName), got)
	}
	resAttrs := []events.Attr{
		{Key: "resource.deployment.environment.name", Value: events.String("prod")},
		{Key: "resource.shard", Value: events.Int(3)},
	}
	scope := []events.Attr{
		{Key: "span.otel.scope.name", Value: events.String("hearth.test/shop")},
		{Key: "span.otel.scope.version", Value: events.String("1.2.3")},
	}
	// The SDK adds telemetry.sdk.* resource attributes of its own.
	ignoreSDK := cmp.FilterValues(func(a, b []events.Attr) bool { return true }, cmp.Transformer("notSDK", func(in []events.Attr) []events.Attr {
		var out []events.Attr
		for _, a := range in {
			if len(a.Key) < len("resource.telemetry.sdk") || a.Key[:len("resource.telemetry.sdk")] != "resource.telemetry.sdk" {
				out = append(out, a)
			}
		}
		return out
	}))
	start := s.start.UnixNano()
	root := events.Event{
		Start: start, Duration: int64(412 * time.Millisecond),
		TraceID: events.TraceID(s.root.TraceID()), SpanID: events.SpanID(s.root.SpanID()),
		Service: "shop", Name: "POST /checkout", Kind: events.KindServer,
		Attrs: append(append(append([]events.Attr(nil), resAttrs...),
			events.Attr{Key: "span.cart.items", Value: events.Int(3)},
			events.Attr{Key: "span.cart.total", Value: events.Float(41.5)},
			events.Attr{Key: "span.flags", Value: events.String(`["a","b"]`)}),
			append(scope,
				events.Attr{Key: "span.user.beta", Value: events.Bool(true)},
				events.Attr{Key: "span.user.id", Value: events.String("u-7")})...),
	}
	if d := cmp.Diff(root, byName["POST /checkout"], ignoreSDK); d != "" {
		t.Errorf("root span (-want +got):\n%s", d)
	}
	child := byName["charge card"]
	if child.TraceID != root.TraceID || child.ParentID != root.SpanID || child.SpanID != events.SpanID(s.child.SpanID()) {
		t.Errorf("child span not under the root: trace %s parent %s span %s", child.TraceID, child.ParentID, child.SpanID)
	}
	if child.Start != start+int64(5*time.Millisecond) || child.Duration != int64(30*time.Millisecond) {
		t.Errorf("child span start %d duration %d", child.Start-start, child.Duration)
	}
	if child.Kind != events.KindClient || child.Status != events.StatusError || child.StatusMessage != "card declined" {
		t.Errorf("child span kind %s status %s %q", child.Kind, child.Status, child.StatusMessage)
	}
	if len(child.SpanEvents) != 1 || child.SpanEvents[0].Name != "exception" || child.SpanEvents[0].Time != start+int64(30*time.Millisecond) {
		t.Fatalf("child span events %+v, want the recorded error", child.SpanEvents)
	}
	var msg string
	for _, a := range child.SpanEvents[0].Attrs {
		if a.Key == "exception.message" {
			msg = a.Value.Str
		}
	}
	if msg != "card declined" {
		t.Errorf("exception.message %q in %+v", msg, child.SpanEvents[0].Attrs)
	}
	wantLinks := []events.Link{{TraceID: events.TraceID(s.linked.TraceID()), SpanID: events.SpanID(s.linked.SpanID()),
		Attrs: []events.Attr{{Key: "why", Value: events.String("prices")}}}}
	if d := cmp.Diff(wantLinks, child.Links); d != "" {
		t.Errorf("child's links (-want +got):\n%s", d)
	}
	if other := byName["refresh prices"]; other.TraceID == root.TraceID || !other.ParentID.IsZero() {
		t.Errorf("the linked span is in the root's trace or has a parent: %+v", other)
	}
}

func TestSDKTracesHTTP(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []otlptracehttp.Option
	}{
		{"protobuf gzip", []otlptracehttp.Option{otlptracehttp.WithCompression(otlptracehttp.GzipCompression)}},
		{"protobuf", []otlptracehttp.Option{otlptracehttp.WithCompression(otlptracehttp.NoCompression)}},
		{"json", []otlptracehttp.Option{otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newEventsServer(t, nil, Options{})
			exp, err := otlptracehttp.New(context.Background(), append([]otlptracehttp.Option{
				otlptracehttp.WithEndpointURL(s.url + TracesPath),
				otlptracehttp.WithHeaders(map[string]string{"X-Scope-OrgID": sdkTenant}),
				otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}),
			}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			spans := emitSpans(t, exp)
			checkSDKSpans(t, s.rec.Events(sdkTenant), spans)
		})
	}
}

func TestSDKTracesGRPC(t *testing.T) {
	s := newEventsGRPC(t, Options{})
	exp, err := otlptracegrpc.New(context.Background(),
		otlptracegrpc.WithEndpoint(s.addr), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithCompressor("gzip"),
		otlptracegrpc.WithHeaders(map[string]string{"X-Scope-OrgID": sdkTenant}),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	spans := emitSpans(t, exp)
	checkSDKSpans(t, s.rec.Events(sdkTenant), spans)
}

// emitLogs writes two log records through the logs SDK: one in a span,
// an event with attributes, and a plain line.
func emitLogs(t *testing.T, exp sdklog.Exporter) trace.SpanContext {
	t.Helper()
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(sdkResource(t)), sdklog.WithProcessor(sdklog.NewBatchProcessor(exp)))
	logger := lp.Logger("hearth.test/logs")
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:     trace.SpanID{8, 7, 6, 5, 4, 3, 2, 1},
		TraceFlags: trace.FlagsSampled,
	})
	at := time.Date(2026, 11, 1, 12, 0, 1, 0, time.UTC)
	var r otellog.Record
	r.SetTimestamp(at)
	r.SetEventName("payment.failed")
	r.SetSeverity(otellog.SeverityError)
	r.SetSeverityText("ERROR")
	r.SetBody(attribute.StringValue("payment failed for u-7"))
	r.AddAttributes(attribute.String("user.id", "u-7"), attribute.Int("attempt", 2))
	logger.Emit(trace.ContextWithSpanContext(context.Background(), sc), r)
	var plain otellog.Record
	plain.SetTimestamp(at.Add(time.Second))
	plain.SetBody(attribute.Int64Value(42))
	logger.Emit(context.Background(), plain)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := lp.Shutdown(ctx); err != nil {
		t.Fatalf("export: %v", err)
	}
	return sc
}

func checkSDKLogs(t *testing.T, got []events.Event, sc trace.SpanContext) {
	t.Helper()
	if len(got) != 2 {
		t.Fatalf("stored %d events, want 2: %+v", len(got), got)
	}
	at := time.Date(2026, 11, 1, 12, 0, 1, 0, time.UTC).UnixNano()
	attrs := func(e events.Event) map[string]events.Value {
		m := map[string]events.Value{}
		for _, a := range e.Attrs {
			m[a.Key] = a.Value
		}
		return m
	}
	ev := got[0]
	if ev.Name != "payment.failed" || ev.Start != at || ev.Duration != 0 || ev.Service != "shop" {
		t.Errorf("event: name %q start %d duration %d service %q", ev.Name, ev.Start-at, ev.Duration, ev.Service)
	}
	if ev.TraceID != events.TraceID(sc.TraceID()) || ev.ParentID != events.SpanID(sc.SpanID()) || !ev.SpanID.IsZero() {
		t.Errorf("event's trace %s parent %s span %s, want the span it was written in as parent", ev.TraceID, ev.ParentID, ev.SpanID)
	}
	want := map[string]events.Value{
		"span.body":                            events.String("payment failed for u-7"),
		"span.severity":                        events.String("ERROR"),
		"span.severity_number":                 events.Int(17),
		"span.user.id":                         events.String("u-7"),
		"span.attempt":                         events.Int(2),
		"span.otel.scope.name":                 events.String("hearth.test/logs"),
		"resource.deployment.environment.name": events.String("prod"),
	}
	a := attrs(ev)
	for k, v := range want {
		if a[k] != v {
			t.Errorf("%s = %+v, want %+v", k, a[k], v)
		}
	}
	plain := got[1]
	if plain.Name != "log" || plain.Start != at+int64(time.Second) || !plain.TraceID.IsZero() {
		t.Errorf("plain line: name %q start %d trace %s", plain.Name, plain.Start-at, plain.TraceID)
	}
	if b := attrs(plain)["span.body"]; b != events.String("42") {
		t.Errorf("plain line's body %+v, want the text 42", b)
	}
}

func TestSDKLogsHTTP(t *testing.T) {
	s := newEventsServer(t, nil, Options{})
	exp, err := otlploghttp.New(context.Background(),
		otlploghttp.WithEndpointURL(s.url+LogsPath),
		otlploghttp.WithCompression(otlploghttp.GzipCompression),
		otlploghttp.WithHeaders(map[string]string{"X-Scope-OrgID": sdkTenant}),
		otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	sc := emitLogs(t, exp)
	checkSDKLogs(t, s.rec.Events(sdkTenant), sc)
}

func TestSDKLogsGRPC(t *testing.T) {
	s := newEventsGRPC(t, Options{})
	exp, err := otlploggrpc.New(context.Background(),
		otlploggrpc.WithEndpoint(s.addr), otlploggrpc.WithInsecure(),
		otlploggrpc.WithHeaders(map[string]string{"X-Scope-OrgID": sdkTenant}),
		otlploggrpc.WithRetry(otlploggrpc.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	sc := emitLogs(t, exp)
	checkSDKLogs(t, s.rec.Events(sdkTenant), sc)
}
