package otlp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/gzip"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/hearth-profiler/hearth/internal/events"
	"github.com/hearth-profiler/hearth/internal/events/eventstest"
	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/limits"
	"github.com/hearth-profiler/hearth/internal/storage"
)

var (
	traceC  = pcommon.TraceID{0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c}
	rootC   = pcommon.SpanID{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74}
	childC  = pcommon.SpanID{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x73}
	tStart  = pcommon.NewTimestampFromTime(t0)
	tPlus   = func(ms int) pcommon.Timestamp { return tStart + pcommon.Timestamp(ms)*1e6 }
	eventT0 = t0.UnixNano()
)

// exampleTraces is a request of two services' spans with every part the
// conversion reads: typed resource, scope and span attributes (bytes,
// arrays and maps too), kinds, statuses, span events and links, a parent.
func exampleTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	ra := rs.Resource().Attributes()
	ra.PutStr("service.name", "checkout")
	ra.PutStr("host.name", "web-1")
	ra.PutInt("process.pid", 4242)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("net/http")
	ss.Scope().SetVersion("0.61.0")
	root := ss.Spans().AppendEmpty()
	root.SetTraceID(traceC)
	root.SetSpanID(rootC)
	root.SetName("POST /cart")
	root.SetKind(ptrace.SpanKindServer)
	root.SetStartTimestamp(tStart)
	root.SetEndTimestamp(tPlus(412))
	root.Status().SetCode(ptrace.StatusCodeError)
	root.Status().SetMessage("card declined")
	a := root.Attributes()
	a.PutStr("http.route", "/cart")
	a.PutInt("http.response.status_code", 502)
	a.PutDouble("ratio", 0.25)
	a.PutBool("retry", true)
	a.PutEmptyBytes("digest").FromRaw([]byte{0xde, 0xad})
	a.PutEmptySlice("tags").FromRaw([]any{"a", int64(1)})
	a.PutEmptyMap("user").FromRaw(map[string]any{"id": "u-7", "plan": "pro"})
	a.PutEmpty("nothing")
	se := root.Events().AppendEmpty()
	se.SetTimestamp(tPlus(400))
	se.SetName("exception")
	se.Attributes().PutStr("exception.message", "card declined")
	ln := root.Links().AppendEmpty()
	ln.SetTraceID(traceA)
	ln.SetSpanID(spanA)
	ln.Attributes().PutStr("why", "batch")
	child := ss.Spans().AppendEmpty()
	child.SetTraceID(traceC)
	child.SetSpanID(childC)
	child.SetParentSpanID(rootC)
	child.SetName("SELECT carts")
	child.SetKind(ptrace.SpanKindClient)
	child.SetStartTimestamp(tPlus(10))
	child.SetEndTimestamp(tPlus(30))
	child.Status().SetCode(ptrace.StatusCodeOk)
	child.Attributes().PutStr("db.system", "postgresql")

	// A resource without service.name and a scope without a name.
	rs2 := td.ResourceSpans().AppendEmpty()
	sp := rs2.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(traceB)
	sp.SetSpanID(spanB)
	sp.SetName("tick")
	sp.SetStartTimestamp(tPlus(5))
	sp.SetEndTimestamp(tPlus(5))
	return td
}

