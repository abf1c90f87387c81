package otelcol

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// hearthBin is the hearth binary TestMain builds.
var hearthBin string

// TestMain builds hearth from the repository root, with Hearth's own
// go.mod, so that the server under test is the one users build rather
// than one linked against the versions this module's Collector selects.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hearth-otelcol")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	hearthBin = filepath.Join(dir, "hearth")
	build := exec.Command("go", "build", "-o", hearthBin, "./cmd/hearth")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build hearth: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestCollectorPipelines sends spans and logs with the OpenTelemetry Go SDK
// to a Collector running testdata/collector.yaml, which exports them to a
// real Hearth: over gRPC for tenant team-a, over OTLP/HTTP (protobuf,
// gzip) for team-b and OTLP/HTTP (JSON) for team-c. After the Collector
// has shut down, which flushes its batches and queues, Hearth must hold
// exactly what the SDK sent, each tenant its own.
func TestCollectorPipelines(t *testing.T) {
	hearth := startHearth(t)
	receiverA, receiverB := freeAddr(t), freeAddr(t)
	t.Setenv("OTELCOL_RECEIVER_A", receiverA)
	t.Setenv("OTELCOL_RECEIVER_B", receiverB)
	t.Setenv("HEARTH_OTLP_GRPC", hearth.grpcAddr)
	// The OTLP/HTTP exporters reach Hearth through a proxy that notes how
	// each request was encoded, so that the test knows it covered both
	// encodings and both compressions it configured.
	via := newRecordingProxy(t, hearth.httpAddr)
	t.Setenv("HEARTH_HTTP", via.addr)
	col := startCollector(t, filepath.Join("testdata", "collector.yaml"))

	base := time.Now().Add(-2 * time.Minute).Truncate(time.Microsecond)
	spansA, logsA := sendTeamA(t, receiverA, base)
	spansB := sendTeamB(t, receiverB, base)

	col.stop(t)

	if len(spansA) != 30 || len(logsA) != 21 || len(spansB) != 16 {
		t.Fatalf("sent %d spans and %d logs to receiver A, %d spans to B; want 30, 21, 16", len(spansA), len(logsA), len(spansB))
	}
	wantVia := map[string]bool{
		"team-b POST /v1/traces application/x-protobuf gzip": true,
		"team-c POST /v1/traces application/json ":           true,
	}
	if diff := cmp.Diff(wantVia, via.seen()); diff != "" {
		t.Errorf("OTLP/HTTP requests, as tenant, method, path, content type and encoding (-want +got):\n%s", diff)
	}
	checkTenant(t, hearth, "team-a", spansA, logsA)
	checkTenant(t, hearth, "team-b", spansB, nil)
	checkTenant(t, hearth, "team-c", spansB, nil)
	// Nothing reached the default tenant (there are no self-events).
	if res := hearth.search(t, "", "{ }"); res.Matched != 0 {
		t.Errorf("the default tenant has %d events, want 0: %+v", res.Matched, res.Events)
	}

	// One of team-a's traces as a tree: each log record under the span
	// it was written in, siblings by start time.
	root := spansA[len(spansA)-1] // the last span to end: a root
	if root.Parent().IsValid() {
		t.Fatalf("span %s is not a root", root.Name())
	}
	id := root.SpanContext().TraceID().String()
	var tr traceResult
	if code := hearth.get(t, "team-a", "/api/v1/events/trace/"+id, nil, &tr); code != http.StatusOK {
		t.Fatalf("trace %s of team-a: status %d", id, code)
	}
	type node struct {
		Name  string
		Depth int
	}
	var got []node
	for _, s := range tr.Spans {
		got = append(got, node{s.Name, *s.Depth})
	}
	want := []node{{"POST /checkout", 0}, {"checkout.started", 1}, {"charge card", 1}, {"log", 2}, {"SELECT orders", 2}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("trace %s as a tree (-want +got):\n%s", id, diff)
	}
	if len(tr.Services) != 1 || tr.Services[0] != "shop-a" {
		t.Errorf("trace %s services %v, want [shop-a]", id, tr.Services)
	}
	// Another tenant does not see it.
	if code := hearth.get(t, "team-b", "/api/v1/events/trace/"+id, nil, nil); code != http.StatusNotFound {
		t.Errorf("trace %s of team-a asked as team-b: status %d, want 404", id, code)
	}
}

