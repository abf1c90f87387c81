// Package querier serves querier.v1.QuerierService, the Connect API that
// Grafana's Pyroscope data source, the Profiles Drilldown app and
// profilecli read profiles through. Its messages and service are
// Pyroscope's generated Go code, so the wire format, the JSON mapping and
// the protocols (Connect with protobuf or JSON, gRPC, gRPC-Web) are the
// ones those clients are built from. Answers come from Hearth's query
// engine:
//
//   - a request's profile_typeID and label_selector are one Hearth
//     selector, TYPE{...}; start and end are unix milliseconds, and a
//     missing start or end means the last hour up to now;
//   - flame graphs are Pyroscope's: names[0] is "total", each level a row
//     of (x offset from the previous node's end, total, self, name)
//     tuples, a node's self before its children, children in name order,
//     and the nodes smaller than the max_nodes-th largest (the root not
//     counted, ties kept) folded into "other";
//   - span_selector keeps the samples of those spans and of the spans
//     under them (their local root), trace_id_selector those of the
//     traces, and stack_trace_selector those whose stacks begin with its
//     call site, and profile_id_selector the profiles it names;
//   - a profile ID is a stored profile's series (a stable hash of its
//     labels without the profile type) and time, written as a UUID: Hearth
//     keeps no IDs that clients sent, and hands out these in exemplars;
//
// Errors carry Pyroscope's codes: InvalidArgument for a request that
// cannot be answered as asked (a malformed selector or type, start after
// end, max_nodes past MaxNodes), ResourceExhausted for a query past its
// tenant's limits, Unimplemented for what Hearth does not answer yet.
package querier

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	googlev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/profile"
	"github.com/hearth-profiler/hearth/internal/query"
	"github.com/hearth-profiler/hearth/internal/query/parser"
	"github.com/hearth-profiler/hearth/internal/storage"
	"github.com/hearth-profiler/hearth/internal/tenant"
)

// MaxNodes is the largest max_nodes a flame graph request may ask for;
// Pyroscope refuses larger ones as well.
const MaxNodes = 1 << 20

// DefaultMaxNodes is the flame graph size when a request does not say.
const DefaultMaxNodes = 8192

// defaultRange is the time range of a request without start or end.
const defaultRange = time.Hour

// Bounds tells the time of a tenant's oldest and newest profile.
// *storage.DB implements it.
type Bounds interface {
	ProfileBounds(ctx context.Context, tenantID string) (minT, maxT int64, ok bool, err error)
}

// Options configure the service.
type Options struct {
	// Limits returns the query limits of a tenant; nil has none.
	Limits func(tenant string) query.Limits
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// handler implements querier.v1.QuerierService on the query engine.
type handler struct {
	eng    *query.Engine
	bounds Bounds
	opts   Options
}

var _ querierv1connect.QuerierServiceHandler = (*handler)(nil)

// NewHandler returns the handler of querier.v1.QuerierService and the path
// prefix to mount it at, "/querier.v1.QuerierService/". The tenant is the
// X-Scope-OrgID header.
func NewHandler(eng *query.Engine, bounds Bounds, opts Options, handlerOpts ...connect.HandlerOption) (string, http.Handler) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return querierv1connect.NewQuerierServiceHandler(&handler{eng: eng, bounds: bounds, opts: opts}, handlerOpts...)
}

// ServiceName is the fully qualified name of the service.
const ServiceName = querierv1connect.QuerierServiceName

// invalid is an InvalidArgument error with a message.
func invalid(format string, args ...any) error {
	return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf(format, args...))
}

// unimplemented says what Hearth does not answer yet.
func unimplemented(format string, args ...any) error {
	return connect.NewError(connect.CodeUnimplemented, fmt.Errorf(format, args...))
}