// exampleTraceEvents is what exampleTraces stores.
func exampleTraceEvents() []events.Event {
	return []events.Event{
		{
			Start: eventT0, Duration: 412e6,
			TraceID: events.TraceID(traceC), SpanID: events.SpanID(rootC),
			Service: "checkout", Name: "POST /cart", Kind: events.KindServer,
			Status: events.StatusError, StatusMessage: "card declined",
			Attrs: []events.Attr{
				{Key: "resource.host.name", Value: events.String("web-1")},
				{Key: "resource.process.pid", Value: events.Int(4242)},
				{Key: "span.digest", Value: events.String("dead")},
				{Key: "span.http.response.status_code", Value: events.Int(502)},
				{Key: "span.http.route", Value: events.String("/cart")},
				{Key: "span.otel.scope.name", Value: events.String("net/http")},
				{Key: "span.otel.scope.version", Value: events.String("0.61.0")},
				{Key: "span.ratio", Value: events.Float(0.25)},
				{Key: "span.retry", Value: events.Bool(true)},
				{Key: "span.tags", Value: events.String(`["a",1]`)},
				{Key: "span.user", Value: events.String(`{"id":"u-7","plan":"pro"}`)},
			},
			SpanEvents: []events.SpanEvent{{Time: eventT0 + 400e6, Name: "exception",
				Attrs: []events.Attr{{Key: "exception.message", Value: events.String("card declined")}}}},
			Links: []events.Link{{TraceID: events.TraceID(traceA), SpanID: events.SpanID(spanA),
				Attrs: []events.Attr{{Key: "why", Value: events.String("batch")}}}},
		},
		{
			Start: eventT0 + 10e6, Duration: 20e6,
			TraceID: events.TraceID(traceC), SpanID: events.SpanID(childC), ParentID: events.SpanID(rootC),
			Service: "checkout", Name: "SELECT carts", Kind: events.KindClient, Status: events.StatusOK,
			Attrs: []events.Attr{
				{Key: "resource.host.name", Value: events.String("web-1")},
				{Key: "resource.process.pid", Value: events.Int(4242)},
				{Key: "span.db.system", Value: events.String("postgresql")},
				{Key: "span.otel.scope.name", Value: events.String("net/http")},
				{Key: "span.otel.scope.version", Value: events.String("0.61.0")},
			},
		},
		{
			Start: eventT0 + 5e6, TraceID: events.TraceID(traceB), SpanID: events.SpanID(spanB),
			Service: "unknown_service", Name: "tick",
		},
	}
}

func TestConvertTraces(t *testing.T) {
	cv := convertTraces(exampleTraces(), events.Limits{})
	if len(cv.refused) != 0 || cv.total != 3 || cv.cut.Any() {
		t.Fatalf("refused %v, total %d, cut %+v", cv.refused, cv.total, cv.cut)
	}
	if d := cmp.Diff(exampleTraceEvents(), cv.events); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
	// Within the limit, spans convert with their attributes sorted, so
	// that storage's normalizing has nothing to sort.
	td := exampleTraces()
	for _, rs := range td.ResourceSpans().All() {
		_, resAttrs := resourceOf(rs.Resource())
		res := attrsInOrder{wire: resAttrs, sorted: sortedAttrs(resAttrs)}
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				ev, err := spanEvent(sp, res, scopeAttrs(nil, ss.Scope()), 128)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.IsSortedFunc(ev.Attrs, byKey) {
					t.Errorf("span %q: attributes not sorted: %v", sp.Name(), ev.Attrs)
				}
			}
		}
	}
}

// badSpans returns exampleTraces with four spans that cannot be events
// added to its first scope.
func badSpans() ptrace.Traces {
	td := exampleTraces()
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	add := func(name string, f func(ptrace.Span)) {
		sp := spans.AppendEmpty()
		sp.SetName(name)
		sp.SetTraceID(traceC)
		sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, byte(spans.Len())})
		sp.SetStartTimestamp(tStart)
		sp.SetEndTimestamp(tPlus(1))
		f(sp)
	}
	add("no trace", func(sp ptrace.Span) { sp.SetTraceID(pcommon.TraceID{}) })
	add("no span", func(sp ptrace.Span) { sp.SetSpanID(pcommon.SpanID{}) })
	add("backwards", func(sp ptrace.Span) { sp.SetEndTimestamp(tStart - 1) })
	add("no start", func(sp ptrace.Span) { sp.SetStartTimestamp(0) })
	add("far future", func(sp ptrace.Span) { sp.SetStartTimestamp(1 << 63); sp.SetEndTimestamp(1<<63 + 1) })
	return td
}

