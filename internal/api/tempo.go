package api

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/hearth-profiler/hearth/internal/events"
	"github.com/hearth-profiler/hearth/internal/events/traceql"
)

// Tempo's HTTP API over Hearth's spans, so that Grafana's Tempo data
// source reads them unchanged. Formats are Tempo's, as its server writes
// them: a trace is its protobuf message (in v2 wrapped in a
// TraceByIDResponse), or that message as protojson (IDs in base64, enums
// by name), under "batches" in v1 and "trace.resourceSpans" in v2; search
// answers name IDs in hex. Times in
// requests are Unix seconds. Errors are plain text with their status, as
// Tempo writes them.

// TempoPaths are the routes of Tempo's API Hearth serves, reads all.
var TempoPaths = []string{
	"GET /api/echo", "GET /api/status/buildinfo",
	"GET /api/traces/{id}", "GET /api/v2/traces/{id}",
	"GET /api/search",
	"GET /api/search/tags", "GET /api/v2/search/tags",
	"GET /api/search/tag/{name}/values", "GET /api/v2/search/tag/{name}/values",
	"GET /api/metrics/query_range", "GET /api/metrics/query",
}

// Search bounds: Tempo's defaults and a cap on the traces one search holds.
const (
	tempoDefaultLimit = 20
	tempoMaxLimit     = 1000
	tempoDefaultSpss  = 3
	tempoMaxSpss      = 100
	tempoMaxTraces    = 100_000
)

func (a *API) registerTempo(mux Mux) {
	handlers := []func(http.ResponseWriter, *http.Request) error{
		a.tempoEcho, a.tempoBuildInfo, a.tempoTraceV1, a.tempoTraceV2, a.tempoSearch,
		a.tempoTagsV1, a.tempoTagsV2, a.tempoTagValuesV1, a.tempoTagValuesV2, a.tempoMetrics, a.tempoMetricsInstant,
	}
	for i, p := range TempoPaths {
		h := handlers[i]
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			err := a.runQuery(r, func(r *http.Request) error { return h(w, r) })
			if err != nil {
				status, _ := errorStatus(err)
				if status < 400 {
					status = http.StatusInternalServerError
				}
				if status >= 500 {
					a.logger.Error("request failed", "path", r.URL.Path, "err", err)
				}
				http.Error(w, err.Error(), status)
			}
		})
	}
}

func (a *API) tempoEcho(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, err := w.Write([]byte("echo"))
	return err
}

// tempoBuildInfo answers with Hearth's build, in Tempo's fields.
func (a *API) tempoBuildInfo(w http.ResponseWriter, _ *http.Request) error {
	return writeTempoJSON(w, map[string]string{"version": a.opts.Version, "revision": "", "branch": "",
		"buildUser": "", "buildDate": "", "goVersion": runtime.Version()})
}

func writeTempoJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(v)
}

// unixSeconds reads a Tempo time parameter: Unix seconds; def when empty.
func unixSeconds(r *http.Request, name string, def time.Time) (time.Time, error) {
	s := r.FormValue(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, badRequest("%s %q: want Unix seconds", name, s)
	}
	return time.Unix(n, 0), nil
}

// tempoRange reads start and end; end is the end of its second.
func (a *API) tempoRange(r *http.Request, back time.Duration) (time.Time, time.Time, error) {
	now := a.now()
	end, err := unixSeconds(r, "end", now)
	if err != nil {
		return end, end, err
	}
	start, err := unixSeconds(r, "start", end.Add(-back))
	if err != nil {
		return start, end, err
	}
	if r.FormValue("end") != "" {
		end = end.Add(time.Second)
	}
	if !end.After(start) {
		return start, end, badRequest("end (%s) must be after start (%s)", r.FormValue("end"), r.FormValue("start"))
	}
	return start, end, nil
}