// sendTeamA sends ten traces of three spans (a server span, a client span
// below it, an internal one below that) to the Collector's receiver A,
// with two log records in each trace and one outside any, over OTLP gRPC.
// It returns the spans as the SDK ended them and the logs as it emitted
// them.
func sendTeamA(t *testing.T, receiver string, base time.Time) ([]sdktrace.ReadOnlySpan, []sentLog) {
	t.Helper()
	ctx := context.Background()
	res := resourceA()
	texp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(receiver), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSpanProcessor(rec), sdktrace.WithBatcher(texp))
	tracer := tp.Tracer("shop/checkout", trace.WithInstrumentationVersion("0.3.0"))

	lexp, err := otlploggrpc.New(ctx, otlploggrpc.WithEndpoint(receiver), otlploggrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(sdklog.NewBatchProcessor(lexp)))
	logger := lp.Logger("shop/log")
	var logs []sentLog
	emit := func(ctx context.Context, l sentLog) {
		var r otellog.Record
		r.SetTimestamp(l.at)
		r.SetEventName(l.eventName)
		r.SetSeverity(l.severity)
		r.SetSeverityText(l.severityText)
		r.SetBody(attribute.StringValue(l.body))
		r.AddAttributes(l.attrs...)
		logger.Emit(ctx, r)
		sc := trace.SpanContextFromContext(ctx)
		l.traceID, l.spanID = sc.TraceID(), sc.SpanID()
		logs = append(logs, l)
	}

	var prev trace.SpanContext
	for i := range 10 {
		start := base.Add(time.Duration(i) * 100 * time.Millisecond)
		user := fmt.Sprintf("u-%d", i)
		status := 200
		if i%4 == 0 {
			status = 502
		}
		rctx, root := tracer.Start(ctx, "POST /checkout", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start),
			trace.WithAttributes(attribute.String("http.route", "/checkout"), attribute.Int("http.response.status_code", status),
				attribute.String("user.id", user), attribute.Float64("cart.total", float64(i)+0.25), attribute.Bool("cache.hit", i%2 == 0)))
		emit(rctx, sentLog{at: start.Add(time.Millisecond), eventName: "checkout.started", severity: otellog.SeverityInfo,
			severityText: "INFO", body: "checkout for " + user, attrs: []attribute.KeyValue{attribute.String("user.id", user)}})
		var links []trace.Link
		if prev.IsValid() {
			links = append(links, trace.Link{SpanContext: prev, Attributes: []attribute.KeyValue{attribute.String("link.reason", "retry of")}})
		}
		cctx, child := tracer.Start(rctx, "charge card", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start.Add(5*time.Millisecond)),
			trace.WithAttributes(attribute.String("payment.provider", "acme"), attribute.Int("payment.attempts", 1+i%3)), trace.WithLinks(links...))
		emit(cctx, sentLog{at: start.Add(7 * time.Millisecond), severity: otellog.SeverityWarn, severityText: "WARN",
			body: fmt.Sprintf("card retry %d", i), attrs: []attribute.KeyValue{attribute.Int("attempt", 2)}})
		_, db := tracer.Start(cctx, "SELECT orders", trace.WithTimestamp(start.Add(10*time.Millisecond)),
			trace.WithAttributes(attribute.String("db.system.name", "postgresql"), attribute.Int("db.rows", 10*i)))
		db.End(trace.WithTimestamp(start.Add(20 * time.Millisecond)))
		if status == 502 {
			child.AddEvent("gateway timeout", trace.WithTimestamp(start.Add(30*time.Millisecond)),
				trace.WithAttributes(attribute.Int("retry.in_ms", 250)))
			child.SetStatus(codes.Error, "card declined")
			root.SetStatus(codes.Error, "bad gateway")
		} else {
			root.SetStatus(codes.Ok, "")
		}
		child.End(trace.WithTimestamp(start.Add(40 * time.Millisecond)))
		root.End(trace.WithTimestamp(start.Add(50 * time.Millisecond)))
		prev = child.SpanContext()
	}
	emit(ctx, sentLog{at: base.Add(time.Second), severity: otellog.SeverityDebug, severityText: "DEBUG", body: "cache warmed",
		attrs: []attribute.KeyValue{attribute.Int("cache.entries", 4096), attribute.Bool("cache.cold", false)}})

	shutdown(t, tp.Shutdown, lp.Shutdown)
	return rec.Ended(), logs
}

