package api

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/hearth-profiler/hearth/internal/events"
	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/otlp"
	"github.com/hearth-profiler/hearth/internal/query"
	"github.com/hearth-profiler/hearth/internal/storage"
	"github.com/hearth-profiler/hearth/internal/tenant"
)

const tempoTrace = "4bf92f3577b34da6a3ce929d0e0e4736"

// tempoAPI serves the API over a store that the spans of
// testdata/tempo/spans-otlp.json reached through Hearth's OTLP/HTTP
// endpoint, with the clock a minute after them.
func tempoAPI(t *testing.T) (base string, start time.Time) {
	t.Helper()
	base, start, _ = tempoAPIAt(t, time.Minute)
	return base, start
}

// tempoAPIAt is tempoAPI with the clock later after the spans' start, and
// the store.
func tempoAPIAt(t *testing.T, later time.Duration) (base string, start time.Time, db *storage.DB) {
	t.Helper()
	db, err := storage.Open(t.TempDir(), nil, storage.Options{Decode: ingest.Replay})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ing := ingest.New(db, ingest.DefaultProfileLimits(), nil)
	body, err := os.ReadFile("testdata/tempo/spans-otlp.json")
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/v1/traces", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	otlp.NewTracesHandler(db, ing, otlp.Options{}).ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("OTLP export: %d %s", rec.Code, rec.Body)
	}
	// The spans' start, from the request itself.
	var sent struct {
		ResourceSpans []struct {
			ScopeSpans []struct {
				Spans []struct {
					Start string `json:"startTimeUnixNano"`
				} `json:"spans"`
			} `json:"scopeSpans"`
		} `json:"resourceSpans"`
	}
	if err := json.Unmarshal(body, &sent); err != nil {
		t.Fatal(err)
	}
	ns, _ := strconv.ParseInt(sent.ResourceSpans[0].ScopeSpans[0].Spans[0].Start, 10, 64)
	start = time.Unix(0, ns)
	return tempoServe(t, db, ing, start.Add(later)), start, db
}

// tempoServe serves the API over db with the clock at now.
func tempoServe(t *testing.T, db *storage.DB, ing *ingest.Ingester, now time.Time) (base string) {
	t.Helper()
	a := New(ing, query.NewEngine(db), Options{Events: db, Version: "v-test"}, nil)
	a.now = func() time.Time { return now }
	mux := http.NewServeMux()
	a.Register(mux)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts.URL
}

func getRaw(t *testing.T, u, accept string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// spansOf flattens resource spans into spans that carry their resource's
// attributes and their scope's name and version, attributes by key: how
// two answers can be compared when they group spans differently. Tempo
// writes the "unset" status of a span without one as an empty status,
// Hearth with its code: the comparison reads them alike.
func spansOf(t *testing.T, rss []*tracepb.ResourceSpans) []*tracepb.Span {
	t.Helper()
	var out []*tracepb.Span
	for _, rs := range rss {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				s = proto.Clone(s).(*tracepb.Span)
				s.Attributes = append(s.Attributes, rs.Resource.Attributes...)
				if sc := ss.Scope; sc != nil {
					s.Attributes = append(s.Attributes,
						&commonpb.KeyValue{Key: "scope name", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: sc.Name}}},
						&commonpb.KeyValue{Key: "scope version", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: sc.Version}}})
				}
				slices.SortFunc(s.Attributes, func(a, b *commonpb.KeyValue) int { return strings.Compare(a.Key, b.Key) })
				if s.Status != nil && s.Status.Code == tracepb.Status_STATUS_CODE_UNSET && s.Status.Message == "" {
					s.Status = nil
				}
				out = append(out, s)
			}
		}
	}
	slices.SortFunc(out, func(a, b *tracepb.Span) int { return bytes.Compare(a.SpanId, b.SpanId) })
	return out
}