// traceBounds reads a trace lookup's start and end, Unix seconds, as
// bounds in Unix nanoseconds, [start, end), end being the end of its
// second. Either left out leaves that side open, as in Tempo, which looks
// a trace up over all it holds: Grafana sends no range unless told to,
// and a link to a trace should open however old the trace is. where
// says, for a trace not found, where it was looked for.
func traceBounds(r *http.Request) (start, end int64, where string, err error) {
	start, end = math.MinInt64, math.MaxInt64
	var from, until time.Time
	if r.FormValue("start") != "" {
		if from, err = unixSeconds(r, "start", time.Time{}); err != nil {
			return 0, 0, "", err
		}
		start = from.UnixNano()
		where = " after " + from.UTC().Format(time.RFC3339)
	}
	if r.FormValue("end") != "" {
		if until, err = unixSeconds(r, "end", time.Time{}); err != nil {
			return 0, 0, "", err
		}
		until = until.Add(time.Second)
		end = until.UnixNano()
		where = " before " + until.UTC().Format(time.RFC3339)
	}
	if start != math.MinInt64 && end != math.MaxInt64 {
		if end <= start {
			return 0, 0, "", badRequest("end (%s) must not be before start (%s)", r.FormValue("end"), r.FormValue("start"))
		}
		where = " between " + from.UTC().Format(time.RFC3339) + " and " + until.UTC().Format(time.RFC3339)
	}
	return start, end, where, nil
}

// tempoTrace looks a trace up and writes it: in protobuf when the client
// asks for it, as Tempo's Trace message, wrapped into its
// TraceByIDResponse when wrap is set (v2); otherwise as JSON, with
// writeJSON.
func (a *API) tempoTrace(w http.ResponseWriter, r *http.Request, wrap bool, writeJSON func([]*tracepb.ResourceSpans) error) error {
	tenant, err := tenantOf(r)
	if err != nil {
		return err
	}
	id, err := events.ParseTraceID(r.PathValue("id"))
	if err != nil {
		return badRequest("%v", err)
	}
	start, end, where, err := traceBounds(r)
	if err != nil {
		return err
	}
	spans, err := a.opts.Events.Trace(r.Context(), tenant, id, start, end)
	if err != nil {
		return err
	}
	if len(spans) == 0 {
		return &apiError{http.StatusNotFound, "not_found", fmt.Sprintf("trace %s not found%s", id, where)}
	}
	rs := resourceSpans(spans)
	if !wantsProtobuf(r) {
		return writeJSON(rs)
	}
	b, err := traceMessage(rs)
	if err != nil {
		return fmt.Errorf("trace %s: %w", id, err)
	}
	if wrap {
		b = traceByIDResponse(b)
	}
	// Tempo answers both versions' protobuf with this type.
	w.Header().Set("Content-Type", "application/protobuf")
	_, err = w.Write(b)
	return err
}

// traceMessage encodes Tempo's Trace message (tempopb.Trace): the
// resource spans, field 1, repeated. Its ResourceSpans are OTLP's, field
// for field, so OTLP's Go types encode them.
func traceMessage(rs []*tracepb.ResourceSpans) ([]byte, error) {
	var b []byte
	for _, x := range rs {
		m, err := proto.Marshal(x)
		if err != nil {
			return nil, fmt.Errorf("encode resource spans: %w", err)
		}
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, m)
	}
	return b, nil
}

// traceByIDResponse wraps an encoded Trace message into Tempo's v2 answer,
// tempopb.TraceByIDResponse: the trace is field 1. Its other fields are
// left out, which proto3 reads as their zero values: metrics (2, Tempo's
// bytes inspected, which Hearth does not count), and status (3) COMPLETE
// with no message (4), since Hearth never cuts a trace short.
func traceByIDResponse(trace []byte) []byte {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	return protowire.AppendBytes(b, trace)
}

func wantsProtobuf(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/protobuf")
}

// tempoTraceV1 answers /api/traces/{id}: JSON {"batches": [...]}, or the
// bare Trace message in protobuf, as Tempo's v1 does.
func (a *API) tempoTraceV1(w http.ResponseWriter, r *http.Request) error {
	return a.tempoTrace(w, r, false, func(rs []*tracepb.ResourceSpans) error {
		return writeResourceSpans(w, `{"batches":`, rs, `}`)
	})
}

// tempoTraceV2 answers /api/v2/traces/{id}: the trace in Tempo's
// TraceByIDResponse, in JSON or protobuf. Grafana's Tempo data source
// asks for this one first, in protobuf, and decodes the wrapper.
func (a *API) tempoTraceV2(w http.ResponseWriter, r *http.Request) error {
	return a.tempoTrace(w, r, true, func(rs []*tracepb.ResourceSpans) error {
		return writeResourceSpans(w, `{"trace":{"resourceSpans":`, rs, `}}`)
	})
}

