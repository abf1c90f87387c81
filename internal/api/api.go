// Package api serves Hearth's HTTP API: the Pyroscope ingest endpoint and
// the JSON query API under /api/v1/.
//
// Handlers return a value or an error; one wrapper writes either as JSON,
// and maps errors to statuses in one place (see errorStatus).
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"

	gpprof "github.com/google/pprof/profile"

	"github.com/hearth-profiler/hearth/internal/events/calc"
	"github.com/hearth-profiler/hearth/internal/events/traceql"
	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/limits"
	"github.com/hearth-profiler/hearth/internal/priority"
	"github.com/hearth-profiler/hearth/internal/query"
	"github.com/hearth-profiler/hearth/internal/query/parser"
	"github.com/hearth-profiler/hearth/internal/storage"
	"github.com/hearth-profiler/hearth/internal/tenant"
)

// TenantHeader selects the tenant of a request.
const TenantHeader = tenant.Header

// DefaultTenant is the tenant of requests without TenantHeader.
const DefaultTenant = tenant.Default

// Options configure the API.
type Options struct {
	// MaxBodyBytes bounds a request body; larger bodies get 413.
	MaxBodyBytes int64
	// QueryTimeout bounds one ingest request, and one query when Limits
	// is nil. Zero means 2 minutes.
	QueryTimeout time.Duration
	// Governor holds queries to their share of the CPU while profiles
	// arrive; nil holds nothing back.
	Governor *priority.Governor
	// Limits are the tenants' query limits (series, sample rows, time,
	// concurrency); nil bounds queries by QueryTimeout alone.
	Limits *limits.Overrides
	// Refusals counts the queries refused by a limit; nil counts nothing.
	Refusals *limits.Refusals
	// Events is where the events API reads; nil serves no events routes.
	Events EventStore
	// Version names the build, for Tempo's buildinfo.
	Version string
}

// API holds the handlers.
type API struct {
	ing  *ingest.Ingester
	eng  *query.Engine
	opts Options
	gate queryGate
	// queueWait is how long a query over its tenant's concurrency waits
	// for a turn: queryQueueWait, shorter in tests.
	queueWait time.Duration
	logger    *slog.Logger
	now       func() time.Time
}

// New returns the API over an ingester and a query engine.
func New(ing *ingest.Ingester, eng *query.Engine, opts Options, logger *slog.Logger) *API {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 16 << 20
	}
	if opts.QueryTimeout <= 0 {
		opts.QueryTimeout = 2 * time.Minute
	}
	if opts.Limits == nil {
		opts.Limits = limits.NewOverrides(limits.Limits{QueryTimeout: opts.QueryTimeout})
	}
	return &API{ing: ing, eng: eng, opts: opts, queueWait: queryQueueWait, logger: logger, now: time.Now}
}

// Mux is where routes are registered: an *http.ServeMux, or a wrapper
// that also records the patterns.
type Mux interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// Register adds the API's routes to mux.
func (a *API) Register(mux Mux) {
	ingest := a.wrap(a.withTimeout(a.ingest))
	mux.HandleFunc("POST /ingest", ingest)
	mux.HandleFunc("POST /pyroscope/ingest", ingest)
	for _, m := range []string{"GET", "POST"} {
		mux.HandleFunc(m+" /api/v1/query/flamegraph", a.wrap(a.limited(a.flameGraph)))
		mux.HandleFunc(m+" /api/v1/query/top", a.wrap(a.limited(a.top)))
		mux.HandleFunc(m+" /api/v1/query/series", a.wrap(a.limited(a.series)))
		mux.HandleFunc(m+" /api/v1/query/diff", a.wrap(a.limited(a.diff)))
		mux.HandleFunc(m+" /api/v1/query/pprof", a.pprof)
		mux.HandleFunc(m+" /api/v1/labels", a.wrap(a.limited(a.labelNames)))
		mux.HandleFunc(m+" /api/v1/label/{name}/values", a.wrap(a.limited(a.labelValues)))
		mux.HandleFunc(m+" /api/v1/series", a.wrap(a.limited(a.seriesList)))
		mux.HandleFunc(m+" /api/v1/profile_types", a.wrap(a.limited(a.profileTypes)))
	}
	if a.opts.Events != nil {
		a.registerEvents(mux)
		a.registerTempo(mux)
	}
	notFound := func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no API endpoint %s %s", r.Method, r.URL.Path))
	}
	// Unknown paths under the API prefixes answer JSON, not the UI's page:
	// a script calling a Pyroscope endpoint that Hearth does not serve
	// gets a clear 404.
	mux.HandleFunc("/api/", notFound)
	mux.HandleFunc("/pyroscope/", notFound)
}

// apiError is an error with its status and type already decided.
type apiError struct {
	status int
	typ    string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, ingest.ReasonBadData.String(), fmt.Sprintf(format, args...)}
}