// decodeBatches reads a JSON answer's resource spans under path (the
// keys to the array).
func decodeBatches(t *testing.T, raw []byte, path ...string) []*tracepb.ResourceSpans {
	t.Helper()
	var node json.RawMessage = raw
	for _, k := range path {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(node, &m); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		node = m[k]
	}
	var items []json.RawMessage
	if err := json.Unmarshal(node, &items); err != nil {
		t.Fatalf("%v: %v in %.200s", path, err, raw)
	}
	var out []*tracepb.ResourceSpans
	for _, it := range items {
		rs := &tracepb.ResourceSpans{}
		if err := protojson.Unmarshal(it, rs); err != nil {
			t.Fatal(err)
		}
		out = append(out, rs)
	}
	return out
}

// decodeTraceProto reads Tempo's Trace message: field 1, resource spans.
func decodeTraceProto(t *testing.T, b []byte) []*tracepb.ResourceSpans {
	t.Helper()
	var out []*tracepb.ResourceSpans
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num != 1 || typ != protowire.BytesType {
			t.Fatalf("trace message: field %d type %d", num, typ)
		}
		b = b[n:]
		m, n := protowire.ConsumeBytes(b)
		if n < 0 {
			t.Fatal("trace message: truncated")
		}
		b = b[n:]
		rs := &tracepb.ResourceSpans{}
		if err := proto.Unmarshal(m, rs); err != nil {
			t.Fatal(err)
		}
		out = append(out, rs)
	}
	return out
}

// traceByID is Tempo's v2 answer for a trace, tempopb.TraceByIDResponse,
// as a client decodes it.
type traceByID struct {
	trace   []*tracepb.ResourceSpans
	metrics bool   // field 2 is there
	status  uint64 // 0 COMPLETE, 1 PARTIAL
	message string
}

// decodeTraceByID reads TraceByIDResponse field by field: trace (1, a
// Trace message), metrics (2), status (3, an enum) and message (4). Any
// other field, or one of the wrong wire type, fails the test: it is not
// the message Grafana decodes.
func decodeTraceByID(t *testing.T, b []byte) traceByID {
	t.Helper()
	var out traceByID
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("TraceByIDResponse: bad tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType, num == 2 && typ == protowire.BytesType, num == 4 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				t.Fatalf("TraceByIDResponse field %d: %v", num, protowire.ParseError(n))
			}
			b = b[n:]
			switch num {
			case 1:
				out.trace = append(out.trace, decodeTraceProto(t, v)...)
			case 2:
				out.metrics = true
			case 4:
				out.message = string(v)
			}
		case num == 3 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				t.Fatalf("TraceByIDResponse status: %v", protowire.ParseError(n))
			}
			b = b[n:]
			out.status = v
		default:
			t.Fatalf("TraceByIDResponse: unexpected field %d of wire type %d", num, typ)
		}
	}
	return out
}