// writeResourceSpans writes rs as a protojson array between head and tail.
func writeResourceSpans(w http.ResponseWriter, head string, rs []*tracepb.ResourceSpans, tail string) error {
	var b bytes.Buffer
	b.WriteString(head + "[")
	for i, x := range rs {
		if i > 0 {
			b.WriteByte(',')
		}
		m, err := protojson.Marshal(x)
		if err != nil {
			return err
		}
		b.Write(m)
	}
	b.WriteString("]" + tail + "\n")
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(b.Bytes())
	return err
}

// The span attributes in which Hearth keeps a span's instrumentation
// scope (the OTLP converter puts them there); a trace's answer returns
// them to the scope. The scope's own attributes were merged into the
// span's and stay there.
const (
	scopeNameKey    = events.ScopeSpan + "otel.scope.name"
	scopeVersionKey = events.ScopeSpan + "otel.scope.version"
)

// resourceSpans groups a trace's spans by their resource and scope, as
// OTLP sends them.
func resourceSpans(spans []events.Event) []*tracepb.ResourceSpans {
	var out []*tracepb.ResourceSpans
	byKey := map[string]*tracepb.ResourceSpans{}
	scopes := map[*tracepb.ResourceSpans]map[[2]string]*tracepb.ScopeSpans{}
	for i := range spans {
		e := &spans[i]
		if e.SpanID.IsZero() {
			continue // a log record of the trace
		}
		res, key := resourceOf(e)
		rs := byKey[key]
		if rs == nil {
			rs = &tracepb.ResourceSpans{Resource: res}
			byKey[key] = rs
			scopes[rs] = map[[2]string]*tracepb.ScopeSpans{}
			out = append(out, rs)
		}
		var scope [2]string
		for _, at := range e.Attrs {
			switch at.Key {
			case scopeNameKey:
				scope[0] = at.Value.Text()
			case scopeVersionKey:
				scope[1] = at.Value.Text()
			}
		}
		ss := scopes[rs][scope]
		if ss == nil {
			ss = &tracepb.ScopeSpans{}
			if scope != [2]string{} {
				ss.Scope = &commonpb.InstrumentationScope{Name: scope[0], Version: scope[1]}
			}
			scopes[rs][scope] = ss
			rs.ScopeSpans = append(rs.ScopeSpans, ss)
		}
		ss.Spans = append(ss.Spans, spanOf(e))
	}
	return out
}

// resourceOf is an event's resource and a key that tells resources apart.
func resourceOf(e *events.Event) (*resourcepb.Resource, string) {
	res := &resourcepb.Resource{}
	var key strings.Builder
	if e.Service != "" {
		res.Attributes = append(res.Attributes, keyValue("service.name", events.String(e.Service)))
		key.WriteString(e.Service)
	}
	for _, at := range e.Attrs {
		if k, ok := strings.CutPrefix(at.Key, events.ScopeResource); ok {
			res.Attributes = append(res.Attributes, keyValue(k, at.Value))
			fmt.Fprintf(&key, "\x00%s\x00%d\x00%s\x00%d", k, at.Value.Type, at.Value.Str, at.Value.Num)
		}
	}
	return res, key.String()
}

func spanOf(e *events.Event) *tracepb.Span {
	s := &tracepb.Span{
		TraceId: e.TraceID[:], SpanId: e.SpanID[:], Name: e.Name,
		Kind:              tracepb.Span_SpanKind(e.Kind),
		StartTimeUnixNano: uint64(e.Start), EndTimeUnixNano: uint64(e.Start + e.Duration),
		Status: &tracepb.Status{Code: tracepb.Status_StatusCode(e.Status), Message: e.StatusMessage},
	}
	if !e.ParentID.IsZero() {
		s.ParentSpanId = e.ParentID[:]
	}
	for _, at := range e.Attrs {
		if at.Key == scopeNameKey || at.Key == scopeVersionKey {
			continue
		}
		if k, ok := strings.CutPrefix(at.Key, events.ScopeSpan); ok {
			s.Attributes = append(s.Attributes, keyValue(k, at.Value))
		}
	}
	for _, se := range e.SpanEvents {
		ev := &tracepb.Span_Event{TimeUnixNano: uint64(se.Time), Name: se.Name}
		for _, at := range se.Attrs {
			ev.Attributes = append(ev.Attributes, keyValue(at.Key, at.Value))
		}
		s.Events = append(s.Events, ev)
	}
	for _, l := range e.Links {
		ln := &tracepb.Span_Link{TraceId: l.TraceID[:], SpanId: l.SpanID[:]}
		for _, at := range l.Attrs {
			ln.Attributes = append(ln.Attributes, keyValue(at.Key, at.Value))
		}
		s.Links = append(s.Links, ln)
	}
	return s
}