// connectError gives an engine error its Connect code.
func connectError(err error) error {
	if err == nil {
		return nil
	}
	if ce := new(connect.Error); errors.As(err, &ce) {
		return err
	}
	if _, ok := errors.AsType[*query.BadRequestError](err); ok {
		return connect.NewError(connect.CodeInvalidArgument, err)
	}
	if _, ok := errors.AsType[*parser.ParseError](err); ok {
		return connect.NewError(connect.CodeInvalidArgument, err)
	}
	if _, ok := errors.AsType[*query.LimitError](err); ok {
		return connect.NewError(connect.CodeResourceExhausted, err)
	}
	if _, ok := errors.AsType[*storage.IngesterError](err); ok {
		return connect.NewError(connect.CodeUnavailable, err)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	}
	return connect.NewError(connect.CodeInternal, err)
}

// base is what every request starts from: its tenant and limits.
func (h *handler) base(hdr http.Header) (query.Request, error) {
	t, err := tenant.Check(hdr.Get(tenant.Header))
	if err != nil {
		return query.Request{}, invalid("%v", err)
	}
	// Flame graphs are cut as Pyroscope cuts them.
	r := query.Request{Tenant: t, CutAbove: true}
	if h.opts.Limits != nil {
		r.Limits = h.opts.Limits(t)
	}
	return r, nil
}

// timeRange reads start and end in unix milliseconds.
func (h *handler) timeRange(r *query.Request, start, end int64) error {
	now := h.opts.Now()
	e := now
	if end != 0 {
		e = time.UnixMilli(end)
	}
	s := e.Add(-defaultRange)
	if start != 0 {
		s = time.UnixMilli(start)
	}
	if s.After(e) {
		return invalid("start (%d) is after end (%d)", start, end)
	}
	if !e.After(s) {
		// One instant: Hearth's ranges exclude their end.
		e = s.Add(time.Millisecond)
	}
	r.Start, r.End = s, e
	return nil
}

// selector joins a profile type ID and a label selector into one Hearth
// selector.
func selector(typeID, labelSelector string) (string, error) {
	ls := strings.TrimSpace(labelSelector)
	if ls == "" {
		ls = "{}"
	}
	if typeID == "" {
		return ls, nil
	}
	if _, err := profile.ParseType(typeID); err != nil || strings.Count(typeID, ":") != 4 {
		return "", invalid("profile_typeID %q: want <name>:<sample type>:<sample unit>:<period type>:<period unit>", typeID)
	}
	if !strings.HasPrefix(ls, "{") {
		return "", invalid("label_selector %q: want {name=\"value\", ...}", labelSelector)
	}
	return typeID + ls, nil
}

// stackRequest is the selection of a flame graph request.
func (h *handler) stackRequest(hdr http.Header, typeID, labelSelector string, start, end int64,
	stacks *typesv1.StackTraceSelector, profileIDs, traceIDs, spanIDs []string) (query.Request, error) {
	r, err := h.base(hdr)
	if err != nil {
		return r, err
	}
	if r.Query, err = selector(typeID, labelSelector); err != nil {
		return r, err
	}
	if err := h.timeRange(&r, start, end); err != nil {
		return r, err
	}
	if len(profileIDs) > 0 {
		keys := make([]storage.ProfileKey, 0, len(profileIDs))
		for _, id := range profileIDs {
			k, err := storage.ParseProfileID(id)
			if err != nil {
				return r, invalid("profile_id_selector: %v", err)
			}
			keys = append(keys, k)
		}
		r.Profiles = storage.NewProfileSet(keys...)
	}
	if stacks != nil {
		if err := unknownFields("stack_trace_selector", stacks); err != nil {
			return r, err
		}
	}
	if stacks != nil && stacks.GoPgo == nil {
		// As in Pyroscope, Go PGO trimming replaces the call site.
		for _, l := range stacks.CallSite {
			r.Filter.CallSite = append(r.Filter.CallSite, l.Name)
		}
	}
	if len(spanIDs) > 0 || len(traceIDs) > 0 {
		sel := &query.SpanSelection{Filter: "span_selector"}
		for _, s := range spanIDs {
			id, ok := storage.ParseSpanID(s)
			if !ok || len(s) != 16 {
				return r, invalid("span_selector: %q is not a span ID of 16 hex characters", s)
			}
			sel.IDs.Add(id)
		}
		if len(traceIDs) > 0 {
			sel.Filter = "trace_id_selector"
			if len(spanIDs) > 0 {
				sel.Filter = "span_selector, trace_id_selector"
			}
			sel.Traces = map[[16]byte]struct{}{}
			for _, s := range traceIDs {
				var t [16]byte
				if n, err := hex.Decode(t[:], []byte(s)); err != nil || n != 16 || len(s) != 32 {
					return r, invalid("trace_id_selector: %q is not a trace ID of 32 hex characters", s)
				}
				sel.Traces[t] = struct{}{}
			}
		}
		sel.Spans = sel.IDs.Len() + len(sel.Traces)
		r.Spans = sel
	}
	return r, nil
}

