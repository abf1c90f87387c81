// Package push serves push.v1.PusherService/Push, the Connect API through
// which Grafana Alloy (pyroscope.write) and other Pyroscope clients send
// profiles: series of labels, each with raw pprof profiles (gzipped or not).
// It speaks every protocol connect-go serves: Connect with protobuf or JSON
// bodies, gRPC and gRPC-Web (both over HTTP/2). Messages and service are
// Pyroscope's generated Go code, so the wire format and JSON mapping are the
// ones Pyroscope's clients are built from.
//
// Labels are read the way Pyroscope's distributor and ingester read them:
//
//   - __name__ is the profile name (process_cpu, memory, mutex, block,
//     goroutine, or a client's own): the first part of every type ID of the
//     profile, as in Pyroscope. "mutex" and "block" also become the
//     request's Contention, since a Go contention profile does not say which
//     of the two it is. Without it, the sample types name the profile.
//   - service_name defaults to "unspecified" when absent or empty.
//   - __delta__="false" says the client already turned cumulative values into
//     deltas (Alloy's pyroscope.scrape does so for memory, mutex and block, and
//     drops the first scrape itself): every sample type is stored as sent.
//     Without it, Pyroscope's ingester computes deltas of the alloc_objects and
//     alloc_space types of "memory" profiles per series, storing nothing of a
//     series' first profile; Hearth does the same. Other types, mutex and
//     block included, are stored as sent, as in Pyroscope.
//   - Every other label starting with "__" is reserved and dropped; label
//     names must match [a-zA-Z_][a-zA-Z0-9_]* and appear once per series.
//
// A profile's time is its pprof time_nanos (the time of arrival when it has
// none), and its duration duration_nanos.
package push

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"google.golang.org/protobuf/proto"

	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/tenant"
)

const (
	// ServiceName is the fully qualified name of the service.
	ServiceName = pushv1connect.PusherServiceName
	// PushProcedure is the path of the Push method.
	PushProcedure = pushv1connect.PusherServicePushProcedure
)

// DefaultMaxMessageBytes bounds one request message, after decompression,
// unless WithMaxMessageBytes says otherwise. It matches the HTTP API's
// default body limit.
const DefaultMaxMessageBytes = 16 << 20

// Labels of a pushed series that carry meaning rather than name a series.
const (
	labelName       = "__name__"
	labelDelta      = "__delta__"
	fallbackService = "unspecified"
)

// Sample type configurations that say which pprof sample types are
// cumulative; the ingest path otherwise treats Go's alloc_objects,
// alloc_space, contentions and delay as cumulative. An entry without
// "cumulative" marks its type as a gauge or a delta.
var (
	stcNoneCumulative = []byte(`{"alloc_objects":{},"alloc_space":{},"contentions":{},"delay":{}}`)
	stcAllocsOnly     = []byte(`{"contentions":{},"delay":{}}`)
)

// Option configures the handler.
type Option func(*options)

type options struct {
	maxMessageBytes int
}

// WithMaxMessageBytes bounds one request message in bytes, after
// decompression; larger messages get connect.CodeResourceExhausted.
// Zero or less keeps DefaultMaxMessageBytes.
func WithMaxMessageBytes(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxMessageBytes = n
		}
	}
}

// handler implements push.v1.PusherService on top of the ingest path.
type handler struct {
	ing    *ingest.Ingester
	logger *slog.Logger
}

// Checked at compile time, so that a new version of the generated interface
// fails the build here rather than at the call of NewPusherServiceHandler.
var _ pushv1connect.PusherServiceHandler = (*handler)(nil)