func keyValue(k string, v events.Value) *commonpb.KeyValue {
	kv := &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{}}
	switch v.Type {
	case events.TypeInt:
		kv.Value.Value = &commonpb.AnyValue_IntValue{IntValue: int64(v.Num)}
	case events.TypeFloat:
		kv.Value.Value = &commonpb.AnyValue_DoubleValue{DoubleValue: math.Float64frombits(v.Num)}
	case events.TypeBool:
		kv.Value.Value = &commonpb.AnyValue_BoolValue{BoolValue: v.Num != 0}
	default:
		kv.Value.Value = &commonpb.AnyValue_StringValue{StringValue: v.Str}
	}
	return kv
}

// tempoSearchTrace is one trace of a search answer.
type tempoSearchTrace struct {
	TraceID           string                       `json:"traceID"`
	RootServiceName   string                       `json:"rootServiceName,omitempty"`
	RootTraceName     string                       `json:"rootTraceName,omitempty"`
	StartTimeUnixNano string                       `json:"startTimeUnixNano"`
	DurationMs        int64                        `json:"durationMs"`
	SpanSet           *tempoSpanSet                `json:"spanSet,omitempty"`
	SpanSets          []*tempoSpanSet              `json:"spanSets"`
	ServiceStats      map[string]tempoServiceStats `json:"serviceStats,omitempty"`
}

type tempoSpanSet struct {
	Spans   []tempoSpan `json:"spans"`
	Matched int         `json:"matched"`
}

type tempoSpan struct {
	SpanID            string          `json:"spanID"`
	Name              string          `json:"name,omitempty"`
	StartTimeUnixNano string          `json:"startTimeUnixNano"`
	DurationNanos     string          `json:"durationNanos"`
	Attributes        json.RawMessage `json:"attributes,omitempty"`
}

type tempoServiceStats struct {
	SpanCount  int `json:"spanCount"`
	ErrorCount int `json:"errorCount,omitempty"`
}

// hit is what a search keeps of one trace's matching spans.
type hit struct {
	id      events.TraceID
	matched int
	latest  int64
	spans   []tempoSpan
}