// unknownFields refuses a selector with fields newer than Hearth's copy
// of Pyroscope's API, such as the frame filter that Grafana's newest data
// source sends: ignoring a filter would answer with data not asked for.
// Protobuf keeps unknown fields; JSON requests have them dropped by the
// codec before they get here.
func unknownFields(name string, m proto.Message) error {
	raw := m.ProtoReflect().GetUnknown()
	var nums []string
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			break
		}
		raw = raw[n:]
		m := protowire.ConsumeFieldValue(num, typ, raw)
		if m < 0 {
			break
		}
		raw = raw[m:]
		if f := strconv.Itoa(int(num)); !slices.Contains(nums, f) {
			nums = append(nums, f)
		}
	}
	if len(nums) == 0 {
		return nil
	}
	return unimplemented("%s: field %s is newer than Hearth's copy of Pyroscope's API (a frame filter?); Hearth cannot apply it, and will not answer as if it had", name, strings.Join(nums, ", "))
}

// maxNodes reads a request's max_nodes.
func maxNodes(n *int64) (int, error) {
	if n == nil || *n == 0 {
		return DefaultMaxNodes, nil
	}
	if *n < 0 || *n > MaxNodes {
		return 0, invalid("max_nodes %d: want 1 to %d", *n, MaxNodes)
	}
	return int(*n), nil
}

// ProfileTypes lists the profile types with data in the range.
func (h *handler) ProfileTypes(ctx context.Context, req *connect.Request[querierv1.ProfileTypesRequest]) (*connect.Response[querierv1.ProfileTypesResponse], error) {
	r, err := h.base(req.Header())
	if err != nil {
		return nil, err
	}
	if err := h.timeRange(&r, req.Msg.Start, req.Msg.End); err != nil {
		return nil, err
	}
	types, err := h.eng.ProfileTypes(ctx, r)
	if err != nil {
		return nil, connectError(err)
	}
	out := &querierv1.ProfileTypesResponse{ProfileTypes: []*typesv1.ProfileType{}}
	for _, id := range types {
		if pt := profileType(id); pt != nil {
			out.ProfileTypes = append(out.ProfileTypes, pt)
		}
	}
	return connect.NewResponse(out), nil
}

// profileType splits a full type name into Pyroscope's message.
func profileType(id string) *typesv1.ProfileType {
	t, err := profile.ParseType(id)
	if err != nil {
		return nil
	}
	return &typesv1.ProfileType{ID: id, Name: t.Name, SampleType: t.SampleType, SampleUnit: t.SampleUnit,
		PeriodType: t.PeriodType, PeriodUnit: t.PeriodUnit}
}