// errorStatus maps an error to an HTTP status and error type: the one
// place where domain errors meet HTTP.
func errorStatus(err error) (int, string) {
	var ae *apiError
	var ie *ingest.InputError
	var pe *parser.ParseError
	var tqe *traceql.ParseError
	var cqe *calc.QueryError
	var be *query.BadRequestError
	var mbe *http.MaxBytesError
	var se *ingest.StorageError
	switch {
	case errors.As(err, new(*storage.IngesterError)):
		// A querier did not hear from an ingester: 502, as a gateway
		// whose upstream failed; the message names the ingester.
		return http.StatusBadGateway, "ingester_unavailable"
	case errors.As(err, &ae):
		return ae.status, ae.typ
	case errors.As(err, new(*ingest.BusyError)), errors.As(err, new(*TooManyQueriesError)):
		return http.StatusTooManyRequests, "busy"
	case errors.As(err, new(*ingest.RateLimitedError)):
		return http.StatusTooManyRequests, "rate_limited"
	case errors.As(err, new(*query.LimitError)), errors.As(err, new(*QueryTimeoutError)):
		// Understood, but not answered within the tenant's limits:
		// sending it again as it is would fail again. 422, as
		// Prometheus and Mimir answer queries over their limits.
		return http.StatusUnprocessableEntity, "limit"
	case errors.As(err, &se) && errors.Is(err, storage.ErrBehind):
		// Writes arrive faster than they are written to blocks: as the
		// ingest rate limit answers.
		return http.StatusTooManyRequests, "behind"
	case errors.As(err, &se):
		// Nothing was stored and the client may send it again: the same
		// answer as push.v1's unavailable and OTLP's 503.
		return http.StatusServiceUnavailable, "unavailable"
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, ingest.ReasonTooLarge.String()
	case errors.As(err, &ie):
		switch ie.Reason {
		case ingest.ReasonUnsupported:
			return http.StatusUnsupportedMediaType, ie.Reason.String()
		case ingest.ReasonTooLarge:
			return http.StatusRequestEntityTooLarge, ie.Reason.String()
		case ingest.ReasonSeriesLimit:
			return http.StatusBadRequest, ie.Reason.String()
		}
		return http.StatusBadRequest, ingest.ReasonBadData.String()
	case errors.As(err, &pe), errors.As(err, &be), errors.As(err, &tqe), errors.As(err, &cqe):
		return http.StatusBadRequest, ingest.ReasonBadData.String()
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "timeout"
	case errors.Is(err, context.Canceled):
		return 499, "canceled"
	}
	return http.StatusInternalServerError, "internal"
}

type response struct {
	Status    string `json:"status"`
	Data      any    `json:"data,omitempty"`
	ErrorType string `json:"errorType,omitempty"`
	Error     string `json:"error,omitempty"`
	// Warnings say what the answer lacks, such as blocks left out
	// because their data was damaged; Prometheus' API has the same field.
	Warnings []string `json:"warnings,omitempty"`
}

// WarningHeader carries the warnings of an answer that is not JSON (the
// merged pprof), one header per warning.
const WarningHeader = "Hearth-Warning"

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(response{Status: "error", ErrorType: typ, Error: msg})
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, typ := errorStatus(err)
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(ingest.RetryAfterSeconds(retryAfter(err))))
	}
	_, stored := errors.AsType[*ingest.StorageError](err)
	if status >= 500 && !stored { // the ingest path logs storage failures, rate-limited
		a.logger.Error("request failed", "path", r.URL.Path, "err", err)
	} else {
		a.logger.Debug("request not served", "path", r.URL.Path, "status", status, "err", err)
	}
	writeError(w, status, typ, err.Error())
}

// retryAfter is how long a client told to retry err should wait.
func retryAfter(err error) time.Duration {
	if rl, ok := errors.AsType[*ingest.RateLimitedError](err); ok {
		return rl.RetryAfter
	}
	if _, ok := errors.AsType[*TooManyQueriesError](err); ok {
		return queryRetryAfter
	}
	return ingest.RetryAfter
}

func (a *API) wrap(h func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, a.opts.MaxBodyBytes)
		ctx, skipped := storage.WithSkipped(priority.With(r.Context(), a.opts.Governor))
		data, err := h(r.WithContext(ctx))
		if err != nil {
			a.fail(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(response{Status: "success", Data: data, Warnings: skipped.List()})
	}
}

// withTimeout bounds h by Options.QueryTimeout.
func (a *API) withTimeout(h func(*http.Request) (any, error)) func(*http.Request) (any, error) {
	return func(r *http.Request) (any, error) {
		ctx, cancel := context.WithTimeout(r.Context(), a.opts.QueryTimeout)
		defer cancel()
		return h(r.WithContext(ctx))
	}
}