// resourceA is the resource of what is sent to receiver A.
func resourceA() *resource.Resource {
	return resource.NewSchemaless(attribute.String("service.name", "shop-a"), attribute.String("service.version", "1.4.2"),
		attribute.String("deployment.environment.name", "test"))
}

// sendTeamB sends eight traces of a server span and a client span below
// it to the Collector's receiver B.
func sendTeamB(t *testing.T, receiver string, base time.Time) []sdktrace.ReadOnlySpan {
	t.Helper()
	ctx := context.Background()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(receiver), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "shop-b"))),
		sdktrace.WithSpanProcessor(rec), sdktrace.WithBatcher(exp))
	tracer := tp.Tracer("shop/search")
	for i := range 8 {
		start := base.Add(time.Duration(i) * 100 * time.Millisecond)
		rctx, root := tracer.Start(ctx, "GET /search", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start),
			trace.WithAttributes(attribute.String("http.route", "/search"), attribute.Int64("results", int64(i)<<40),
				attribute.Float64("score", float64(i)/8), attribute.StringSlice("tags", []string{"a", fmt.Sprint(i)})))
		_, child := tracer.Start(rctx, "GET catalog", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start.Add(time.Millisecond)),
			trace.WithAttributes(attribute.String("server.address", "catalog"), attribute.Bool("cached", i%3 == 0)))
		child.End(trace.WithTimestamp(start.Add(9 * time.Millisecond)))
		root.End(trace.WithTimestamp(start.Add(12 * time.Millisecond)))
	}
	shutdown(t, tp.Shutdown)
	return rec.Ended()
}

// sentLog is a log record as the test emitted it.
type sentLog struct {
	at           time.Time
	eventName    string
	severity     otellog.Severity
	severityText string
	body         string
	attrs        []attribute.KeyValue
	traceID      trace.TraceID
	spanID       trace.SpanID
}

// shutdown flushes SDK providers, failing the test if an export failed.
func shutdown(t *testing.T, fns ...func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, fn := range fns {
		if err := fn(ctx); err != nil {
			t.Fatalf("SDK export to the Collector: %v", err)
		}
	}
}