// metaRequests turns a list of label selectors into requests, one each;
// none selects everything.
func (h *handler) metaRequests(hdr http.Header, matchers []string, start, end int64) ([]query.Request, error) {
	r, err := h.base(hdr)
	if err != nil {
		return nil, err
	}
	if err := h.timeRange(&r, start, end); err != nil {
		return nil, err
	}
	if len(matchers) == 0 {
		matchers = []string{"{}"}
	}
	out := make([]query.Request, 0, len(matchers))
	for _, m := range matchers {
		q := r
		q.Query = strings.TrimSpace(m)
		if q.Query == "" {
			q.Query = "{}"
		}
		out = append(out, q)
	}
	return out, nil
}

// union runs f per request and returns the sorted union of its answers.
func union(rs []query.Request, f func(query.Request) ([]string, error)) ([]string, error) {
	set := map[string]struct{}{}
	for _, r := range rs {
		vs, err := f(r)
		if err != nil {
			return nil, connectError(err)
		}
		for _, v := range vs {
			set[v] = struct{}{}
		}
	}
	out := make([]string, 0, len(set))
	for v := range set {
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil
}

// LabelNames lists the label names of the series the matchers select.
func (h *handler) LabelNames(ctx context.Context, req *connect.Request[typesv1.LabelNamesRequest]) (*connect.Response[typesv1.LabelNamesResponse], error) {
	rs, err := h.metaRequests(req.Header(), req.Msg.Matchers, req.Msg.Start, req.Msg.End)
	if err != nil {
		return nil, err
	}
	names, err := union(rs, func(r query.Request) ([]string, error) { return h.eng.LabelNames(ctx, r) })
	if err != nil {
		return nil, err
	}
	// Requests are not labels to group by: as Pyroscope, which keeps
	// span IDs out of its label index, leave them out, or Drilldown
	// offers a group by with one value per request. Matchers and
	// LabelValues still take them.
	names = slices.DeleteFunc(names, func(n string) bool {
		return n == storage.SpanIDLabel || n == storage.LocalRootSpanIDLabel || n == storage.TraceIDLabel
	})
	return connect.NewResponse(&typesv1.LabelNamesResponse{Names: names}), nil
}

// LabelValues lists the values of one label over the series the matchers
// select.
func (h *handler) LabelValues(ctx context.Context, req *connect.Request[typesv1.LabelValuesRequest]) (*connect.Response[typesv1.LabelValuesResponse], error) {
	if req.Msg.Name == "" {
		return nil, invalid("name: the label name is required")
	}
	rs, err := h.metaRequests(req.Header(), req.Msg.Matchers, req.Msg.Start, req.Msg.End)
	if err != nil {
		return nil, err
	}
	vals, err := union(rs, func(r query.Request) ([]string, error) { return h.eng.LabelValues(ctx, r, req.Msg.Name) })
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&typesv1.LabelValuesResponse{Names: vals}), nil
}

// Series lists the label sets of the selected series, kept to
// label_names when it names any.
func (h *handler) Series(ctx context.Context, req *connect.Request[querierv1.SeriesRequest]) (*connect.Response[querierv1.SeriesResponse], error) {
	rs, err := h.metaRequests(req.Header(), req.Msg.Matchers, req.Msg.Start, req.Msg.End)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	out := &querierv1.SeriesResponse{LabelsSet: []*typesv1.Labels{}}
	for _, r := range rs {
		series, err := h.eng.SeriesLabels(ctx, r)
		if err != nil {
			return nil, connectError(err)
		}
		for _, m := range series {
			var b labels.Builder
			for k, v := range m {
				if len(req.Msg.LabelNames) == 0 || slices.Contains(req.Msg.LabelNames, k) {
					b.Set(k, v)
				}
			}
			ls := b.Labels()
			if ls.Len() == 0 || seen[ls.String()] {
				continue
			}
			seen[ls.String()] = true
			out.LabelsSet = append(out.LabelsSet, labelPairs(ls))
		}
	}
	slices.SortFunc(out.LabelsSet, func(a, b *typesv1.Labels) int { return strings.Compare(pairsKey(a), pairsKey(b)) })
	return connect.NewResponse(out), nil
}