// NewHandler returns the handler of push.v1.PusherService and the path
// prefix to mount it at, "/push.v1.PusherService/"; other paths under the
// prefix answer 404. The tenant is the X-Scope-OrgID header.
func NewHandler(ing *ingest.Ingester, logger *slog.Logger, opts ...Option) (string, http.Handler) {
	o := options{maxMessageBytes: DefaultMaxMessageBytes}
	for _, opt := range opts {
		opt(&o)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	budget := ing.Budget()
	return pushv1connect.NewPusherServiceHandler(&handler{ing: ing, logger: logger},
		connect.WithReadMaxBytes(o.maxMessageBytes),
		connect.WithCompression("gzip", func() connect.Decompressor { return newLeasedGzip(budget) }, newGzipWriter))
}

// at is where a profile is in a request: sample j of series i.
type at struct{ series, sample int }

// refusal is one profile that was not stored, and why.
type refusal struct {
	at  at
	err error
}

// Push stores the profiles of a request. A profile that cannot be stored
// does not keep the others of the batch out: they are stored, and the
// answer is InvalidArgument naming the refused ones, so that the client
// sees the problem without retrying what was stored.
func (h *handler) Push(ctx context.Context, req *connect.Request[pushv1.PushRequest]) (*connect.Response[pushv1.PushResponse], error) {
	tenantID, err := tenant.Check(req.Header().Get(tenant.Header))
	if err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, err)
	}
	// connect-go has read and decoded the message (within the read
	// limit); it counts against the in-flight bound from here, with what
	// its profiles decompress to.
	ctx, lease := h.ing.Lease(ctx)
	defer lease.Release()
	size := int64(proto.Size(req.Msg))
	if err := lease.Grow(size); err != nil {
		return nil, busyError(err)
	}
	if err := h.ing.AdmitBytes(tenantID, size); err != nil {
		return nil, rateLimitedError(err)
	}
	seriesList := req.Msg.GetSeries()
	var (
		rs       []*ingest.Request
		where    []at // where rs[i] is in the request
		refusals []refusal
		total    int
	)
	for i, series := range seriesList {
		samples := series.GetSamples()
		total += len(samples)
		info, err := readSeries(series.GetLabels())
		for j, sample := range samples {
			if err != nil {
				refusals = append(refusals, refusal{at{i, j}, err})
				continue
			}
			rs = append(rs, info.request(sample.GetRawProfile()))
			where = append(where, at{i, j})
		}
	}
	if total == 0 {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("no profiles received"))
	}
	if len(rs) > 0 {
		refused, err := h.ing.IngestBatch(ctx, tenantID, rs)
		if _, busy := errors.AsType[*ingest.BusyError](err); busy {
			return nil, busyError(err)
		}
		if err != nil {
			return nil, h.storageError(err)
		}
		for i, e := range refused {
			if e != nil {
				refusals = append(refusals, refusal{where[i], e})
			}
		}
	}
	if len(refusals) > 0 {
		slices.SortFunc(refusals, func(a, b refusal) int {
			return cmp.Or(cmp.Compare(a.at.series, b.at.series), cmp.Compare(a.at.sample, b.at.sample))
		})
		err := refusalError(seriesList, refusals, total)
		h.logger.Debug("pushed profiles refused", "tenant", tenantID, "err", err)
		ce := connect.NewError(connect.CodeInvalidArgument, err)
		ce.Meta().Set(RefusedHeader, strconv.Itoa(len(refusals)))
		return nil, ce
	}
	return connect.NewResponse(&pushv1.PushResponse{}), nil
}

// storageError maps a failed batch write to a Connect error: nothing was
// stored and the client may retry.
func (h *handler) storageError(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	}
	// The ingest path has logged the failure, at most once in a while: a
	// full disk fails every push.
	h.logger.Debug("store pushed profiles", "err", err)
	cerr := connect.NewError(connect.CodeUnavailable, fmt.Errorf("profiles not stored, retry later: %w", err))
	cerr.Meta().Set("Retry-After", strconv.Itoa(int(ingest.RetryAfter/time.Second)))
	return cerr
}

// busyError is the answer to a push over the in-flight bound: resource
// exhausted, which Alloy retries, and when.
func busyError(err error) error {
	cerr := connect.NewError(connect.CodeResourceExhausted, err)
	cerr.Meta().Set("Retry-After", strconv.Itoa(int(ingest.RetryAfter/time.Second)))
	return cerr
}

// rateLimitedError is the answer to a push over the tenant's ingest rate:
// resource exhausted, with the time its bucket needs.
func rateLimitedError(err error) error {
	cerr := connect.NewError(connect.CodeResourceExhausted, err)
	retry := ingest.RetryAfter
	if rl, ok := errors.AsType[*ingest.RateLimitedError](err); ok {
		retry = rl.RetryAfter
	}
	cerr.Meta().Set("Retry-After", strconv.Itoa(ingest.RetryAfterSeconds(retry)))
	return cerr
}