func TestConvertTracesRefusals(t *testing.T) {
	cv := convertTraces(badSpans(), events.Limits{})
	if d := cmp.Diff(exampleTraceEvents(), cv.events); d != "" {
		t.Errorf("the good spans (-want +got):\n%s", d)
	}
	want := []refusal{
		{`resource_spans[0].scope_spans[0].spans[2] "no trace"`, "no trace_id: a span needs a 16-byte trace ID that is not all zeros"},
		{`resource_spans[0].scope_spans[0].spans[3] "no span"`, "no span_id: a span needs an 8-byte span ID that is not all zeros"},
		{`resource_spans[0].scope_spans[0].spans[4] "backwards"`, fmt.Sprintf("ends before it starts: end_time_unix_nano %d < start_time_unix_nano %d", eventT0-1, eventT0)},
		{`resource_spans[0].scope_spans[0].spans[5] "no start"`, "no start_time_unix_nano"},
		{`resource_spans[0].scope_spans[0].spans[6] "far future"`, "start_time_unix_nano 9223372036854775808 is past the year 2262"},
	}
	if d := cmp.Diff(want, cv.refused, cmp.AllowUnexported(refusal{})); d != "" {
		t.Errorf("refusals (-want +got):\n%s", d)
	}
	if cv.total != 8 {
		t.Errorf("total %d, want 8", cv.total)
	}
}

func TestConvertTracesLimits(t *testing.T) {
	td := exampleTraces()
	cv := convertTraces(td, events.Limits{MaxAttributes: 3, MaxValueBytes: 4})
	root := cv.events[0]
	// Resource attributes come first, then the scope's: the span's own
	// are what is dropped.
	wantKeys := []string{"resource.host.name", "resource.process.pid", "span.otel.scope.name"}
	var keys []string
	for _, a := range root.Attrs {
		keys = append(keys, a.Key)
	}
	if d := cmp.Diff(wantKeys, keys); d != "" {
		t.Errorf("root's attributes (-want +got):\n%s", d)
	}
	if root.Name != "POST" || root.StatusMessage != "card" || root.Attrs[2].Value.Str != "net/" {
		t.Errorf("values not cut to 4 bytes: name %q, message %q, %v", root.Name, root.StatusMessage, root.Attrs[2])
	}
	// root: the scope's version and its 7 own (its empty value is none);
	// child: the scope's version and its 1 own.
	if cv.cut.Attributes != 8+2 {
		t.Errorf("cut %d attributes, want 10", cv.cut.Attributes)
	}
}

// exampleLogs is a request of log records: one in a span with an event
// name and a map body, one with only an observed time, one with neither
// time, one with a time past 2262.
func exampleLogs() plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	rl.Resource().Attributes().PutStr("k8s.pod.name", "checkout-7d9")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("log/slog")
	lr := sl.LogRecords().AppendEmpty()
	lr.SetTimestamp(tPlus(20))
	lr.SetObservedTimestamp(tPlus(25))
	lr.SetTraceID(traceC)
	lr.SetSpanID(childC)
	lr.SetEventName("cart.updated")
	lr.SetSeverityNumber(plog.SeverityNumberWarn)
	lr.SetSeverityText("WARN")
	lr.Body().SetEmptyMap().FromRaw(map[string]any{"items": int64(3)})
	lr.Attributes().PutStr("user.id", "u-7")
	lr2 := sl.LogRecords().AppendEmpty()
	lr2.SetObservedTimestamp(tPlus(30))
	lr2.Body().SetStr("cache miss")
	lr3 := sl.LogRecords().AppendEmpty()
	lr3.Body().SetStr("no time at all")
	lr4 := sl.LogRecords().AppendEmpty()
	lr4.SetTimestamp(1 << 63)
	return ld
}