func labelPairs(ls labels.Labels) *typesv1.Labels {
	out := &typesv1.Labels{}
	ls.Range(func(l labels.Label) {
		out.Labels = append(out.Labels, &typesv1.LabelPair{Name: l.Name, Value: l.Value})
	})
	return out
}

func pairsKey(l *typesv1.Labels) string {
	var b strings.Builder
	for _, p := range l.Labels {
		b.WriteString(p.Name)
		b.WriteByte(0)
		b.WriteString(p.Value)
		b.WriteByte(0)
	}
	return b.String()
}

// SelectMergeStacktraces merges the selected samples into one flame
// graph.
func (h *handler) SelectMergeStacktraces(ctx context.Context, req *connect.Request[querierv1.SelectMergeStacktracesRequest]) (*connect.Response[querierv1.SelectMergeStacktracesResponse], error) {
	m := req.Msg
	if m.Async != nil {
		return nil, unimplemented("async: Hearth answers every query at once")
	}
	switch m.Format {
	case querierv1.ProfileFormat_PROFILE_FORMAT_UNSPECIFIED, querierv1.ProfileFormat_PROFILE_FORMAT_FLAMEGRAPH,
		querierv1.ProfileFormat_PROFILE_FORMAT_PPROF:
	default:
		return nil, unimplemented("format %s: Hearth answers flame graphs and pprof", m.Format)
	}
	r, err := h.stackRequest(req.Header(), m.ProfileTypeID, m.LabelSelector, m.Start, m.End,
		m.StackTraceSelector, m.ProfileIdSelector, m.TraceIdSelector, m.SpanSelector)
	if err != nil {
		return nil, err
	}
	if m.Format == querierv1.ProfileFormat_PROFILE_FORMAT_PPROF {
		p, err := h.mergedPprof(ctx, r, m.StackTraceSelector.GetGoPgo(), m.MaxNodes)
		if err != nil {
			return nil, err
		}
		return connect.NewResponse(&querierv1.SelectMergeStacktracesResponse{Pprof: &querierv1.PprofProfile{Profile: p}}), nil
	}
	if m.StackTraceSelector.GetGoPgo() != nil {
		return nil, invalid("stack_trace_selector.go_pgo: Go PGO trimming makes pprof profiles; ask for the pprof format")
	}
	fg, err := h.flame(ctx, r, m.MaxNodes)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&querierv1.SelectMergeStacktracesResponse{Flamegraph: fg}), nil
}

// flame is the flame graph of r, cut at a request's max_nodes.
func (h *handler) flame(ctx context.Context, r query.Request, max *int64) (*querierv1.FlameGraph, error) {
	n, err := maxNodes(max)
	if err != nil {
		return nil, err
	}
	fg, err := h.eng.FlameGraph(ctx, r, n)
	if err != nil {
		return nil, connectError(err)
	}
	return flameGraph(fg), nil
}

// SelectMergeSpanProfile is the flame graph of the samples of some spans:
// Grafana's "profiles for this span". Pyroscope deprecates it for
// SelectMergeStacktraces' span_selector; Grafana 11 still calls it.
func (h *handler) SelectMergeSpanProfile(ctx context.Context, req *connect.Request[querierv1.SelectMergeSpanProfileRequest]) (*connect.Response[querierv1.SelectMergeSpanProfileResponse], error) {
	m := req.Msg
	switch m.Format {
	case querierv1.ProfileFormat_PROFILE_FORMAT_UNSPECIFIED, querierv1.ProfileFormat_PROFILE_FORMAT_FLAMEGRAPH:
	default:
		return nil, unimplemented("format %s: Hearth answers this RPC with flame graphs", m.Format)
	}
	if len(m.SpanSelector) == 0 {
		return nil, invalid("span_selector: name at least one span ID")
	}
	r, err := h.stackRequest(req.Header(), m.ProfileTypeID, m.LabelSelector, m.Start, m.End, nil, nil, nil, m.SpanSelector)
	if err != nil {
		return nil, err
	}
	fg, err := h.flame(ctx, r, m.MaxNodes)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&querierv1.SelectMergeSpanProfileResponse{Flamegraph: fg}), nil
}