// maxListedRefusals bounds how many refusals one error message names.
const maxListedRefusals = 5

// RefusedHeader is the metadata key of a refusal that says how many
// profiles of the request were refused; the others were stored. Clients
// read it to count rather than parse the message, which is for people.
const RefusedHeader = "Hearth-Refused-Profiles"

// refusalError names the refused profiles, with the labels and IDs the
// client sent, and the reasons.
func refusalError(seriesList []*pushv1.RawProfileSeries, rs []refusal, total int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d profiles refused", len(rs), total)
	if len(rs) < total {
		b.WriteString(" (the others were stored)")
	}
	b.WriteString(": ")
	for i, r := range rs[:min(len(rs), maxListedRefusals)] {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %v", describe(seriesList, r.at), r.err)
	}
	if n := len(rs) - maxListedRefusals; n > 0 {
		fmt.Fprintf(&b, "; and %d more", n)
	}
	return errors.New(b.String())
}

// describe names a profile of the request for error messages, with the
// series' labels as the client sent them and the sample's ID.
func describe(seriesList []*pushv1.RawProfileSeries, a at) string {
	series := seriesList[a.series]
	id := series.GetSamples()[a.sample].GetID()
	var b strings.Builder
	fmt.Fprintf(&b, "series %d {", a.series)
	for k, p := range series.GetLabels() {
		if b.Len() > 200 {
			b.WriteString(", ...")
			break
		}
		if k > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.GetName())
		b.WriteByte('=')
		b.WriteString(strconv.Quote(p.GetValue()))
	}
	fmt.Fprintf(&b, "} sample %d", a.sample)
	if id != "" {
		fmt.Fprintf(&b, " (ID %q)", id)
	}
	return b.String()
}

// seriesInfo is what the labels of one pushed series say.
type seriesInfo struct {
	labels     labels.Labels
	name       string // __name__
	contention ingest.Contention
	// serverDelta says that cumulative memory types become deltas here.
	serverDelta bool
}

// readSeries checks a series' labels and reads their meaning.
func readSeries(pairs []*typesv1.LabelPair) (seriesInfo, error) {
	var info seriesInfo
	seen := make(map[string]bool, len(pairs))
	kept := make([]labels.Label, 0, len(pairs)+1)
	name, delta := "", ""
	for _, p := range pairs {
		n, v := p.GetName(), p.GetValue()
		if !labels.ValidName(n) {
			return info, fmt.Errorf("invalid label name %q: must match [a-zA-Z_][a-zA-Z0-9_]*", n)
		}
		if seen[n] {
			return info, fmt.Errorf("label %q appears more than once", n)
		}
		seen[n] = true
		switch {
		case n == labelName:
			name = v
		case n == labelDelta:
			delta = v
		case strings.HasPrefix(n, "__"):
			// Reserved: __session_id__, relabelling leftovers...
		default:
			kept = append(kept, labels.Label{Name: n, Value: v})
		}
	}
	if name != "" && !validProfileName(name) {
		return info, fmt.Errorf("invalid profile name %q in %s: must match [a-zA-Z_:][a-zA-Z0-9_:]*", name, labelName)
	}
	ls := labels.New(kept...)
	if ls.Get(labels.ServiceName) == "" {
		ls = labels.New(append(kept, labels.Label{Name: labels.ServiceName, Value: fallbackService})...)
	}
	info.labels = ls
	info.name = name
	if name == "mutex" || name == "block" {
		info.contention = ingest.ContentionOf(name)
	}
	info.serverDelta = delta != "false" && name == "memory"
	return info, nil
}

// validProfileName reports whether s is a Prometheus metric name, which
// Pyroscope requires of __name__.
func validProfileName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return s != ""
}

// request builds the ingest request of one raw profile of the series.
func (info seriesInfo) request(raw []byte) *ingest.Request {
	r := &ingest.Request{
		Format:           "pprof",
		Profile:          raw,
		Labels:           info.labels,
		Contention:       info.contention,
		ProfileName:      info.name,
		SampleTypeConfig: stcNoneCumulative,
	}
	if info.serverDelta {
		r.SampleTypeConfig = stcAllocsOnly
		r.DropFirst = true
	}
	// Pyroscope takes a pushed profile's time from the profile itself.
	r.ProfileTime = true
	return r
}