// TestTempoTraceAsTempoAnswers compares Hearth's answers for a trace with
// Tempo's own for the same OTLP request (testdata/tempo/README.md).
func TestTempoTraceAsTempoAnswers(t *testing.T) {
	base, _ := tempoAPI(t)
	read := func(name string) []byte {
		b, err := os.ReadFile("testdata/tempo/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	want := spansOf(t, decodeBatches(t, read("trace-v1.json"), "batches"))
	if d := gocmp.Diff(want, spansOf(t, decodeBatches(t, read("trace-v2.json"), "trace", "resourceSpans")), protocmp.Transform()); d != "" {
		t.Fatalf("Tempo's own v1 and v2 answers differ:\n%s", d)
	}
	if d := gocmp.Diff(want, spansOf(t, decodeTraceProto(t, read("trace-v1.pb"))), protocmp.Transform()); d != "" {
		t.Fatalf("Tempo's own JSON and protobuf answers differ:\n%s", d)
	}
	tempoV2 := decodeTraceByID(t, read("trace-v2.pb"))
	if d := gocmp.Diff(want, spansOf(t, tempoV2.trace), protocmp.Transform()); d != "" {
		t.Fatalf("Tempo's own v2 protobuf answer differs from its JSON:\n%s", d)
	}
	if !tempoV2.metrics || tempoV2.status != 0 || tempoV2.message != "" {
		t.Fatalf("Tempo's own v2 protobuf answer: %+v", tempoV2)
	}
	if len(want) != 2 || len(want[0].Events) != 1 || len(want[0].Links) != 1 {
		t.Fatalf("fixture: %d spans", len(want))
	}
	for _, c := range []struct {
		path, accept string
		decode       func([]byte) []*tracepb.ResourceSpans
	}{
		{"/api/traces/" + tempoTrace, "", func(b []byte) []*tracepb.ResourceSpans { return decodeBatches(t, b, "batches") }},
		{"/api/v2/traces/" + tempoTrace, "", func(b []byte) []*tracepb.ResourceSpans { return decodeBatches(t, b, "trace", "resourceSpans") }},
		{"/api/traces/" + tempoTrace, "application/protobuf", func(b []byte) []*tracepb.ResourceSpans { return decodeTraceProto(t, b) }},
		{"/api/v2/traces/" + tempoTrace, "application/protobuf", func(b []byte) []*tracepb.ResourceSpans {
			v2 := decodeTraceByID(t, b)
			if v2.status != 0 || v2.message != "" {
				t.Errorf("v2 protobuf: status %d %q, want COMPLETE", v2.status, v2.message)
			}
			return v2.trace
		}},
	} {
		code, raw := getRaw(t, base+c.path, c.accept)
		if code != 200 {
			t.Fatalf("%s: %d %s", c.path, code, raw)
		}
		if d := gocmp.Diff(want, spansOf(t, c.decode(raw)), protocmp.Transform()); d != "" {
			t.Errorf("%s (%s): Hearth's spans differ from Tempo's (-Tempo +Hearth):\n%s", c.path, cmp.Or(c.accept, "json"), d)
		}
	}
	// Hearth's v2 answers agree with each other, and the protobuf ones
	// come with Tempo's content type.
	for _, path := range []string{"/api/traces/", "/api/v2/traces/"} {
		req, _ := http.NewRequest("GET", base+path+tempoTrace, nil)
		req.Header.Set("Accept", "application/protobuf")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "application/protobuf" {
			t.Errorf("%s in protobuf: Content-Type %q, want Tempo's application/protobuf", path, ct)
		}
	}
	_, v2json := getRaw(t, base+"/api/v2/traces/"+tempoTrace, "")
	_, v2pb := getRaw(t, base+"/api/v2/traces/"+tempoTrace, "application/protobuf")
	if d := gocmp.Diff(decodeBatches(t, v2json, "trace", "resourceSpans"), decodeTraceByID(t, v2pb).trace, protocmp.Transform()); d != "" {
		t.Errorf("Hearth's v2 answers, JSON and protobuf, differ (-JSON +protobuf):\n%s", d)
	}
	// The JSON is Tempo's mapping: IDs in base64, enums by name.
	_, raw := getRaw(t, base+"/api/traces/"+tempoTrace, "")
	for _, s := range []string{`"traceId":"S/kvNXezTaajzpKdDg5HNg=="`, `"kind":"SPAN_KIND_SERVER"`, `"code":"STATUS_CODE_ERROR"`} {
		if !bytes.Contains(raw, []byte(s)) {
			t.Errorf("answer lacks %s: %.300s", s, raw)
		}
	}
	if code, raw := getRaw(t, base+"/api/traces/0af7651916cd43dd8448eb211c80319c", ""); code != 404 || !bytes.Contains(raw, []byte("not found")) {
		t.Errorf("unknown trace: %d %s", code, raw)
	}
	if code, raw := getRaw(t, base+"/api/traces/xyz", ""); code != 400 {
		t.Errorf("malformed trace ID: %d %s", code, raw)
	}
}

// TestTempoOldTrace looks up traces a month old, as Grafana does, with
// no range: Tempo finds a trace wherever it is, and so must Hearth, in
// the head and in blocks. A range given still bounds the lookup.
func TestTempoOldTrace(t *testing.T) {
	// lookups asks for trace id, which starts at start and holds n spans,
	// with and without ranges around it.
	lookups := func(t *testing.T, base, id string, start time.Time, n int) {
		t.Helper()
		sec := func(d time.Duration) string { return strconv.FormatInt(start.Add(d).Unix(), 10) }
		for _, l := range []struct {
			query string
			code  int
		}{
			{"", 200},
			{"?start=" + sec(-time.Hour) + "&end=" + sec(time.Hour), 200},
			{"?start=" + sec(-time.Hour), 200},
			{"?end=" + sec(0), 200}, // end is the end of its second
			{"?start=" + sec(time.Hour) + "&end=" + sec(2*time.Hour), 404},
			{"?start=" + sec(time.Hour), 404},
			{"?end=" + sec(-time.Hour), 404},
			{"?start=" + sec(time.Hour) + "&end=" + sec(-time.Hour), 400},
		} {
			for _, path := range []string{"/api/traces/", "/api/v2/traces/"} {
				code, raw := getRaw(t, base+path+id+l.query, "application/protobuf")
				if code != l.code {
					t.Errorf("%s%s: %d %.200s, want %d", path, l.query, code, raw, l.code)
					continue
				}
				if code != 200 {
					continue
				}
				rs := decodeTraceProto(t, raw)
				if path != "/api/traces/" {
					rs = decodeTraceByID(t, raw).trace
				}
				if got := len(spansOf(t, rs)); got != n {
					t.Errorf("%s%s: %d spans, want %d", path, l.query, got, n)
				}
			}
		}
		if code, raw := getRaw(t, base+"/api/traces/0af7651916cd43dd8448eb211c80319c", ""); code != 404 ||
			string(raw) != "trace 0af7651916cd43dd8448eb211c80319c not found\n" {
			t.Errorf("unknown trace over all time: %d %q", code, raw)
		}
	}
	t.Run("head", func(t *testing.T) {
		base, start, _ := tempoAPIAt(t, 30*24*time.Hour)
		lookups(t, base, tempoTrace, start, 2)
	})
	t.Run("block", func(t *testing.T) {
		db, err := storage.Open(t.TempDir(), nil, storage.Options{Decode: ingest.Replay})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
		start := now.Add(-30 * 24 * time.Hour)
		id, _ := events.ParseTraceID(tempoTrace)
		spans := []events.Event{
			{Start: start.UnixNano(), Duration: int64(time.Second), Service: "shop", Name: "POST /checkout",
				TraceID: id, SpanID: events.SpanID{1}, Kind: events.KindServer},
			{Start: start.Add(time.Millisecond).UnixNano(), Duration: int64(time.Millisecond), Service: "shop", Name: "price cart",
				TraceID: id, SpanID: events.SpanID{2}, ParentID: events.SpanID{1}},
		}
		if err := db.AppendEvents(context.Background(), tenant.Default, spans); err != nil {
			t.Fatal(err)
		}
		if err := db.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := db.Stats().Blocks; n != 1 {
			t.Fatalf("%d blocks after the flush, want the trace in 1", n)
		}
		lookups(t, tempoServe(t, db, ingest.New(db, ingest.DefaultProfileLimits(), nil), now), tempoTrace, start, 2)
	})
}

func TestTempoSearchAndTags(t *testing.T) {
	base, start := tempoAPI(t)
	rng := "&start=" + strconv.FormatInt(start.Add(-time.Minute).Unix(), 10) + "&end=" + strconv.FormatInt(start.Add(time.Minute).Unix(), 10)

	if code, raw := getRaw(t, base+"/api/echo", ""); code != 200 || string(raw) != "echo" {
		t.Errorf("echo: %d %q", code, raw)
	}
	var bi map[string]string
	_, raw := getRaw(t, base+"/api/status/buildinfo", "")
	if err := json.Unmarshal(raw, &bi); err != nil || bi["version"] != "v-test" || !strings.HasPrefix(bi["goVersion"], "go") {
		t.Errorf("buildinfo: %s", raw)
	}

	var res struct {
		Traces []struct {
			TraceID           string `json:"traceID"`
			RootServiceName   string `json:"rootServiceName"`
			RootTraceName     string `json:"rootTraceName"`
			StartTimeUnixNano string `json:"startTimeUnixNano"`
			DurationMs        int64  `json:"durationMs"`
			SpanSet           struct {
				Spans []struct {
					SpanID     string          `json:"spanID"`
					Attributes json.RawMessage `json:"attributes"`
				} `json:"spans"`
				Matched int `json:"matched"`
			} `json:"spanSet"`
			SpanSets     []json.RawMessage `json:"spanSets"`
			ServiceStats map[string]struct {
				SpanCount  int `json:"spanCount"`
				ErrorCount int `json:"errorCount"`
			} `json:"serviceStats"`
		} `json:"traces"`
	}
	code, raw := getRaw(t, base+"/api/search?spss=1&q="+url.QueryEscape(`{ resource.service.name = "shop" && span.app.customer.tier = "enterprise" }`)+rng, "")
	if code != 200 {
		t.Fatalf("search: %d %s", code, raw)
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Traces) != 1 {
		t.Fatalf("search: %s", raw)
	}
	tr := res.Traces[0]
	// Tempo's answer for the same search named the root, the trace's
	// start and 500 ms, and counted one error among the shop's 2 spans.
	if tr.TraceID != tempoTrace || tr.RootServiceName != "shop" || tr.RootTraceName != "POST /checkout" ||
		tr.StartTimeUnixNano != strconv.FormatInt(start.UnixNano(), 10) || tr.DurationMs != 500 ||
		tr.SpanSet.Matched != 1 || len(tr.SpanSet.Spans) != 1 || tr.SpanSet.Spans[0].SpanID != "00f067aa0ba902b8" ||
		len(tr.SpanSets) != 1 || tr.ServiceStats["shop"].SpanCount != 2 || tr.ServiceStats["shop"].ErrorCount != 1 {
		t.Errorf("search answer: %s", raw)
	}
	if a := string(tr.SpanSet.Spans[0].Attributes); !strings.Contains(a, `"key":"app.customer.tier"`) || !strings.Contains(a, `"key":"service.name"`) {
		t.Errorf("the span set's attributes are not those the query names: %s", a)
	}
	code, raw = getRaw(t, base+"/api/search?q="+url.QueryEscape(`{ span.http.status_code >= 500 }`)+rng, "")
	if code != 200 || !bytes.Contains(raw, []byte(`"traces":[]`)) {
		t.Errorf("search matching nothing: %d %s", code, raw)
	}
	if code, raw := getRaw(t, base+"/api/search?q="+url.QueryEscape(`{ } >> { }`), ""); code != 400 || !bytes.Contains(raw, []byte("invalid TraceQL query")) {
		t.Errorf("unsupported TraceQL: %d %s", code, raw)
	}

	var tags struct {
		Scopes []struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		} `json:"scopes"`
	}
	_, raw = getRaw(t, base+"/api/v2/search/tags?"+rng[1:], "")
	if err := json.Unmarshal(raw, &tags); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, s := range tags.Scopes {
		got[s.Name] = s.Tags
	}
	if !slices.Contains(got["resource"], "k8s.namespace") || !slices.Contains(got["resource"], "service.name") ||
		!slices.Contains(got["span"], "http.status_code") || !slices.Contains(got["span"], "app.customer.tier") || !slices.Contains(got["intrinsic"], "duration") {
		t.Errorf("tags: %s", raw)
	}
	_, raw = getRaw(t, base+"/api/search/tags?"+rng[1:], "")
	if !bytes.Contains(raw, []byte(`"http.route"`)) || !bytes.Contains(raw, []byte(`"tagNames"`)) {
		t.Errorf("v1 tags: %s", raw)
	}
	for _, c := range []struct{ path, want string }{
		{"/api/v2/search/tag/resource.service.name/values", `{"type":"string","value":"shop"}`},
		{"/api/v2/search/tag/span.http.status_code/values", `{"type":"int","value":"200"}`},
		{"/api/v2/search/tag/status/values", `{"type":"keyword","value":"error"}`},
		{"/api/search/tag/service.name/values", `"tagValues":["shop"]`},
		{"/api/search/tag/http.route/values", `"tagValues":["/checkout"]`},
	} {
		code, raw := getRaw(t, base+c.path+"?"+rng[1:], "")
		if code != 200 || !bytes.Contains(raw, []byte(c.want)) {
			t.Errorf("%s: %d %s, want %s", c.path, code, raw, c.want)
		}
	}
}

func TestTempoMetrics(t *testing.T) {
	base, start := tempoAPI(t)
	from := start.Truncate(time.Minute).Add(-time.Minute)
	rng := "&start=" + strconv.FormatInt(from.Unix(), 10) + "&end=" + strconv.FormatInt(from.Add(3*time.Minute).Unix(), 10) + "&step=60s"
	type series struct {
		Labels []struct {
			Key   string          `json:"key"`
			Value json.RawMessage `json:"value"`
		} `json:"labels"`
		Samples    []sample `json:"samples"`
		PromLabels string   `json:"promLabels"`
	}
	get := func(q string) []series {
		t.Helper()
		code, raw := getRaw(t, base+"/api/metrics/query_range?q="+url.QueryEscape(q)+rng, "")
		if code != 200 {
			t.Fatalf("%s: %d %s", q, code, raw)
		}
		var res struct{ Series []series }
		if err := json.Unmarshal(raw, &res); err != nil {
			t.Fatal(err)
		}
		return res.Series
	}
	// The step holding the spans' start.
	at := strconv.FormatInt(start.Truncate(time.Minute).UnixMilli(), 10)
	valueAt := func(s series) float64 {
		for _, x := range s.Samples {
			if x.TimestampMs == at {
				return x.Value
			}
		}
		return -1
	}
	byName := get(`{ resource.service.name = "shop" } | count_over_time() by (name)`)
	got := map[string]float64{}
	for _, s := range byName {
		got[s.PromLabels] = valueAt(s)
	}
	if !gocmp.Equal(got, map[string]float64{`{name="POST /checkout"}`: 1, `{name="price cart"}`: 1}) {
		t.Errorf("count_over_time by name: %v", got)
	}
	if s := get(`{ } | rate()`); len(s) != 1 || math.Abs(valueAt(s[0])-2.0/60) > 1e-9 || s[0].PromLabels != `{__name__="rate"}` {
		t.Errorf("rate: %+v", s)
	}
	// As Tempo's: a count of no span is 0 in every step, not no series.
	if s := get(`{ span.http.status_code >= 500 } | count_over_time()`); len(s) != 1 || len(s[0].Samples) != 3 ||
		slices.ContainsFunc(s[0].Samples, func(x sample) bool { return x.Value != 0 }) {
		t.Errorf("count of nothing: %+v", s)
	}
	// Durations in seconds, as Tempo gives them: the checkout took 500 ms.
	if s := get(`{ kind = server } | quantile_over_time(duration, 0.5)`); len(s) != 1 || math.Abs(valueAt(s[0])-0.5) > 0.02 ||
		len(s[0].Labels) != 1 || s[0].Labels[0].Key != "p" {
		t.Errorf("quantile_over_time: %+v", s)
	}
	if s := get(`{ } | max_over_time(duration)`); len(s) != 1 || math.Abs(valueAt(s[0])-0.5) > 0.02 {
		t.Errorf("max_over_time: %+v", s)
	}
	var buckets float64
	for _, s := range get(`{ } | histogram_over_time(duration)`) {
		if len(s.Labels) != 1 || s.Labels[0].Key != "__bucket" {
			t.Errorf("histogram series labels: %+v", s.Labels)
		}
		buckets += valueAt(s)
	}
	if buckets != 2 {
		t.Errorf("histogram: %v spans in buckets, want 2", buckets)
	}
	for _, bad := range []string{`{ } | count() > 2`, `{ } | rate() | topk(5)`, `{ } | quantile_over_time(duration, 0.123)`, `{ }`, `{ } | rate(duration)`} {
		code, raw := getRaw(t, base+"/api/metrics/query_range?q="+url.QueryEscape(bad)+rng, "")
		if code != 400 || !bytes.Contains(raw, []byte("invalid TraceQL metrics query")) {
			t.Errorf("%s: %d %s", bad, code, raw)
		}
	}
}

// instantAnswer is Tempo's QueryInstantResponse in JSON, every field its
// tempo.proto gives it in the version Grafana's data source builds
// against: decoded with unknown fields refused, as Grafana decodes it.
type instantAnswer struct {
	Series []struct {
		Labels []json.RawMessage `json:"labels"`
		Value  float64           `json:"value"`
	} `json:"series"`
	Metrics struct {
		InspectedTraces uint32 `json:"inspectedTraces"`
		InspectedBytes  string `json:"inspectedBytes"`
		TotalBlocks     uint32 `json:"totalBlocks"`
		CompletedJobs   uint32 `json:"completedJobs"`
		TotalJobs       uint32 `json:"totalJobs"`
		TotalBlockBytes string `json:"totalBlockBytes"`
		InspectedSpans  string `json:"inspectedSpans"`
	} `json:"metrics"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// instantValues reads an instant answer strictly into its series' values
// by their labels, each label an OTLP key-value in protojson (which
// refuses unknown fields too), written as text.
func instantValues(t *testing.T, raw []byte) map[string]float64 {
	t.Helper()
	var a instantAnswer
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("not Tempo's QueryInstantResponse: %v in %s", err, raw)
	}
	out := map[string]float64{}
	for _, s := range a.Series {
		out[labelText(t, s.Labels)] = s.Value
	}
	return out
}

// labelText writes a series' labels, OTLP key-values in protojson, as
// text that tells their types apart.
func labelText(t *testing.T, labels []json.RawMessage) string {
	t.Helper()
	var parts []string
	for _, l := range labels {
		kv := &commonpb.KeyValue{}
		if err := protojson.Unmarshal(l, kv); err != nil {
			t.Fatalf("label %s: %v", l, err)
		}
		var v string
		switch x := kv.Value.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			v = strconv.Quote(x.StringValue)
		case *commonpb.AnyValue_DoubleValue:
			v = "double " + strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
		case *commonpb.AnyValue_IntValue:
			v = "int " + strconv.FormatInt(x.IntValue, 10)
		case *commonpb.AnyValue_BoolValue:
			v = "bool " + strconv.FormatBool(x.BoolValue)
		default:
			v = fmt.Sprintf("%T", x)
		}
		parts = append(parts, kv.Key+"="+v)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// TestTempoMetricsInstant compares /api/metrics/query with Tempo's own
// answers for the same spans and range (testdata/tempo/README.md), and
// with what Hearth's query_range gives in one step over that range.
func TestTempoMetricsInstant(t *testing.T) {
	base, start := tempoAPI(t)
	// Tempo's answers are over the 5 minutes that hold the spans.
	from := start.Truncate(5 * time.Minute)
	rng := "&start=" + strconv.FormatInt(from.Unix(), 10) + "&end=" + strconv.FormatInt(from.Add(5*time.Minute).Unix(), 10)
	instant := func(q string) map[string]float64 {
		t.Helper()
		code, raw := getRaw(t, base+"/api/metrics/query?q="+url.QueryEscape(q)+rng, "")
		if code != 200 {
			t.Fatalf("%s: %d %s", q, code, raw)
		}
		return instantValues(t, raw)
	}

	for _, c := range []struct {
		q, file string
		// near says Hearth's value v stands for Tempo's w.
		near func(v, w float64) bool
	}{
		{`{ resource.service.name = "shop" } | count_over_time() by (name)`, "metrics-instant-count-by-name.json", nil},
		{`{ } | rate()`, "metrics-instant-rate.json", nil},
		{`{ } | max_over_time(duration)`, "metrics-instant-max.json", nil},
		{`{ span.http.status_code >= 500 } | rate()`, "metrics-instant-rate-none.json", nil},
		// Tempo's quantiles are the upper bounds of its power-of-two
		// buckets: Hearth's must fall in the same bucket.
		{`{ kind = server } | quantile_over_time(duration, 0.5)`, "metrics-instant-quantile.json", func(v, w float64) bool { return v > w/2 && v <= w }},
	} {
		raw, err := os.ReadFile("testdata/tempo/" + c.file)
		if err != nil {
			t.Fatal(err)
		}
		want, got := instantValues(t, raw), instant(c.q)
		if len(want) == 0 {
			t.Fatalf("%s: Tempo's answer has no series", c.file)
		}
		near := c.near
		if near == nil {
			near = func(v, w float64) bool { return math.Abs(v-w) <= 1e-12*math.Abs(w) }
		}
		same := len(got) == len(want)
		for k, w := range want {
			v, ok := got[k]
			same = same && ok && near(v, w)
		}
		if !same {
			t.Errorf("%s: Hearth %v, Tempo %v", c.q, got, want)
		}
	}

	// The same, over the same range, as query_range's one step.
	for _, c := range []struct {
		q      string
		series int
	}{
		{`{ resource.service.name = "shop" } | count_over_time() by (name)`, 2},
		{`{ } | rate() by (resource.service.name, kind)`, 2},
		{`{ } | quantile_over_time(duration, 0.5, 0.9, 0.99)`, 3},
		{`{ } | avg_over_time(duration) by (name)`, 2},
		{`{ } | sum_over_time(duration)`, 1},
		{`{ } | min_over_time(duration)`, 1},
		{`{ } | histogram_over_time(duration)`, 2}, // 200 and 500 ms
		{`{ span.http.status_code >= 500 } | count_over_time()`, 1},
		{`{ span.http.status_code >= 500 } | max_over_time(duration)`, 0},
	} {
		q := c.q
		code, raw := getRaw(t, base+"/api/metrics/query_range?q="+url.QueryEscape(q)+rng+"&step=5m", "")
		if code != 200 {
			t.Fatalf("%s: %d %s", q, code, raw)
		}
		var res struct {
			Series []struct {
				Labels  []json.RawMessage `json:"labels"`
				Samples []sample          `json:"samples"`
			} `json:"series"`
		}
		if err := json.Unmarshal(raw, &res); err != nil {
			t.Fatal(err)
		}
		want := map[string]float64{}
		for _, s := range res.Series {
			for _, x := range s.Samples {
				if x.TimestampMs != strconv.FormatInt(from.UnixMilli(), 10) {
					t.Fatalf("%s: query_range has a sample at %s, out of its one step %d", q, x.TimestampMs, from.UnixMilli())
				}
				want[labelText(t, s.Labels)] = x.Value
			}
		}
		if got := instant(q); len(got) != c.series || !gocmp.Equal(got, want) {
			t.Errorf("%s: instant %v, query_range %v, want %d series", q, got, want, c.series)
		}
	}

	// Grafana sends q; Tempo also reads query. Without a range, the last
	// hour.
	code, raw := getRaw(t, base+"/api/metrics/query?query="+url.QueryEscape(`{ } | count_over_time()`), "")
	if got := instantValues(t, raw); code != 200 || !gocmp.Equal(got, map[string]float64{`{__name__="count_over_time"}`: 2}) {
		t.Errorf("count over the last hour: %d %v", code, got)
	}
	for _, bad := range []string{`{ } | count() > 2`, `{ } | rate() | topk(5)`, `{ } | quantile_over_time(duration, 0.123)`, `{ }`, `{ } | rate(duration)`, ``} {
		code, raw := getRaw(t, base+"/api/metrics/query?q="+url.QueryEscape(bad)+rng, "")
		if code != 400 || !bytes.Contains(raw, []byte("invalid TraceQL metrics query")) {
			t.Errorf("%q: %d %s", bad, code, raw)
		}
	}
	if code, raw := getRaw(t, base+"/api/metrics/query?q="+url.QueryEscape(`{ } | rate()`)+"&start=20&end=10", ""); code != 400 {
		t.Errorf("end before start: %d %s", code, raw)
	}
}