func TestConvertLogs(t *testing.T) {
	now := t0.Add(time.Hour)
	cv := convertLogs(exampleLogs(), events.Limits{}, now)
	scope := events.Attr{Key: "span.otel.scope.name", Value: events.String("log/slog")}
	pod := events.Attr{Key: "resource.k8s.pod.name", Value: events.String("checkout-7d9")}
	want := []events.Event{
		{
			Start: eventT0 + 20e6, TraceID: events.TraceID(traceC), ParentID: events.SpanID(childC),
			Service: "checkout", Name: "cart.updated",
			Attrs: []events.Attr{pod,
				{Key: "span.body", Value: events.String(`{"items":3}`)},
				scope,
				{Key: "span.severity", Value: events.String("WARN")},
				{Key: "span.severity_number", Value: events.Int(13)},
				{Key: "span.user.id", Value: events.String("u-7")},
			},
		},
		{Start: eventT0 + 30e6, Service: "checkout", Name: "log",
			Attrs: []events.Attr{pod, {Key: "span.body", Value: events.String("cache miss")}, scope}},
		{Start: now.UnixNano(), Service: "checkout", Name: "log",
			Attrs: []events.Attr{pod, {Key: "span.body", Value: events.String("no time at all")}, scope}},
	}
	if d := cmp.Diff(want, cv.events); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
	wantRefused := []refusal{{"resource_logs[0].scope_logs[0].log_records[3]", "time_unix_nano 9223372036854775808 is past the year 2262"}}
	if d := cmp.Diff(wantRefused, cv.refused, cmp.AllowUnexported(refusal{})); d != "" {
		t.Errorf("refusals (-want +got):\n%s", d)
	}
}

// eventsServer serves the events handlers with a recorder behind them.
type eventsServer struct {
	rec *eventstest.Recorder
	url string
}

func newEventsServer(t *testing.T, adm ingest.Admitter, opts Options) *eventsServer {
	t.Helper()
	rec := &eventstest.Recorder{}
	mux := http.NewServeMux()
	RegisterEvents(mux, rec, adm, opts)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &eventsServer{rec: rec, url: srv.URL}
}