// tempoSearch answers a TraceQL span filter with the traces that hold
// matching spans, the most recent first: for each, its root, its
// duration, and up to spss of its matching spans with the attributes the
// filter names.
func (a *API) tempoSearch(w http.ResponseWriter, r *http.Request) error {
	tenant, err := tenantOf(r)
	if err != nil {
		return err
	}
	src := r.FormValue("q")
	if strings.TrimSpace(src) == "" {
		if r.FormValue("tags") != "" {
			return badRequest("tags: Hearth searches by TraceQL only; send q={ ... }")
		}
		src = "{ }"
	}
	f, err := traceql.Parse(src)
	if err != nil {
		return badRequest("invalid TraceQL query: %v", err)
	}
	limit, err := intParam(r, "limit", tempoDefaultLimit)
	if err != nil {
		return err
	}
	if limit < 1 || limit > tempoMaxLimit {
		return badRequest("limit: %d is outside 1 to %d", limit, tempoMaxLimit)
	}
	spss, err := intParam(r, "spss", tempoDefaultSpss)
	if err != nil {
		return err
	}
	if spss < 1 || spss > tempoMaxSpss {
		return badRequest("spss: %d is outside 1 to %d", spss, tempoMaxSpss)
	}
	start, end, err := a.tempoRange(r, time.Hour)
	if err != nil {
		return err
	}
	q := eventRequest{tenant: tenant, from: start, until: end, filter: f}
	cols := f.Columns()
	want := cols.Merge(events.Columns{Intrinsics: events.ColTraceID | events.ColSpanID | events.ColStart | events.ColDuration | events.ColName})
	hits := map[events.TraceID]*hit{}
	var inspected int64
	err = a.scanEvents(r.Context(), q, want, func(b *events.Batch, sel []bool) error {
		inspected += int64(b.Len)
		for i, ok := range sel {
			if !ok || b.SpanID[i].IsZero() {
				continue
			}
			h := hits[b.TraceID[i]]
			if h == nil {
				if len(hits) >= tempoMaxTraces {
					continue
				}
				h = &hit{id: b.TraceID[i]}
				hits[h.id] = h
			}
			h.matched++
			h.latest = max(h.latest, b.Start[i])
			if len(h.spans) < spss {
				h.spans = append(h.spans, tempoSpan{SpanID: b.SpanID[i].String(), Name: b.Name[i],
					StartTimeUnixNano: strconv.FormatInt(b.Start[i], 10), DurationNanos: strconv.FormatInt(b.Duration[i], 10),
					Attributes: filterAttrs(b, i, cols)})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	all := make([]*hit, 0, len(hits))
	for _, h := range hits {
		all = append(all, h)
	}
	slices.SortFunc(all, func(x, y *hit) int { return cmp.Or(cmp.Compare(y.latest, x.latest), bytes.Compare(x.id[:], y.id[:])) })
	all = all[:min(limit, len(all))]
	out := struct {
		Traces  []tempoSearchTrace `json:"traces"`
		Metrics map[string]any     `json:"metrics"`
	}{Traces: []tempoSearchTrace{}, Metrics: map[string]any{"inspectedSpans": strconv.FormatInt(inspected, 10)}}
	for _, h := range all {
		t, err := a.tempoSummary(r.Context(), tenant, h, start, end)
		if err != nil {
			return err
		}
		out.Traces = append(out.Traces, t)
	}
	return writeTempoJSON(w, out)
}

// tempoSummary completes a search hit with its trace's root and extent,
// read from the whole trace around the search's range.
func (a *API) tempoSummary(ctx context.Context, tenant string, h *hit, start, end time.Time) (tempoSearchTrace, error) {
	set := &tempoSpanSet{Spans: h.spans, Matched: h.matched}
	t := tempoSearchTrace{TraceID: h.id.String(), SpanSet: set, SpanSets: []*tempoSpanSet{set}, ServiceStats: map[string]tempoServiceStats{}}
	spans, err := a.opts.Events.Trace(ctx, tenant, h.id, start.Add(-SpanFilterLookback).UnixNano(), end.Add(SpanFilterLookback).UnixNano())
	if err != nil {
		return t, err
	}
	first, last := int64(math.MaxInt64), int64(math.MinInt64)
	var root *events.Event
	for i := range spans {
		s := &spans[i]
		if s.SpanID.IsZero() {
			continue
		}
		first, last = min(first, s.Start), max(last, s.Start+s.Duration)
		if s.ParentID.IsZero() && (root == nil || s.Start < root.Start) {
			root = s
		}
		st := t.ServiceStats[s.Service]
		st.SpanCount++
		if s.Status == events.StatusError {
			st.ErrorCount++
		}
		t.ServiceStats[s.Service] = st
	}
	if root != nil {
		t.RootServiceName, t.RootTraceName = root.Service, root.Name
	}
	if first <= last {
		t.StartTimeUnixNano = strconv.FormatInt(first, 10)
		t.DurationMs = (last - first) / int64(time.Millisecond)
	}
	return t, nil
}

// filterAttrs are the attributes a filter names, of row i, as OTLP
// key-values in protojson.
func filterAttrs(b *events.Batch, i int, cols events.Columns) json.RawMessage {
	var kvs []*commonpb.KeyValue
	if cols.Intrinsics&events.ColService != 0 && b.Service != nil {
		kvs = append(kvs, keyValue("service.name", events.String(b.Service[i])))
	}
	for _, k := range cols.Attrs {
		c := b.Attrs[k]
		if c == nil {
			continue
		}
		v := c.Value(i)
		if v.Type == events.TypeNone {
			continue
		}
		name := strings.TrimPrefix(strings.TrimPrefix(k, events.ScopeSpan), events.ScopeResource)
		kvs = append(kvs, keyValue(name, v))
	}
	if len(kvs) == 0 {
		return nil
	}
	var buf bytes.Buffer
	buf.WriteByte('[')
	for j, kv := range kvs {
		if j > 0 {
			buf.WriteByte(',')
		}
		m, err := protojson.Marshal(kv)
		if err != nil {
			return nil
		}
		buf.Write(m)
	}
	buf.WriteByte(']')
	return buf.Bytes()
}

// tempoIntrinsics are the intrinsics Hearth's filters take, as Tempo
// lists them.
var tempoIntrinsics = []string{"duration", "kind", "name", "status", "statusMessage", "span:id", "span:parentID", "trace:id"}

// tempoTags lists the attribute keys of the range by scope.
func (a *API) tempoTags(r *http.Request) (resource, span []string, err error) {
	tenant, err := tenantOf(r)
	if err != nil {
		return nil, nil, err
	}
	start, end, err := a.tempoRange(r, time.Hour)
	if err != nil {
		return nil, nil, err
	}
	attrs, err := a.opts.Events.EventAttributes(r.Context(), tenant, start.UnixNano(), end.UnixNano())
	if err != nil {
		return nil, nil, err
	}
	resource = []string{"service.name"}
	for _, at := range attrs {
		if k, ok := strings.CutPrefix(at.Key, events.ScopeResource); ok {
			resource = append(resource, k)
		} else if k, ok := strings.CutPrefix(at.Key, events.ScopeSpan); ok {
			span = append(span, k)
		}
	}
	slices.Sort(resource)
	slices.Sort(span)
	return slices.Compact(resource), slices.Compact(span), nil
}

func (a *API) tempoTagsV1(w http.ResponseWriter, r *http.Request) error {
	resource, span, err := a.tempoTags(r)
	if err != nil {
		return err
	}
	names := append(resource, span...)
	slices.Sort(names)
	return writeTempoJSON(w, map[string]any{"tagNames": slices.Compact(names)})
}

func (a *API) tempoTagsV2(w http.ResponseWriter, r *http.Request) error {
	resource, span, err := a.tempoTags(r)
	if err != nil {
		return err
	}
	type scope struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	var scopes []scope
	want := r.FormValue("scope")
	for _, s := range []scope{{"resource", resource}, {"span", span}, {"intrinsic", tempoIntrinsics}} {
		if want == "" || want == "all" || want == s.Name {
			if s.Tags == nil {
				s.Tags = []string{}
			}
			scopes = append(scopes, s)
		}
	}
	if scopes == nil {
		return badRequest("scope %q: want resource, span, intrinsic or all", want)
	}
	return writeTempoJSON(w, map[string]any{"scopes": scopes, "metrics": map[string]any{}})
}

// tempoValues are the distinct values of a field among the spans that the
// request's q selects, with Tempo's type names.
func (a *API) tempoValues(r *http.Request, field string) ([]events.Value, bool, error) {
	tenant, err := tenantOf(r)
	if err != nil {
		return nil, false, err
	}
	start, end, err := a.tempoRange(r, time.Hour)
	if err != nil {
		return nil, false, err
	}
	src := r.FormValue("q")
	if strings.TrimSpace(src) == "" {
		src = "{ }"
	}
	f, err := traceql.Parse(src)
	if err != nil {
		return nil, false, badRequest("invalid TraceQL query: %v", err)
	}
	cols, get, err := fieldReader(field)
	if err != nil {
		return nil, false, err
	}
	seen := map[events.Value]bool{}
	err = a.scanEvents(r.Context(), eventRequest{tenant: tenant, from: start, until: end, filter: f}, cols, func(b *events.Batch, sel []bool) error {
		for i, ok := range sel {
			if !ok || len(seen) >= maxDistinctValues {
				continue
			}
			if v := get(b, i); v.Type != events.TypeNone {
				seen[v] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	vals := make([]events.Value, 0, len(seen))
	for v := range seen {
		vals = append(vals, v)
	}
	slices.SortFunc(vals, func(x, y events.Value) int { return strings.Compare(x.Text(), y.Text()) })
	keyword := field == "status" || field == "kind" || field == "span:status" || field == "span:kind"
	return vals, keyword, nil
}

func (a *API) tempoTagValuesV1(w http.ResponseWriter, r *http.Request) error {
	vals, _, err := a.tempoValues(r, unscopedField(r.PathValue("name")))
	if err != nil {
		return err
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = v.Text()
	}
	return writeTempoJSON(w, map[string]any{"tagValues": out})
}

// unscopedField is a v1 tag name as a field: Tempo's v1 names carry no
// scope, and match span or resource attributes.
func unscopedField(name string) string {
	switch name {
	case "service.name":
		return "resource.service.name"
	case "name", "status", "kind", "statusMessage":
		return name
	}
	return "." + name
}

func (a *API) tempoTagValuesV2(w http.ResponseWriter, r *http.Request) error {
	vals, keyword, err := a.tempoValues(r, r.PathValue("name"))
	if err != nil {
		return err
	}
	type tagValue struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	}
	out := make([]tagValue, len(vals))
	for i, v := range vals {
		typ := v.Type.String()
		if keyword {
			typ = "keyword"
		}
		out[i] = tagValue{Type: typ, Value: v.Text()}
	}
	return writeTempoJSON(w, map[string]any{"tagValues": out, "metrics": map[string]any{}})
}