// checkTenant compares every event of tenant with the spans and logs the
// SDK sent: the same count, and for each the same IDs, parent, name,
// kind, status, times, service and attributes, span events and links.
func checkTenant(t *testing.T, h *hearthServer, tenant string, spans []sdktrace.ReadOnlySpan, logs []sentLog) {
	t.Helper()
	res := h.search(t, tenant, "{ }")
	if want := len(spans) + len(logs); res.Matched != int64(want) || len(res.Events) != want {
		t.Errorf("%s: Hearth has %d events (%d listed), want %d spans and %d logs", tenant, res.Matched, len(res.Events), len(spans), len(logs))
	}
	got := map[string]eventJSON{}
	for _, e := range res.Events {
		key := e.SpanID
		if key == "" { // a log record: its body tells it apart
			key = fmt.Sprint("log:", e.Attributes["span.body"])
		}
		if _, dup := got[key]; dup {
			t.Errorf("%s: %s arrived twice", tenant, key)
		}
		got[key] = e
	}
	for _, s := range spans {
		want := spanWant(s)
		if diff := cmp.Diff(want, got[want.SpanID]); diff != "" {
			t.Errorf("%s: span %q %s (-sent +stored):\n%s", tenant, s.Name(), want.SpanID, diff)
		}
	}
	for _, l := range logs {
		if diff := cmp.Diff(logWant(l), got["log:"+l.body]); diff != "" {
			t.Errorf("%s: log %q (-sent +stored):\n%s", tenant, l.body, diff)
		}
	}
	// Filters select on what the pipeline carried: a span attribute, a
	// resource attribute and the service.
	if len(logs) > 0 {
		if r := h.search(t, tenant, `{ span.severity = "WARN" }`); r.Matched != 10 {
			t.Errorf("%s: %d WARN log records, want 10", tenant, r.Matched)
		}
		if r := h.search(t, tenant, `{ status = error && kind = client }`); r.Matched != 3 {
			t.Errorf("%s: %d failed client spans, want 3", tenant, r.Matched)
		}
	} else if r := h.search(t, tenant, `{ resource.service.name = "shop-b" && span.cached = true }`); r.Matched != 3 {
		t.Errorf("%s: %d cached calls, want 3", tenant, r.Matched)
	}
}

// spanWant is the event Hearth is to make of a span: see the README's
// "OpenTelemetry traces and logs".
func spanWant(s sdktrace.ReadOnlySpan) eventJSON {
	e := eventJSON{
		TraceID:       s.SpanContext().TraceID().String(),
		SpanID:        s.SpanContext().SpanID().String(),
		StartUnixNano: s.StartTime().UnixNano(),
		DurationNanos: s.EndTime().Sub(s.StartTime()).Nanoseconds(),
		Name:          s.Name(),
		Kind:          s.SpanKind().String(),
		Status:        map[codes.Code]string{codes.Unset: "unset", codes.Ok: "ok", codes.Error: "error"}[s.Status().Code],
		StatusMessage: s.Status().Description,
	}
	if s.Parent().IsValid() {
		e.ParentSpanID = s.Parent().SpanID().String()
	}
	e.Service, e.Attributes = baseAttrs(s.Resource(), s.InstrumentationScope().Name, s.InstrumentationScope().Version)
	for _, kv := range s.Attributes() {
		e.Attributes["span."+string(kv.Key)] = jsonValue(kv.Value)
	}
	for _, se := range s.Events() {
		ev := spanEventJSON{Time: se.Time.UTC(), Name: se.Name}
		for _, kv := range se.Attributes {
			if ev.Attributes == nil {
				ev.Attributes = map[string]any{}
			}
			ev.Attributes[string(kv.Key)] = jsonValue(kv.Value)
		}
		e.SpanEvents = append(e.SpanEvents, ev)
	}
	for _, l := range s.Links() {
		lj := linkJSON{TraceID: l.SpanContext.TraceID().String(), SpanID: l.SpanContext.SpanID().String()}
		for _, kv := range l.Attributes {
			if lj.Attributes == nil {
				lj.Attributes = map[string]any{}
			}
			lj.Attributes[string(kv.Key)] = jsonValue(kv.Value)
		}
		e.Links = append(e.Links, lj)
	}
	return e
}

// logWant is the event Hearth is to make of a log record: duration 0, its
// event name or "log", and the span it was written in as its parent.
func logWant(l sentLog) eventJSON {
	e := eventJSON{StartUnixNano: l.at.UnixNano(), Name: l.eventName, Kind: "unspecified", Status: "unset"}
	if e.Name == "" {
		e.Name = "log"
	}
	if l.traceID.IsValid() {
		e.TraceID, e.ParentSpanID = l.traceID.String(), l.spanID.String()
	}
	e.Service, e.Attributes = baseAttrs(resourceA(), "shop/log", "")
	e.Attributes["span.body"] = l.body
	e.Attributes["span.severity"] = l.severityText
	e.Attributes["span.severity_number"] = json.Number(strconv.Itoa(int(l.severity)))
	for _, kv := range l.attrs {
		e.Attributes["span."+string(kv.Key)] = jsonValue(kv.Value)
	}
	return e
}