// post sends body to path with the given headers, pairs of name and value.
func (s *eventsServer) post(t *testing.T, path string, body []byte, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tracesBody(t *testing.T, td ptrace.Traces, ct string) []byte {
	t.Helper()
	req := ptraceotlp.NewExportRequestFromTraces(td)
	var b []byte
	var err error
	if ct == contentJSON {
		b, err = req.MarshalJSON()
	} else {
		b, err = req.MarshalProto()
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeTracesResponse(t *testing.T, ct string, body []byte) ptraceotlp.ExportResponse {
	t.Helper()
	resp := ptraceotlp.NewExportResponse()
	var err error
	if ct == contentJSON {
		err = resp.UnmarshalJSON(body)
	} else {
		err = resp.UnmarshalProto(body)
	}
	if err != nil {
		t.Fatalf("answer %q is not an ExportTraceServiceResponse: %v", body, err)
	}
	return resp
}

func TestTracesHTTP(t *testing.T) {
	for _, ct := range []string{contentProtobuf, contentJSON} {
		for _, gz := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s gzip=%v", ct, gz), func(t *testing.T) {
				s := newEventsServer(t, nil, Options{})
				body := tracesBody(t, exampleTraces(), ct)
				headers := []string{"Content-Type", ct, "X-Scope-OrgID", "team-a"}
				if gz {
					body = gzipped(t, body)
					headers = append(headers, "Content-Encoding", "gzip")
				}
				resp, b := s.post(t, TracesPath, body, headers...)
				if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ct {
					t.Fatalf("status %d, Content-Type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
				}
				if ps := decodeTracesResponse(t, ct, b).PartialSuccess(); ps.RejectedSpans() != 0 || ps.ErrorMessage() != "" {
					t.Errorf("partial success %d %q, want none", ps.RejectedSpans(), ps.ErrorMessage())
				}
				if d := cmp.Diff(exampleTraceEvents(), s.rec.Events("team-a")); d != "" {
					t.Errorf("stored (-want +got):\n%s", d)
				}
			})
		}
	}
}

// TestTracesHTTPJSONByHand posts OTLP/JSON as a person or a script would
// write it: hex IDs, a 64-bit integer as a string, enums as integers,
// fields Hearth does not know, an empty resource.
func TestTracesHTTPJSONByHand(t *testing.T) {
	s := newEventsServer(t, nil, Options{})
	body := `{"resourceSpans":[{"resource":{},"scopeSpans":[{"scope":{"name":"curl"},"spans":[{
		"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","parentSpanId":"",
		"name":"GET /","kind":2,"startTimeUnixNano":"1793534400000000000","endTimeUnixNano":"1793534400250000000",
		"attributes":[{"key":"big","value":{"intValue":"9007199254740993"}},{"key":"ok","value":{"boolValue":true}}],
		"status":{"code":1},"someFieldFromTheFuture":{"x":1}}]}]}]}`
	resp, b := s.post(t, TracesPath, []byte(body), "Content-Type", contentJSON)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	want := []events.Event{{
		Start: 1793534400000000000, Duration: 250e6,
		TraceID: events.TraceID(traceC), SpanID: events.SpanID(rootC),
		Service: "unknown_service", Name: "GET /", Kind: events.KindServer, Status: events.StatusOK,
		Attrs: []events.Attr{
			{Key: "span.big", Value: events.Int(9007199254740993)},
			{Key: "span.ok", Value: events.Bool(true)},
			{Key: "span.otel.scope.name", Value: events.String("curl")},
		},
	}}
	if d := cmp.Diff(want, s.rec.Events("anonymous")); d != "" {
		t.Errorf("stored (-want +got):\n%s", d)
	}
}

func TestTracesHTTPPartialSuccess(t *testing.T) {
	for _, ct := range []string{contentProtobuf, contentJSON} {
		t.Run(ct, func(t *testing.T) {
			s := newEventsServer(t, nil, Options{})
			td := badSpans()
			// A sixth refusal, of which the message names only the count.
			sp := td.ResourceSpans().At(1).ScopeSpans().At(0).Spans().AppendEmpty()
			sp.SetName("sixth")
			resp, b := s.post(t, TracesPath, tracesBody(t, td, ct), "Content-Type", ct)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			ps := decodeTracesResponse(t, ct, b).PartialSuccess()
			if ps.RejectedSpans() != 6 {
				t.Errorf("rejected_spans %d, want 6", ps.RejectedSpans())
			}
			msg := ps.ErrorMessage()
			for _, want := range []string{"6 of 9 spans refused", `spans[2] "no trace": no trace_id`, `"backwards": ends before it starts`, "and 1 more"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error_message %q does not say %q", msg, want)
				}
			}
			if strings.Contains(msg, "sixth") {
				t.Errorf("error_message %q names more than %d refusals", msg, maxReasons)
			}
			if d := cmp.Diff(exampleTraceEvents(), s.rec.Events("anonymous")); d != "" {
				t.Errorf("stored (-want +got):\n%s", d)
			}
		})
	}
}

// TestTracesHTTPCutWarns checks that what the limits cut is told as
// OTLP's warning: an error_message with nothing rejected.
func TestTracesHTTPCutWarns(t *testing.T) {
	s := newEventsServer(t, nil, Options{Events: events.Limits{MaxAttributes: 2}})
	resp, b := s.post(t, TracesPath, tracesBody(t, exampleTraces(), contentProtobuf), "Content-Type", contentProtobuf)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	ps := decodeTracesResponse(t, contentProtobuf, b).PartialSuccess()
	want := "12 attributes dropped over the limit of 2 per event (--events.max-attributes)"
	if ps.RejectedSpans() != 0 || ps.ErrorMessage() != want {
		t.Errorf("partial success %d %q, want 0 %q", ps.RejectedSpans(), ps.ErrorMessage(), want)
	}
	if n := len(s.rec.Events("anonymous")); n != 3 {
		t.Errorf("%d events stored, want 3", n)
	}
}