// SelectMergeProfile merges the selected samples into one pprof profile.
// Pyroscope deprecates it for SelectMergeStacktraces' pprof format;
// Grafana and profilecli still call it.
func (h *handler) SelectMergeProfile(ctx context.Context, req *connect.Request[querierv1.SelectMergeProfileRequest]) (*connect.Response[googlev1.Profile], error) {
	m := req.Msg
	if m.ProfileTypeID == "" {
		return nil, invalid("profile_typeID: name the profile type to merge")
	}
	r, err := h.stackRequest(req.Header(), m.ProfileTypeID, m.LabelSelector, m.Start, m.End,
		m.StackTraceSelector, m.ProfileIdSelector, m.TraceIdSelector, nil)
	if err != nil {
		return nil, err
	}
	p, err := h.mergedPprof(ctx, r, m.StackTraceSelector.GetGoPgo(), m.MaxNodes)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(p), nil
}

// mergedPprof is the selection merged into one pprof profile, as
// Pyroscope's generated message: with pgo, trimmed for Go's PGO, else with
// a max_nodes cut to about that many nodes.
func (h *handler) mergedPprof(ctx context.Context, r query.Request, pgo *typesv1.GoPGO, max *int64) (*googlev1.Profile, error) {
	n := 0
	if max != nil && *max != 0 {
		var err error
		if n, err = maxNodes(max); err != nil {
			return nil, err
		}
	}
	p, err := h.eng.Pprof(ctx, r)
	if err != nil {
		return nil, connectError(err)
	}
	switch {
	case pgo != nil:
		// As in Pyroscope, trimming for PGO makes max_nodes moot.
		p, err = trimForPGO(p, int(pgo.KeepLocations), pgo.AggregateCallees)
	case n > 0:
		p, err = truncatePprof(p, n)
	}
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	raw, err := encodePprof(p)
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	out := &googlev1.Profile{}
	if err := proto.Unmarshal(raw, out); err != nil {
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("re-read merged profile: %w", err))
	}
	return out, nil
}

