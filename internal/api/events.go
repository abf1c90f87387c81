package api

import (
	"cmp"
	"container/heap"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hearth-profiler/hearth/internal/events"
	"github.com/hearth-profiler/hearth/internal/events/calc"
	"github.com/hearth-profiler/hearth/internal/events/traceql"
	"github.com/hearth-profiler/hearth/internal/query"
	"github.com/hearth-profiler/hearth/internal/selfevents"
	"github.com/hearth-profiler/hearth/internal/storage"
)

// EventStore is what the events API reads: storage.DB.
type EventStore interface {
	SelectEvents(ctx context.Context, tenantID string, q storage.EventQuery, fn func(*events.Batch) error) error
	Trace(ctx context.Context, tenantID string, id events.TraceID, start, end int64) ([]events.Event, error)
	EventAttributes(ctx context.Context, tenantID string, start, end int64) ([]storage.EventAttribute, error)
}

// EventQueryPaths are the events query routes, each served for GET and
// POST: reads, for the server's access table.
var EventQueryPaths = []string{
	"/api/v1/events/query", "/api/v1/events/compare",
	"/api/v1/events/search", "/api/v1/events/trace/{id}",
	"/api/v1/events/attributes", "/api/v1/events/attribute/{key}/values",
}

// registerEvents adds the events query routes.
func (a *API) registerEvents(mux Mux) {
	handlers := []func(*http.Request) (any, error){a.eventQuery, a.eventCompare, a.eventSearch, a.eventTrace, a.eventAttributes, a.eventAttributeValues}
	for _, m := range []string{"GET", "POST"} {
		for i, p := range EventQueryPaths {
			mux.HandleFunc(m+" "+p, a.wrap(a.limited(handlers[i])))
		}
	}
}

// eventRequest is the part every events query shares: tenant, time range
// and filter.
type eventRequest struct {
	tenant      string
	from, until time.Time
	filter      *traceql.Filter
}

func (a *API) eventRequest(r *http.Request) (eventRequest, error) {
	var q eventRequest
	var err error
	if q.tenant, err = tenantOf(r); err != nil {
		return q, err
	}
	now := a.now()
	if q.from, err = parseTime(r.FormValue("from"), now, now.Add(-time.Hour)); err != nil {
		return q, badRequest("from: %v", err)
	}
	if q.until, err = parseTime(r.FormValue("until"), now, now); err != nil {
		return q, badRequest("until: %v", err)
	}
	if !q.until.After(q.from) {
		return q, badRequest("until (%s) must be after from (%s)", q.until.Format(time.RFC3339), q.from.Format(time.RFC3339))
	}
	src := r.FormValue("q")
	if strings.TrimSpace(src) == "" {
		src = "{ }"
	}
	if q.filter, err = traceql.Parse(src); err != nil {
		return q, err
	}
	return q, nil
}