func TestEventsHTTPRefusals(t *testing.T) {
	traces := tracesBody(t, exampleTraces(), contentProtobuf)
	for _, tc := range []struct {
		name    string
		opts    Options
		path    string
		body    []byte
		headers []string
		status  int
		msg     string
	}{
		{name: "wrong content type", path: TracesPath, body: traces, headers: []string{"Content-Type", "text/plain"},
			status: http.StatusUnsupportedMediaType, msg: `unsupported Content-Type "text/plain"`},
		{name: "wrong encoding", path: LogsPath, body: traces, headers: []string{"Content-Type", contentProtobuf, "Content-Encoding", "br"},
			status: http.StatusUnsupportedMediaType, msg: `unsupported Content-Encoding "br"`},
		{name: "over the body limit", opts: Options{MaxBodyBytes: 100}, path: TracesPath, body: traces, headers: []string{"Content-Type", contentProtobuf},
			status: http.StatusRequestEntityTooLarge, msg: "over the limit of 100"},
		{name: "gzip over the decompression limit", opts: Options{MaxDecompressedBytes: 100}, path: TracesPath, body: gzipped(t, traces),
			headers: []string{"Content-Type", contentProtobuf, "Content-Encoding", "gzip"},
			status:  http.StatusRequestEntityTooLarge, msg: "decompresses to more than 100 bytes"},
		{name: "too many spans", opts: Options{Events: events.Limits{MaxPerRequest: 2}}, path: TracesPath, body: traces, headers: []string{"Content-Type", contentProtobuf},
			status: http.StatusRequestEntityTooLarge, msg: "the request holds 3 spans, over the limit of 2 per request (--events.max-per-request)"},
		{name: "not protobuf", path: TracesPath, body: []byte("\xff\xff\xff"), headers: []string{"Content-Type", contentProtobuf},
			status: http.StatusBadRequest, msg: "decode OTLP ExportTraceServiceRequest (application/x-protobuf)"},
		{name: "not JSON", path: LogsPath, body: []byte("{"), headers: []string{"Content-Type", contentJSON},
			status: http.StatusBadRequest, msg: "decode OTLP ExportLogsServiceRequest (application/json)"},
		{name: "short trace ID in JSON", path: TracesPath, body: []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"abcd","spanId":"eee19b7ec3c1b174"}]}]}]}`),
			headers: []string{"Content-Type", contentJSON}, status: http.StatusBadRequest, msg: "decode OTLP ExportTraceServiceRequest"},
		{name: "bad tenant", path: TracesPath, body: traces, headers: []string{"Content-Type", contentProtobuf, "X-Scope-OrgID", "../etc"},
			status: http.StatusBadRequest, msg: "invalid tenant ID"},
		{name: "bad gzip", path: TracesPath, body: []byte("not gzip"), headers: []string{"Content-Type", contentProtobuf, "Content-Encoding", "gzip"},
			status: http.StatusBadRequest, msg: "request body: decompress"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newEventsServer(t, nil, tc.opts)
			resp, b := s.post(t, tc.path, tc.body, tc.headers...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			msg := string(b)
			if ct := resp.Header.Get("Content-Type"); ct == contentProtobuf || ct == contentJSON {
				msg = statusMessage(t, ct, b).GetMessage()
			}
			if !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q does not say %q", msg, tc.msg)
			}
			if s.rec.Calls() != 0 {
				t.Errorf("storage called %d times for a refused request", s.rec.Calls())
			}
		})
	}
}

func TestEventsHTTPMethod(t *testing.T) {
	s := newEventsServer(t, nil, Options{})
	resp, err := http.Get(s.url + LogsPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodPost {
		t.Errorf("GET: status %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestEventsHTTPStorageUnavailable(t *testing.T) {
	for _, ct := range []string{contentProtobuf, contentJSON} {
		t.Run(ct, func(t *testing.T) {
			s := newEventsServer(t, nil, Options{})
			s.rec.Err = fmt.Errorf("%w: log write: no space left on device", storage.ErrUnavailable)
			resp, b := s.post(t, TracesPath, tracesBody(t, exampleTraces(), ct), "Content-Type", ct)
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" {
				t.Fatalf("status %d, Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
			}
			if msg := statusMessage(t, ct, b).GetMessage(); !strings.Contains(msg, "spans not stored, retry later") || !strings.Contains(msg, "no space left") {
				t.Errorf("message %q", msg)
			}
		})
	}
	// Storage behind the writes: 429, as over the ingest rate.
	s := newEventsServer(t, nil, Options{})
	s.rec.Err = fmt.Errorf("%w: %w", storage.ErrUnavailable, storage.ErrBehind)
	resp, b := s.post(t, TracesPath, tracesBody(t, exampleTraces(), contentProtobuf), "Content-Type", contentProtobuf)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("behind: status %d, Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	// Another failure is the server's: 500, not retried.
	s = newEventsServer(t, nil, Options{})
	s.rec.Err = errors.New("something else")
	resp, b = s.post(t, TracesPath, tracesBody(t, exampleTraces(), contentProtobuf), "Content-Type", contentProtobuf)
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("status %d: %s", resp.StatusCode, b)
	}
}

// TestEventsHTTPRateLimit holds events to the tenants' ingest rate, as
// profiles are: the body as sent counts, and past the burst the answer is
// 429 with Retry-After.
func TestEventsHTTPRateLimit(t *testing.T) {
	body := tracesBody(t, exampleTraces(), contentProtobuf)
	lim := limits.Defaults()
	lim.IngestRateBytes = 1
	lim.IngestBurstBytes = int64(len(body)) + 10
	ing := ingest.New(nil, ingest.ProfileLimits{}, nil)
	ing.UseLimits(limits.NewOverrides(lim), nil)
	s := newEventsServer(t, ing, Options{})
	resp, b := s.post(t, TracesPath, body, "Content-Type", contentProtobuf, "X-Scope-OrgID", "fast")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("first request: status %d: %s", resp.StatusCode, b)
	}
	resp, b = s.post(t, LogsPath, body, "Content-Type", contentProtobuf, "X-Scope-OrgID", "fast")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second request: status %d, Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	if msg := statusMessage(t, contentProtobuf, b).GetMessage(); !strings.Contains(msg, "over its ingest rate") {
		t.Errorf("message %q", msg)
	}
	// Another tenant has a bucket of its own.
	resp, b = s.post(t, TracesPath, body, "Content-Type", contentProtobuf, "X-Scope-OrgID", "slow")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("other tenant: status %d: %s", resp.StatusCode, b)
	}
}

func logsBody(t *testing.T, ld plog.Logs, ct string) []byte {
	t.Helper()
	req := plogotlp.NewExportRequestFromLogs(ld)
	var b []byte
	var err error
	if ct == contentJSON {
		b, err = req.MarshalJSON()
	} else {
		b, err = req.MarshalProto()
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLogsHTTP(t *testing.T) {
	for _, ct := range []string{contentProtobuf, contentJSON} {
		t.Run(ct, func(t *testing.T) {
			s := newEventsServer(t, nil, Options{})
			resp, b := s.post(t, LogsPath, gzipped(t, logsBody(t, exampleLogs(), ct)), "Content-Type", ct, "Content-Encoding", "gzip")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			out := plogotlp.NewExportResponse()
			if ct == contentJSON {
				err := out.UnmarshalJSON(b)
				if err != nil {
					t.Fatal(err)
				}
			} else if err := out.UnmarshalProto(b); err != nil {
				t.Fatal(err)
			}
			ps := out.PartialSuccess()
			if ps.RejectedLogRecords() != 1 || !strings.Contains(ps.ErrorMessage(), "1 of 4 log records refused: resource_logs[0].scope_logs[0].log_records[3]: time_unix_nano") {
				t.Errorf("partial success %d %q", ps.RejectedLogRecords(), ps.ErrorMessage())
			}
			got := s.rec.Events("anonymous")
			if len(got) != 3 || got[0].Name != "cart.updated" || got[1].Name != "log" || got[0].ParentID != events.SpanID(childC) {
				t.Errorf("stored %+v", got)
			}
		})
	}
}