// SelectSeries returns the selection's total per step, per group.
func (h *handler) SelectSeries(ctx context.Context, req *connect.Request[querierv1.SelectSeriesRequest]) (*connect.Response[querierv1.SelectSeriesResponse], error) {
	m := req.Msg
	if m.ProfileTypeID == "" {
		return nil, invalid("profile_typeID: name the profile type")
	}
	r, err := h.stackRequest(req.Header(), m.ProfileTypeID, m.LabelSelector, m.Start, m.End, m.StackTraceSelector, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	if m.Step < 0 {
		return nil, invalid("step %g: want seconds > 0", m.Step)
	}
	step := time.Duration(m.Step * float64(time.Second))
	if m.Step > 0 && step < time.Millisecond {
		return nil, invalid("step %g: want at least a millisecond", m.Step)
	}
	agg := query.AggregateDefault
	if m.Aggregation != nil {
		switch *m.Aggregation {
		case typesv1.TimeSeriesAggregationType_TIME_SERIES_AGGREGATION_TYPE_SUM:
			agg = query.AggregateSum
		case typesv1.TimeSeriesAggregationType_TIME_SERIES_AGGREGATION_TYPE_AVERAGE:
			agg = query.AggregateAverage
		default:
			return nil, invalid("aggregation %s: want sum or average", m.Aggregation)
		}
	}
	if m.Limit != nil && *m.Limit < 0 {
		return nil, invalid("limit %d: want 0 (none) or more", *m.Limit)
	}
	var exemplars bool
	switch m.ExemplarType {
	case typesv1.ExemplarType_EXEMPLAR_TYPE_UNSPECIFIED, typesv1.ExemplarType_EXEMPLAR_TYPE_NONE:
	case typesv1.ExemplarType_EXEMPLAR_TYPE_INDIVIDUAL:
		exemplars = true
	case typesv1.ExemplarType_EXEMPLAR_TYPE_SPAN:
		// As Pyroscope: span exemplars come with SelectHeatmap.
		return nil, unimplemented("exemplar_type %s: time series give profile exemplars; ask SelectHeatmap for span exemplars", m.ExemplarType)
	default:
		return nil, invalid("exemplar_type %d: unknown", m.ExemplarType)
	}
	if step <= 0 {
		// Pyroscope refuses a missing step; Hearth picks one.
		step = max(r.End.Sub(r.Start)/1000, 10*time.Second).Round(time.Second)
	}
	// Pyroscope's points: from a step before start to end, each of the
	// profiles in the step that ends at it.
	r.Start = r.Start.Add(-step)
	res, err := h.eng.SeriesEnding(ctx, r, step, m.GroupBy, agg)
	if err != nil {
		return nil, connectError(err)
	}
	out := &querierv1.SelectSeriesResponse{Series: []*typesv1.Series{}}
	type ranked struct {
		s     *typesv1.Series
		total float64
	}
	var all []ranked
	for _, s := range res.Series {
		ts := &typesv1.Series{}
		var b labels.Builder
		for k, v := range s.Labels {
			if v != "" {
				b.Set(k, v)
			}
		}
		ts.Labels = labelPairs(b.Labels()).Labels
		var total float64
		for i, p := range s.Points {
			pt := &typesv1.Point{Timestamp: int64(p[0]), Value: p[1]}
			if exemplars {
				pt.Exemplars = []*typesv1.Exemplar{profileExemplar(s.Top[i], m.GroupBy)}
			}
			ts.Points = append(ts.Points, pt)
			total += p[1]
		}
		all = append(all, ranked{ts, total})
	}
	if m.Limit != nil && *m.Limit > 0 && int64(len(all)) > *m.Limit {
		slices.SortStableFunc(all, func(a, b ranked) int {
			switch {
			case a.total > b.total:
				return -1
			case a.total < b.total:
				return 1
			}
			return 0
		})
		all = all[:*m.Limit]
	}
	for _, x := range all {
		out.Series = append(out.Series, x.s)
	}
	slices.SortFunc(out.Series, func(a, b *typesv1.Series) int {
		return strings.Compare(pairsKey(&typesv1.Labels{Labels: a.Labels}), pairsKey(&typesv1.Labels{Labels: b.Labels}))
	})
	return connect.NewResponse(out), nil
}

// Diff compares two selections in one flame graph: left is the baseline,
// right the comparison.
func (h *handler) Diff(ctx context.Context, req *connect.Request[querierv1.DiffRequest]) (*connect.Response[querierv1.DiffResponse], error) {
	m := req.Msg
	if m.Left == nil || m.Right == nil {
		return nil, invalid("left and right: a diff needs both selections")
	}
	var sides [2]query.Request
	for i, s := range []*querierv1.SelectMergeStacktracesRequest{m.Left, m.Right} {
		r, err := h.stackRequest(req.Header(), s.ProfileTypeID, s.LabelSelector, s.Start, s.End,
			s.StackTraceSelector, s.ProfileIdSelector, s.TraceIdSelector, s.SpanSelector)
		if err != nil {
			return nil, err
		}
		sides[i] = r
	}
	n, err := maxNodes(m.Left.MaxNodes)
	if err != nil {
		return nil, err
	}
	if m.Right.MaxNodes != nil && *m.Right.MaxNodes > int64(n) {
		if n, err = maxNodes(m.Right.MaxNodes); err != nil {
			return nil, err
		}
	}
	d, err := h.eng.Diff(ctx, sides[0], sides[1], n)
	if err != nil {
		return nil, connectError(err)
	}
	return connect.NewResponse(&querierv1.DiffResponse{Flamegraph: diffGraph(d)}), nil
}

// GetProfileStats says whether the tenant has any profile, and the times
// of its oldest and newest.
func (h *handler) GetProfileStats(ctx context.Context, req *connect.Request[typesv1.GetProfileStatsRequest]) (*connect.Response[typesv1.GetProfileStatsResponse], error) {
	r, err := h.base(req.Header())
	if err != nil {
		return nil, err
	}
	out := &typesv1.GetProfileStatsResponse{}
	lo, hi, ok, err := h.bounds.ProfileBounds(ctx, r.Tenant)
	if err != nil {
		return nil, connectError(err)
	}
	if ok {
		out.DataIngested = true
		out.OldestProfileTime = time.Unix(0, lo).UnixMilli()
		out.NewestProfileTime = time.Unix(0, hi).UnixMilli()
	}
	return connect.NewResponse(out), nil
}

// profileExemplar points at one stored profile. Its labels are the
// profile's without those its series already shows (the group-by labels)
// and without the profile type.
func profileExemplar(p query.ProfilePoint, shown []string) *typesv1.Exemplar {
	return &typesv1.Exemplar{
		Timestamp: time.Unix(0, p.T).UnixMilli(),
		ProfileId: p.Key().ID(),
		Value:     p.V,
		Labels:    exemplarLabels(p.Labels, shown),
	}
}

// exemplarLabels are ls without the shown names and the profile type.
func exemplarLabels(ls labels.Labels, shown []string) []*typesv1.LabelPair {
	var out []*typesv1.LabelPair
	ls.Range(func(l labels.Label) {
		if l.Name != labels.ProfileType && !slices.Contains(shown, l.Name) {
			out = append(out, &typesv1.LabelPair{Name: l.Name, Value: l.Value})
		}
	})
	return out
}

// AnalyzeQuery says how much data a query reads: from the heads in
// memory ("Short term storage", as Pyroscope names its ingesters) and from
// the blocks on disk ("Long term storage"). Unlike Pyroscope, which
// reports whole blocks, the counts are those of the query's selection.
// Hearth's block sizes are not split into index, samples and symbols: the
// whole size of the blocks read is in profile_bytes.
func (h *handler) AnalyzeQuery(ctx context.Context, req *connect.Request[querierv1.AnalyzeQueryRequest]) (*connect.Response[querierv1.AnalyzeQueryResponse], error) {
	m := req.Msg
	r, err := h.base(req.Header())
	if err != nil {
		return nil, err
	}
	r.Query = strings.TrimSpace(m.Query)
	if r.Query == "" {
		r.Query = "{}"
	}
	if err := h.timeRange(&r, m.Start, m.End); err != nil {
		return nil, err
	}
	a, err := h.eng.Analyze(ctx, r)
	if err != nil {
		return nil, connectError(err)
	}
	scope := func(name string, s storage.Scope) *querierv1.QueryScope {
		return &querierv1.QueryScope{
			ComponentType:  name,
			ComponentCount: uint64(s.Sources),
			BlockCount:     uint64(s.Sources),
			SeriesCount:    uint64(s.Series),
			ProfileCount:   uint64(s.Profiles),
			SampleCount:    uint64(s.Samples),
			ProfileBytes:   uint64(s.Bytes),
		}
	}
	return connect.NewResponse(&querierv1.AnalyzeQueryResponse{
		QueryScopes: []*querierv1.QueryScope{
			scope("Short term storage", a.Heads),
			scope("Long term storage", a.Blocks),
		},
		QueryImpact: &querierv1.QueryImpact{
			TotalBytesInTimeRange: uint64(a.Blocks.Bytes),
			TotalQueriedSeries:    uint64(a.Series),
		},
	}), nil
}