// limited runs the query h under its tenant's limits (see runQuery).
func (a *API) limited(h func(*http.Request) (any, error)) func(*http.Request) (any, error) {
	return func(r *http.Request) (data any, err error) {
		err = a.runQuery(r, func(r *http.Request) error {
			data, err = h(r)
			return err
		})
		return data, err
	}
}

// Gate runs the requests of h as queries: each waits for its tenant's
// concurrency limit and runs within its time limit, as the HTTP API's
// queries do. A refused request gets a Connect error, in the protocol
// the client speaks: h is a Connect service (querier.v1).
func (a *API) Gate(h http.Handler) http.Handler {
	ew := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := a.runQuery(r, func(r *http.Request) error {
			h.ServeHTTP(w, r)
			return nil
		})
		if err == nil {
			return
		}
		code := connect.CodeInternal
		if _, busy := errors.AsType[*TooManyQueriesError](err); busy {
			code = connect.CodeResourceExhausted
		} else if ae, ok := errors.AsType[*apiError](err); ok && ae.status == http.StatusBadRequest {
			code = connect.CodeInvalidArgument
		}
		ew.Write(w, r, connect.NewError(code, err))
	})
}

// QueryLimits are the series and sample limits of a tenant's queries.
func (a *API) QueryLimits(tenant string) query.Limits {
	l := a.opts.Limits.For(tenant)
	return query.Limits{MaxSeries: l.QueryMaxSeries, MaxSamples: l.QueryMaxSamples}
}

// QueryTimeoutError is a query that ran past its tenant's time limit
// (limits.QueryTimeout) and was stopped.
type QueryTimeoutError struct{ Timeout time.Duration }

func (e *QueryTimeoutError) Error() string {
	return fmt.Sprintf("the query ran longer than %s (%s, %s) and was stopped: narrow the selector or the time range",
		e.Timeout, limits.QueryTimeout, limits.Flag(limits.QueryTimeout))
}

// runQuery runs one query of r's tenant once the tenant runs fewer than
// its concurrency limit, within its time limit, and counts the refusals
// by a limit. run gets r with the query's context; the series and sample
// limits come with the query.Request (see queryRequest).
func (a *API) runQuery(r *http.Request, run func(*http.Request) error) error {
	tenant, err := tenantOf(r)
	if err != nil {
		return err
	}
	l := a.opts.Limits.For(tenant)
	release, err := a.gate.acquire(r.Context(), tenant, l.QueryConcurrency, a.queueWait)
	if err != nil {
		if _, busy := errors.AsType[*TooManyQueriesError](err); busy {
			a.opts.Refusals.Add(tenant, limits.QueryConcurrency)
		}
		return err
	}
	defer release()
	ctx := r.Context()
	if l.QueryTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.QueryTimeout)
		defer cancel()
	}
	err = run(r.WithContext(ctx))
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && r.Context().Err() == nil {
		// The query's own deadline, not the client's or the server's.
		err = &QueryTimeoutError{Timeout: l.QueryTimeout}
	}
	if _, ok := err.(*QueryTimeoutError); ok {
		a.opts.Refusals.Add(tenant, limits.QueryTimeout)
	} else if le, ok := errors.AsType[*query.LimitError](err); ok {
		a.opts.Refusals.Add(tenant, le.Limit)
	}
	return err
}

func tenantOf(r *http.Request) (string, error) {
	t, err := tenant.FromHTTP(r)
	if err != nil {
		return "", badRequest("%v", err)
	}
	return t, nil
}

// queryRequest reads the selection of a query from form values with the
// given prefix ("" or "baseline_" / "comparison_").
func (a *API) queryRequest(r *http.Request, prefix string) (query.Request, error) {
	tenant, err := tenantOf(r)
	if err != nil {
		return query.Request{}, err
	}
	now := a.now()
	from, err := parseTime(r.FormValue(prefix+"from"), now, now.Add(-time.Hour))
	if err != nil {
		return query.Request{}, badRequest("%sfrom: %v", prefix, err)
	}
	until, err := parseTime(r.FormValue(prefix+"until"), now, now)
	if err != nil {
		return query.Request{}, badRequest("%suntil: %v", prefix, err)
	}
	f, err := query.ParseStackFilter(r.FormValue("focus"), r.FormValue("ignore"), r.FormValue("hide"))
	if err != nil {
		return query.Request{}, err
	}
	l := a.opts.Limits.For(tenant)
	q := query.Request{Tenant: tenant, Query: r.FormValue(prefix + "query"), Start: from, End: until, Filter: f,
		Limits: query.Limits{MaxSeries: l.QueryMaxSeries, MaxSamples: l.QueryMaxSamples}}
	if src := r.FormValue(prefix + "spans"); strings.TrimSpace(src) != "" {
		if q.Spans, err = a.spanSelection(r.Context(), eventRequest{tenant: tenant, from: from, until: until}, src); err != nil {
			return query.Request{}, err
		}
	}
	return q, nil
}