// scan calls fn with the batches of q's events, each with sel saying
// which rows match q's filter, reading the filter's columns and cols.
func (a *API) scanEvents(ctx context.Context, q eventRequest, cols events.Columns, fn func(b *events.Batch, sel []bool) error) error {
	var sel []bool
	return a.opts.Events.SelectEvents(ctx, q.tenant, storageQuery(q, cols.Merge(q.filter.Columns())), func(b *events.Batch) error {
		sel = grow(sel, b.Len)
		q.filter.Match(b, sel)
		return fn(b, sel)
	})
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// EventJSON is an event as the API writes it.
type EventJSON struct {
	TraceID       string          `json:"trace_id,omitempty"`
	SpanID        string          `json:"span_id,omitempty"`
	ParentSpanID  string          `json:"parent_span_id,omitempty"`
	Start         time.Time       `json:"start"`
	StartUnixNano int64           `json:"start_unix_nano"`
	DurationNanos int64           `json:"duration_ns"`
	Service       string          `json:"service"`
	Name          string          `json:"name"`
	Kind          string          `json:"kind"`
	Status        string          `json:"status"`
	StatusMessage string          `json:"status_message,omitempty"`
	Attributes    map[string]any  `json:"attributes"`
	SpanEvents    []SpanEventJSON `json:"span_events,omitempty"`
	Links         []LinkJSON      `json:"links,omitempty"`
	// Depth is the span's depth in its trace, in a trace's answer only.
	Depth *int `json:"depth,omitempty"`
}

// SpanEventJSON is a span's event.
type SpanEventJSON struct {
	Time       time.Time      `json:"time"`
	Name       string         `json:"name"`
	Attributes map[string]any `json:"attributes,omitempty"`
}

// LinkJSON is a span's link to another span.
type LinkJSON struct {
	TraceID    string         `json:"trace_id"`
	SpanID     string         `json:"span_id"`
	Attributes map[string]any `json:"attributes,omitempty"`
}

func attrsJSON(attrs []events.Attr) map[string]any {
	if len(attrs) == 0 {
		return nil
	}
	m := make(map[string]any, len(attrs))
	for _, at := range attrs {
		m[at.Key] = valueJSON(at.Value)
	}
	return m
}

func valueJSON(v events.Value) any {
	switch v.Type {
	case events.TypeString:
		return v.Str
	case events.TypeInt:
		return v.Int()
	case events.TypeFloat:
		return v.Float()
	case events.TypeBool:
		return v.Bool()
	}
	return nil
}

func idJSON[T interface {
	IsZero() bool
	String() string
}](id T) string {
	if id.IsZero() {
		return ""
	}
	return id.String()
}

func eventJSON(e *events.Event) EventJSON {
	out := EventJSON{
		TraceID: idJSON(e.TraceID), SpanID: idJSON(e.SpanID), ParentSpanID: idJSON(e.ParentID),
		Start: time.Unix(0, e.Start).UTC(), StartUnixNano: e.Start, DurationNanos: e.Duration,
		Service: e.Service, Name: e.Name, Kind: e.Kind.String(), Status: e.Status.String(),
		StatusMessage: e.StatusMessage, Attributes: attrsJSON(e.Attrs),
	}
	if out.Attributes == nil {
		out.Attributes = map[string]any{}
	}
	for _, se := range e.SpanEvents {
		out.SpanEvents = append(out.SpanEvents, SpanEventJSON{Time: time.Unix(0, se.Time).UTC(), Name: se.Name, Attributes: attrsJSON(se.Attrs)})
	}
	for _, l := range e.Links {
		out.Links = append(out.Links, LinkJSON{TraceID: l.TraceID.String(), SpanID: l.SpanID.String(), Attributes: attrsJSON(l.Attrs)})
	}
	return out
}

// EventSearchResult is the answer of /api/v1/events/search: the newest
// matching events, newest first.
type EventSearchResult struct {
	Events []EventJSON `json:"events"`
	// Matched counts every matching event in the range, Scanned every
	// event read.
	Matched int64 `json:"matched"`
	Scanned int64 `json:"scanned"`
}

const (
	defaultSearchLimit = 20
	maxSearchLimit     = 1000
)

func (a *API) eventSearch(r *http.Request) (any, error) {
	q, err := a.eventRequest(r)
	if err != nil {
		return nil, err
	}
	limit, err := intParam(r, "limit", defaultSearchLimit)
	if err != nil {
		return nil, err
	}
	if limit < 1 || limit > maxSearchLimit {
		return nil, badRequest("limit: %d is outside 1 to %d", limit, maxSearchLimit)
	}
	// Two passes: the first reads only the filter's columns and the
	// start times, to find the start of the limit-th newest match; the
	// second reads them again and picks the matches from there on, whose
	// other columns alone storage then reads. Reading every column of
	// every event in the range would cost the whole range's columns for
	// a page of answers.
	var res EventSearchResult
	newest := &int64Heap{} // the limit newest starts, oldest on top
	err = a.scanEvents(r.Context(), q, events.Columns{Intrinsics: events.ColStart}, func(b *events.Batch, sel []bool) error {
		res.Scanned += int64(b.Len)
		for i, ok := range sel {
			if !ok {
				continue
			}
			res.Matched++
			if newest.Len() < limit {
				heap.Push(newest, b.Start[i])
			} else if b.Start[i] > (*newest)[0] {
				(*newest)[0] = b.Start[i]
				heap.Fix(newest, 0)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var kept []events.Event
	if newest.Len() > 0 {
		tail := q
		tail.from = time.Unix(0, (*newest)[0])
		threshold := (*newest)[0]
		sq := storageQuery(tail, q.filter.Columns().Merge(events.Columns{Intrinsics: events.ColStart}))
		sq.Then = events.Columns{Intrinsics: events.AllIntrinsics | events.ColDetail, AllAttrs: true}
		var sel []bool
		sq.Pick = func(b *events.Batch) []int {
			sel = grow(sel, b.Len)
			q.filter.Match(b, sel)
			var rows []int
			for i, ok := range sel {
				if ok && b.Start[i] >= threshold {
					rows = append(rows, i)
				}
			}
			return rows
		}
		err = a.opts.Events.SelectEvents(r.Context(), q.tenant, sq, func(b *events.Batch) error {
			for i := range b.Len {
				kept = append(kept, b.Event(i))
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(kept, func(x, y events.Event) int { return cmp.Compare(y.Start, x.Start) })
	kept = kept[:min(len(kept), limit)]
	selfevents.Add(r.Context(), scanAttrs(res.Scanned, res.Matched)...)
	res.Events = make([]EventJSON, len(kept))
	for i := range kept {
		res.Events[i] = eventJSON(&kept[i])
	}
	return res, nil
}

// int64Heap is a min-heap of start times.
type int64Heap []int64

func (h int64Heap) Len() int           { return len(h) }
func (h int64Heap) Less(i, j int) bool { return h[i] < h[j] }
func (h int64Heap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *int64Heap) Push(x any)        { *h = append(*h, x.(int64)) }
func (h *int64Heap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// TraceResult is one trace: its spans in tree order (each parent before
// its children, siblings by start time), with their depth.
type TraceResult struct {
	TraceID string      `json:"trace_id"`
	Spans   []EventJSON `json:"spans"`
	// Start and DurationNanos span the whole trace.
	Start         time.Time `json:"start"`
	DurationNanos int64     `json:"duration_ns"`
	Services      []string  `json:"services"`
	Errors        int       `json:"errors"`
}

func (a *API) eventTrace(r *http.Request) (any, error) {
	tenant, err := tenantOf(r)
	if err != nil {
		return nil, err
	}
	id, err := events.ParseTraceID(r.PathValue("id"))
	if err != nil {
		return nil, badRequest("%v", err)
	}
	now := a.now()
	// A trace is looked up over a day by default: a link to it should
	// still work tomorrow morning.
	from, err := parseTime(r.FormValue("from"), now, now.Add(-24*time.Hour))
	if err != nil {
		return nil, badRequest("from: %v", err)
	}
	until, err := parseTime(r.FormValue("until"), now, now)
	if err != nil {
		return nil, badRequest("until: %v", err)
	}
	spans, err := a.opts.Events.Trace(r.Context(), tenant, id, from.UnixNano(), until.UnixNano())
	if err != nil {
		return nil, err
	}
	if len(spans) == 0 {
		return nil, &apiError{http.StatusNotFound, "not_found", "trace " + id.String() + " has no events between " +
			from.UTC().Format(time.RFC3339) + " and " + until.UTC().Format(time.RFC3339)}
	}
	return traceResult(id, spans), nil
}

// traceResult orders spans as a tree. Spans whose parent is not in the
// trace (the root, or children of spans not received) start trees of
// their own, in start order.
func traceResult(id events.TraceID, spans []events.Event) TraceResult {
	children := map[events.SpanID][]int{}
	have := map[events.SpanID]bool{}
	for _, s := range spans {
		if !s.SpanID.IsZero() {
			have[s.SpanID] = true
		}
	}
	var roots []int
	for i, s := range spans { // sorted by start
		if !s.ParentID.IsZero() && have[s.ParentID] && s.ParentID != s.SpanID {
			children[s.ParentID] = append(children[s.ParentID], i)
		} else {
			roots = append(roots, i)
		}
	}
	res := TraceResult{TraceID: id.String()}
	first, last := spans[0].Start, spans[0].Start
	services := map[string]bool{}
	visited := make([]bool, len(spans))
	var walk func(i, depth int)
	walk = func(i, depth int) {
		if visited[i] {
			return // a cycle of parent IDs: each span once
		}
		visited[i] = true
		s := &spans[i]
		j := eventJSON(s)
		d := depth
		j.Depth = &d
		res.Spans = append(res.Spans, j)
		first, last = min(first, s.Start), max(last, s.Start+s.Duration)
		services[s.Service] = true
		if s.Status == events.StatusError {
			res.Errors++
		}
		if !s.SpanID.IsZero() {
			for _, c := range children[s.SpanID] {
				walk(c, depth+1)
			}
		}
	}
	for _, i := range roots {
		walk(i, 0)
	}
	for i := range spans { // spans only reachable through a cycle
		walk(i, 0)
	}
	res.Start = time.Unix(0, first).UTC()
	res.DurationNanos = last - first
	for s := range services {
		res.Services = append(res.Services, s)
	}
	slices.Sort(res.Services)
	return res
}

// EventAttributeJSON is an attribute key with a type of its values.
type EventAttributeJSON struct {
	Key  string `json:"key"`
	Type string `json:"type"`
}

// eventIntrinsics are the fields every event has, as filters name them.
var eventIntrinsics = []EventAttributeJSON{
	{"name", "string"}, {"duration", "duration"}, {"status", "status"}, {"kind", "kind"},
	{"statusMessage", "string"}, {"resource.service.name", "string"},
	{"trace:id", "id"}, {"span:id", "id"}, {"span:parentID", "id"},
}

// EventAttributesResult lists what a filter can name.
type EventAttributesResult struct {
	Intrinsics []EventAttributeJSON `json:"intrinsics"`
	Attributes []EventAttributeJSON `json:"attributes"`
}

func (a *API) eventAttributes(r *http.Request) (any, error) {
	q, err := a.eventRequest(r)
	if err != nil {
		return nil, err
	}
	attrs, err := a.opts.Events.EventAttributes(r.Context(), q.tenant, q.from.UnixNano(), q.until.UnixNano())
	if err != nil {
		return nil, err
	}
	res := EventAttributesResult{Intrinsics: eventIntrinsics, Attributes: []EventAttributeJSON{}}
	for _, at := range attrs {
		res.Attributes = append(res.Attributes, EventAttributeJSON{Key: at.Key, Type: at.Type.String()})
	}
	return res, nil
}

// EventValueJSON is a value of an attribute and how many events have it.
type EventValueJSON struct {
	Value any   `json:"value"`
	Count int64 `json:"count"`
}

// EventValuesResult is the most common values of an attribute among the
// events a filter selects.
type EventValuesResult struct {
	Key    string           `json:"key"`
	Values []EventValueJSON `json:"values"`
	// Distinct counts the distinct values seen, up to maxDistinctValues.
	Distinct  int  `json:"distinct"`
	Truncated bool `json:"truncated"`
}

// maxDistinctValues bounds the values counted for completion: a key with
// a value per request (a user ID) must not fill memory.
const maxDistinctValues = 10000

func (a *API) eventAttributeValues(r *http.Request) (any, error) {
	q, err := a.eventRequest(r)
	if err != nil {
		return nil, err
	}
	key := r.PathValue("key")
	limit, err := intParam(r, "limit", 100)
	if err != nil {
		return nil, err
	}
	cols, get, err := fieldReader(key)
	if err != nil {
		return nil, err
	}
	counts := map[events.Value]int64{}
	truncated := false
	err = a.scanEvents(r.Context(), q, cols, func(b *events.Batch, sel []bool) error {
		for i, ok := range sel {
			if !ok {
				continue
			}
			v := get(b, i)
			if v.Type == events.TypeNone {
				continue
			}
			if _, seen := counts[v]; !seen && len(counts) >= maxDistinctValues {
				truncated = true
				continue
			}
			counts[v]++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res := EventValuesResult{Key: key, Distinct: len(counts), Truncated: truncated, Values: []EventValueJSON{}}
	vals := make([]events.Value, 0, len(counts))
	for v := range counts {
		vals = append(vals, v)
	}
	slices.SortFunc(vals, func(x, y events.Value) int {
		return cmp.Or(-cmp.Compare(counts[x], counts[y]), strings.Compare(x.Text(), y.Text()))
	})
	for _, v := range vals[:min(limit, len(vals))] {
		res.Values = append(res.Values, EventValueJSON{Value: valueJSON(v), Count: counts[v]})
	}
	return res, nil
}

// fieldReader returns the columns to read for a field as filters name it
// (an intrinsic or a scoped attribute key) and how to get a row's value.
func fieldReader(key string) (events.Columns, func(b *events.Batch, i int) events.Value, error) {
	switch key {
	case "name", "span:name":
		return events.Columns{Intrinsics: events.ColName}, func(b *events.Batch, i int) events.Value { return events.String(b.Name[i]) }, nil
	case "resource.service.name", "service":
		return events.Columns{Intrinsics: events.ColService}, func(b *events.Batch, i int) events.Value { return events.String(b.Service[i]) }, nil
	case "status", "span:status":
		return events.Columns{Intrinsics: events.ColStatus}, func(b *events.Batch, i int) events.Value { return events.String(b.Status[i].String()) }, nil
	case "kind", "span:kind":
		return events.Columns{Intrinsics: events.ColKind}, func(b *events.Batch, i int) events.Value { return events.String(b.Kind[i].String()) }, nil
	case "statusMessage", "span:statusMessage":
		return events.Columns{Intrinsics: events.ColStatusMessage}, func(b *events.Batch, i int) events.Value {
			if b.StatusMessage[i] == "" {
				return events.Value{}
			}
			return events.String(b.StatusMessage[i])
		}, nil
	}
	if strings.HasPrefix(key, events.ScopeSpan) || strings.HasPrefix(key, events.ScopeResource) {
		return events.Columns{Attrs: []string{key}}, func(b *events.Batch, i int) events.Value {
			if c := b.Attrs[key]; c != nil {
				return c.Value(i)
			}
			return events.Value{}
		}, nil
	}
	if rest, ok := strings.CutPrefix(key, "."); ok && rest != "" {
		// Unscoped, as filters read it: the span's attribute, else the
		// resource's.
		sk, rk := events.ScopeSpan+rest, events.ScopeResource+rest
		return events.Columns{Attrs: []string{sk, rk}}, func(b *events.Batch, i int) events.Value {
			if c := b.Attrs[sk]; c != nil {
				if v := c.Value(i); v.Type != events.TypeNone {
					return v
				}
			}
			if c := b.Attrs[rk]; c != nil {
				return c.Value(i)
			}
			return events.Value{}
		}, nil
	}
	return events.Columns{}, nil, badRequest("%q is not a field: name an intrinsic (name, status, kind, statusMessage, resource.service.name) or an attribute with its scope (span.http.route, resource.host.name, .http.route)", key)
}

// MaxSpanFilterSpans bounds the spans a profile query's span filter may
// select: their IDs are held in memory while the profiles are read.
const MaxSpanFilterSpans = 1_000_000

// SpanFilterLookback is how long before a profile query's range its span
// filter looks for spans: a request that started before the range may
// take samples inside it.
const SpanFilterLookback = time.Hour

// spanSelection resolves the span filter src of a profile query over q's
// tenant and range, from SpanFilterLookback before it: the IDs of the
// spans it selects.
func (a *API) spanSelection(ctx context.Context, q eventRequest, src string) (*query.SpanSelection, error) {
	if a.opts.Events == nil {
		return nil, badRequest("spans: this server keeps no events to filter profiles by")
	}
	f, err := traceql.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("spans: %w", err)
	}
	q.filter = f
	q.from = q.from.Add(-SpanFilterLookback)
	sel := &query.SpanSelection{Filter: src}
	var match []bool
	tooMany := errors.New("too many spans")
	err = a.opts.Events.SelectEvents(ctx, q.tenant, storageQuery(q, f.Columns().Merge(events.Columns{Intrinsics: events.ColSpanID})), func(b *events.Batch) error {
		match = grow(match, b.Len)
		f.Match(b, match)
		for i, ok := range match {
			if ok {
				sel.IDs.Add(binary.BigEndian.Uint64(b.SpanID[i][:]))
			}
		}
		if sel.IDs.Len() > MaxSpanFilterSpans {
			return tooMany
		}
		return nil
	})
	if errors.Is(err, tooMany) {
		return nil, badRequest("spans: the filter selects more than %d spans in the range; narrow it or the range", MaxSpanFilterSpans)
	}
	if err != nil {
		return nil, fmt.Errorf("spans: %w", err)
	}
	sel.Spans = sel.IDs.Len()
	return sel, nil
}

// storageQuery is the storage query of q's events: its range, skipping
// what holds none of the services q's filter names.
func storageQuery(q eventRequest, cols events.Columns) storage.EventQuery {
	sq := storage.EventQuery{Columns: cols, Start: q.from.UnixNano(), End: q.until.UnixNano()}
	if svcs, ok := q.filter.Services(); ok {
		sq.Services = svcs
	}
	return sq
}

// eventScanOf is the calc.Scan of q's events.
func (a *API) eventScanOf(q eventRequest) calc.Scan {
	return func(ctx context.Context, cols events.Columns, fn func(*events.Batch) error) error {
		return a.opts.Events.SelectEvents(ctx, q.tenant, storageQuery(q, cols), fn)
	}
}

// eventPickScanOf is the calc.PickScan of q's events.
func (a *API) eventPickScanOf(q eventRequest) calc.PickScan {
	return func(ctx context.Context, first events.Columns, pick func(*events.Batch) []int, then events.Columns, fn func(*events.Batch) error) error {
		sq := storageQuery(q, first)
		sq.Pick, sq.Then = pick, then
		return a.opts.Events.SelectEvents(ctx, q.tenant, sq, fn)
	}
}

func (a *API) eventQuery(r *http.Request) (any, error) {
	q, err := a.eventRequest(r)
	if err != nil {
		return nil, err
	}
	spec := calc.Spec{By: r.FormValue("by"), Calc: r.FormValue("calc"), Order: r.FormValue("order"), Having: r.FormValue("having")}
	if s := r.FormValue("step"); s != "" {
		if spec.Step, err = parseDuration(s); err != nil {
			return nil, badRequest("step: %v", err)
		}
	}
	if spec.Limit, err = intParam(r, "limit", 0); err != nil {
		return nil, err
	}
	if spec.Examples, err = intParam(r, "examples", 0); err != nil {
		return nil, err
	}
	cq, err := spec.Query()
	if err != nil {
		return nil, err
	}
	run, err := a.runningOf(r.Context(), r, q)
	if err != nil {
		return nil, err
	}
	scan, filter := a.eventScanOf(q), calc.Filter(q.filter)
	if run != nil {
		scan, filter = run.scan(scan), andFilter{q.filter, run}
	}
	res, err := calc.Run(r.Context(), scan, filter, cq, q.from, q.until)
	if err == nil {
		selfevents.Add(r.Context(), scanAttrs(res.Scanned, res.Matched)...)
		if run != nil {
			res.Warnings = append(res.Warnings, run.warning())
		}
	}
	return res, err
}

// scanAttrs describe what an events query read, for Hearth's own event
// of the request.
func scanAttrs(scanned, matched int64) []events.Attr {
	return []events.Attr{{Key: "hearth.events.scanned", Value: events.Int(scanned)},
		{Key: "hearth.events.matched", Value: events.Int(matched)}}
}

func (a *API) eventCompare(r *http.Request) (any, error) {
	q, err := a.eventRequest(r)
	if err != nil {
		return nil, err
	}
	var cq calc.CompareQuery
	if s := strings.TrimSpace(r.FormValue("selection")); s != "" {
		f, err := traceql.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("selection: %w", err)
		}
		cq.Selection = f
	}
	if s := strings.TrimSpace(r.FormValue("baseline")); s != "" {
		f, err := traceql.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("baseline: %w", err)
		}
		cq.Baseline = f
	}
	box, err := a.boxOf(r)
	if err != nil {
		return nil, err
	}
	cq.Box = box
	// running= selects the spans that ran a function, or narrows the
	// selection to them. A box is drawn on the heatmap of the spans that
	// running= keeps, so with a box both sides are of those spans: the
	// box's against the rest of them.
	run, err := a.runningOf(r.Context(), r, q)
	if err != nil {
		return nil, err
	}
	base := calc.Filter(q.filter)
	if run != nil {
		switch {
		case cq.Box != nil:
			base = andFilter{q.filter, run}
		case cq.Selection == nil:
			cq.Selection = run
		default:
			cq.Selection = andFilter{cq.Selection, run}
		}
	}
	if cq.Selection == nil && cq.Box == nil {
		return nil, badRequest("compare needs a selection: a filter in selection (e.g. selection={ duration > 800ms }), the spans running= a function, or a box (box_min_duration, box_max_duration, box_from, box_until)")
	}
	if cq.Values, err = intParam(r, "values", 0); err != nil {
		return nil, err
	}
	res, err := calc.ComparePicked(r.Context(), a.eventPickScanOf(q), base, cq, q.from, q.until)
	if err == nil {
		selfevents.Add(r.Context(), scanAttrs(res.Scanned, res.SelectionCount+res.BaselineCount)...)
		if run != nil {
			res.Warnings = append(res.Warnings, run.warning())
		}
	}
	return res, err
}

// boxOf reads the box of a compare request, nil when it has none.
func (a *API) boxOf(r *http.Request) (*calc.Box, error) {
	var b calc.Box
	set := false
	for _, p := range []struct {
		name string
		d    *time.Duration
	}{{"box_min_duration", &b.MinDuration}, {"box_max_duration", &b.MaxDuration}} {
		if s := r.FormValue(p.name); s != "" {
			d, err := parseEventDuration(s)
			if err != nil {
				return nil, badRequest("%s: %v", p.name, err)
			}
			*p.d, set = d, true
		}
	}
	now := a.now()
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"box_from", &b.From}, {"box_until", &b.Until}} {
		if s := r.FormValue(p.name); s != "" {
			t, err := parseTime(s, now, time.Time{})
			if err != nil {
				return nil, badRequest("%s: %v", p.name, err)
			}
			*p.t, set = t, true
		}
	}
	if !set {
		return nil, nil
	}
	return &b, nil
}

// parseEventDuration reads a duration with a unit (500ms, 1.5s), or a
// bare number of nanoseconds, which is what the UI's heatmap sends.
func parseEventDuration(s string) (time.Duration, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		return time.Duration(n), nil
	}
	return parseDuration(s)
}