// baseAttrs is what every event of a resource and scope carries: its
// service, the other resource attributes and the scope's name and version.
func baseAttrs(res *resource.Resource, scope, version string) (string, map[string]any) {
	service := ""
	m := map[string]any{}
	for _, kv := range res.Attributes() {
		if kv.Key == "service.name" {
			service = kv.Value.AsString()
			continue
		}
		m["resource."+string(kv.Key)] = jsonValue(kv.Value)
	}
	if scope != "" {
		m["span.otel.scope.name"] = scope
	}
	if version != "" {
		m["span.otel.scope.version"] = version
	}
	return service, m
}

// jsonValue is an attribute's value as Hearth's API writes it and the
// test decodes it (numbers as json.Number, so that an int that came back
// a float shows): arrays as their JSON text.
func jsonValue(v attribute.Value) any {
	switch v.Type() {
	case attribute.STRING:
		return v.AsString()
	case attribute.BOOL:
		return v.AsBool()
	case attribute.INT64:
		return json.Number(strconv.FormatInt(v.AsInt64(), 10))
	case attribute.FLOAT64:
		b, _ := json.Marshal(v.AsFloat64())
		return json.Number(b)
	}
	b, _ := json.Marshal(v.AsInterface())
	return string(b)
}

// eventJSON is an event as /api/v1/events/search writes it.
type eventJSON struct {
	TraceID       string          `json:"trace_id,omitempty"`
	SpanID        string          `json:"span_id,omitempty"`
	ParentSpanID  string          `json:"parent_span_id,omitempty"`
	StartUnixNano int64           `json:"start_unix_nano"`
	DurationNanos int64           `json:"duration_ns"`
	Service       string          `json:"service"`
	Name          string          `json:"name"`
	Kind          string          `json:"kind"`
	Status        string          `json:"status"`
	StatusMessage string          `json:"status_message,omitempty"`
	Attributes    map[string]any  `json:"attributes"`
	SpanEvents    []spanEventJSON `json:"span_events,omitempty"`
	Links         []linkJSON      `json:"links,omitempty"`
	Depth         *int            `json:"depth,omitempty"`
}

type spanEventJSON struct {
	Time       time.Time      `json:"time"`
	Name       string         `json:"name"`
	Attributes map[string]any `json:"attributes,omitempty"`
}

type linkJSON struct {
	TraceID    string         `json:"trace_id"`
	SpanID     string         `json:"span_id"`
	Attributes map[string]any `json:"attributes,omitempty"`
}

type searchResult struct {
	Events  []eventJSON `json:"events"`
	Matched int64       `json:"matched"`
}

type traceResult struct {
	TraceID  string      `json:"trace_id"`
	Spans    []eventJSON `json:"spans"`
	Services []string    `json:"services"`
}

// hearthServer is a hearth server process.
type hearthServer struct {
	httpAddr, grpcAddr string
	logs               *bytes.Buffer
}

// startHearth runs hearth server on two free loopback ports and waits
// until it is ready.
func startHearth(t *testing.T) *hearthServer {
	t.Helper()
	h := &hearthServer{httpAddr: freeAddr(t), grpcAddr: freeAddr(t), logs: &bytes.Buffer{}}
	cmd := exec.Command(hearthBin, "server", "--listen", h.httpAddr, "--otlp.grpc.listen", h.grpcAddr,
		"--data", t.TempDir(), "--self-profile.interval", "0", "--self-events=false")
	cmd.Stdout, cmd.Stderr = h.logs, h.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start hearth: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("hearth's log:\n%s", h.logs)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + h.httpAddr + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return h
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("hearth not ready after 20 s")
	return nil
}