func requireQuery(q query.Request, name string) error {
	if strings.TrimSpace(q.Query) == "" {
		return badRequest("%s is required, e.g. %s=cpu{service_name=\"api\"}", name, name)
	}
	return nil
}

func intParam(r *http.Request, name string, def int) (int, error) {
	s := r.FormValue(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, badRequest("%s: %q is not a non-negative integer", name, s)
	}
	return n, nil
}

func (a *API) flameGraph(r *http.Request) (any, error) {
	q, err := a.queryRequest(r, "")
	if err != nil {
		return nil, err
	}
	if err := requireQuery(q, "query"); err != nil {
		return nil, err
	}
	n, err := intParam(r, "max_nodes", query.DefaultMaxNodes)
	if err != nil {
		return nil, err
	}
	return a.eng.FlameGraph(r.Context(), q, n)
}

func (a *API) top(r *http.Request) (any, error) {
	q, err := a.queryRequest(r, "")
	if err != nil {
		return nil, err
	}
	if err := requireQuery(q, "query"); err != nil {
		return nil, err
	}
	n, err := intParam(r, "limit", 0)
	if err != nil {
		return nil, err
	}
	return a.eng.Top(r.Context(), q, r.FormValue("sort"), n)
}

func (a *API) series(r *http.Request) (any, error) {
	q, err := a.queryRequest(r, "")
	if err != nil {
		return nil, err
	}
	if err := requireQuery(q, "query"); err != nil {
		return nil, err
	}
	var step time.Duration
	if s := r.FormValue("step"); s != "" {
		if step, err = parseDuration(s); err != nil {
			return nil, badRequest("step: %v", err)
		}
	}
	var groupBy []string
	for _, g := range strings.Split(r.FormValue("group_by"), ",") {
		if g = strings.TrimSpace(g); g != "" {
			groupBy = append(groupBy, g)
		}
	}
	return a.eng.Series(r.Context(), q, step, groupBy)
}

func (a *API) diff(r *http.Request) (any, error) {
	base, err := a.queryRequest(r, "baseline_")
	if err != nil {
		return nil, err
	}
	comp, err := a.queryRequest(r, "comparison_")
	if err != nil {
		return nil, err
	}
	if err := requireQuery(base, "baseline_query"); err != nil {
		return nil, err
	}
	if err := requireQuery(comp, "comparison_query"); err != nil {
		return nil, err
	}
	n, err := intParam(r, "max_nodes", query.DefaultMaxNodes)
	if err != nil {
		return nil, err
	}
	return a.eng.Diff(r.Context(), base, comp, n)
}

// pprof writes the merged profile as gzipped protobuf, not JSON.
func (a *API) pprof(w http.ResponseWriter, r *http.Request) {
	ctx, skipped := storage.WithSkipped(priority.With(r.Context(), a.opts.Governor))
	r = r.WithContext(ctx)
	var p *gpprof.Profile
	err := a.runQuery(r, func(r *http.Request) error {
		q, err := a.queryRequest(r, "")
		if err == nil {
			err = requireQuery(q, "query")
		}
		if err != nil {
			return err
		}
		p, err = a.eng.Pprof(r.Context(), q)
		return err
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.google.protobuf+gzip")
	w.Header().Set("Content-Disposition", `attachment; filename="profile.pb.gz"`)
	for _, s := range skipped.List() {
		// A profile has no room for a warning; the answer's headers do.
		w.Header().Add(WarningHeader, s)
	}
	if err := p.Write(w); err != nil {
		a.logger.Warn("write pprof", "err", err)
	}
}

func (a *API) labelNames(r *http.Request) (any, error) {
	q, err := a.queryRequest(r, "")
	if err != nil {
		return nil, err
	}
	return nonNil(a.eng.LabelNames(r.Context(), q))
}

func (a *API) labelValues(r *http.Request) (any, error) {
	q, err := a.queryRequest(r, "")
	if err != nil {
		return nil, err
	}
	return nonNil(a.eng.LabelValues(r.Context(), q, r.PathValue("name")))
}

func (a *API) profileTypes(r *http.Request) (any, error) {
	q, err := a.queryRequest(r, "")
	if err != nil {
		return nil, err
	}
	return nonNil(a.eng.ProfileTypes(r.Context(), q))
}

func (a *API) seriesList(r *http.Request) (any, error) {
	q, err := a.queryRequest(r, "")
	if err != nil {
		return nil, err
	}
	s, err := a.eng.SeriesLabels(r.Context(), q)
	if s == nil {
		s = []map[string]string{}
	}
	return s, err
}

func nonNil(s []string, err error) ([]string, error) {
	if s == nil {
		s = []string{}
	}
	return s, err
}