// get asks Hearth for path as tenant (none: the default tenant), decodes
// a successful answer's data into out, and returns the status code.
func (h *hearthServer) get(t *testing.T, tenant, path string, query url.Values, out any) int {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+h.httpAddr+path+"?"+query.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if tenant != "" {
		req.Header.Set("X-Scope-OrgID", tenant)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || out == nil {
		return resp.StatusCode
	}
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Status != "success" {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
	dec := json.NewDecoder(bytes.NewReader(env.Data))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		t.Fatalf("GET %s: decode %s: %v", path, env.Data, err)
	}
	return resp.StatusCode
}

// search returns tenant's events of the last ten minutes that match the
// filter q.
func (h *hearthServer) search(t *testing.T, tenant, q string) searchResult {
	t.Helper()
	var res searchResult
	if code := h.get(t, tenant, "/api/v1/events/search", url.Values{"q": {q}, "from": {"-10m"}, "limit": {"1000"}}, &res); code != http.StatusOK {
		t.Fatalf("search %s as %q: status %d", q, tenant, code)
	}
	return res
}

// recordingProxy forwards HTTP requests to Hearth and notes each one's
// tenant, method, path, content type and encoding.
type recordingProxy struct {
	addr string
	mu   sync.Mutex
	reqs map[string]bool
}

func newRecordingProxy(t *testing.T, target string) *recordingProxy {
	t.Helper()
	p := &recordingProxy{reqs: map[string]bool{}}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.reqs[strings.Join([]string{r.Header.Get("X-Scope-OrgID"), r.Method, r.URL.Path,
			r.Header.Get("Content-Type"), r.Header.Get("Content-Encoding")}, " ")] = true
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.addr = srv.Listener.Addr().String()
	return p
}

func (p *recordingProxy) seen() map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.reqs)
}

// collector is a Collector running in the test process.
type collector struct {
	col  *otelcol.Collector
	done chan error
}

// startCollector runs a Collector with the components of the pipelines
// under test, configured by the YAML file at path, and waits until its
// pipelines run.
func startCollector(t *testing.T, path string) *collector {
	t.Helper()
	col, err := otelcol.NewCollector(otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{Command: "otelcol-hearth-test", Description: "Collector of Hearth's interop test", Version: "0.165.0"},
		Factories: factories,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{ResolverSettings: confmap.ResolverSettings{
			URIs:              []string{"file:" + path},
			ProviderFactories: []confmap.ProviderFactory{fileprovider.NewFactory(), envprovider.NewFactory()},
		}},
		// The test process's signals are go test's, not the Collector's.
		DisableGracefulShutdown: true,
	})
	if err != nil {
		t.Fatalf("new collector: %v", err)
	}
	c := &collector{col: col, done: make(chan error, 1)}
	go func() { c.done <- col.Run(context.Background()) }()
	t.Cleanup(col.Shutdown)
	deadline := time.Now().Add(10 * time.Second)
	for col.GetState() != otelcol.StateRunning {
		select {
		case err := <-c.done:
			t.Fatalf("collector stopped while starting: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector not running after 10 s: %s", col.GetState())
		}
	}
	return c
}

// stop shuts the Collector down, which flushes the batch processor and
// drains the exporters' queues, and waits for it.
func (c *collector) stop(t *testing.T) {
	t.Helper()
	go c.col.Shutdown()
	select {
	case err := <-c.done:
		if err != nil {
			t.Fatalf("collector: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("collector still shutting down after 20 s")
	}
}

// factories are the components of a Collector distribution that has what
// the pipelines under test use, and the Collector's own telemetry.
func factories() (otelcol.Factories, error) {
	var f otelcol.Factories
	var err error
	if f.Receivers, err = otelcol.MakeFactoryMap(otlpreceiver.NewFactory()); err != nil {
		return f, err
	}
	if f.Processors, err = otelcol.MakeFactoryMap(batchprocessor.NewFactory()); err != nil {
		return f, err
	}
	if f.Exporters, err = otelcol.MakeFactoryMap(otlpexporter.NewFactory(), otlphttpexporter.NewFactory()); err != nil {
		return f, err
	}
	f.Telemetry = otelconftelemetry.NewFactory()
	return f, nil
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
