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

	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/priority"
	"github.com/hearth-profiler/hearth/internal/query"
	"github.com/hearth-profiler/hearth/internal/query/parser"
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
	// QueryTimeout bounds one query.
	QueryTimeout time.Duration
	// Governor holds queries to their share of the CPU while profiles
	// arrive; nil holds nothing back.
	Governor *priority.Governor
}

// API holds the handlers.
type API struct {
	ing    *ingest.Ingester
	eng    *query.Engine
	opts   Options
	logger *slog.Logger
	now    func() time.Time
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
	return &API{ing: ing, eng: eng, opts: opts, logger: logger, now: time.Now}
}

// Mux is where routes are registered: an *http.ServeMux, or a wrapper
// that also records the patterns.
type Mux interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// Register adds the API's routes to mux.
func (a *API) Register(mux Mux) {
	mux.HandleFunc("POST /ingest", a.wrap(a.ingest))
	mux.HandleFunc("POST /pyroscope/ingest", a.wrap(a.ingest))
	for _, m := range []string{"GET", "POST"} {
		mux.HandleFunc(m+" /api/v1/query/flamegraph", a.wrap(a.flameGraph))
		mux.HandleFunc(m+" /api/v1/query/top", a.wrap(a.top))
		mux.HandleFunc(m+" /api/v1/query/series", a.wrap(a.series))
		mux.HandleFunc(m+" /api/v1/query/diff", a.wrap(a.diff))
		mux.HandleFunc(m+" /api/v1/query/pprof", a.pprof)
		mux.HandleFunc(m+" /api/v1/labels", a.wrap(a.labelNames))
		mux.HandleFunc(m+" /api/v1/label/{name}/values", a.wrap(a.labelValues))
		mux.HandleFunc(m+" /api/v1/series", a.wrap(a.seriesList))
		mux.HandleFunc(m+" /api/v1/profile_types", a.wrap(a.profileTypes))
	}
	notFound := func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no API endpoint %s %s", r.Method, r.URL.Path))
	}
	// Unknown paths under the API prefixes answer JSON, not the UI's page:
	// a script calling Pyroscope's /pyroscope/render, which Hearth does not
	// serve yet, gets a clear 404.
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
	var be *query.BadRequestError
	var mbe *http.MaxBytesError
	var se *ingest.StorageError
	switch {
	case errors.As(err, &ae):
		return ae.status, ae.typ
	case errors.As(err, new(*ingest.BusyError)):
		return http.StatusTooManyRequests, "busy"
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
		}
		return http.StatusBadRequest, ingest.ReasonBadData.String()
	case errors.As(err, &pe), errors.As(err, &be):
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
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(response{Status: "error", ErrorType: typ, Error: msg})
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, typ := errorStatus(err)
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(int(ingest.RetryAfter/time.Second)))
	}
	_, stored := errors.AsType[*ingest.StorageError](err)
	if status >= 500 && !stored { // the ingest path logs storage failures, rate-limited
		a.logger.Error("request failed", "path", r.URL.Path, "err", err)
	} else {
		a.logger.Debug("request not served", "path", r.URL.Path, "status", status, "err", err)
	}
	writeError(w, status, typ, err.Error())
}

func (a *API) wrap(h func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, a.opts.MaxBodyBytes)
		ctx, cancel := context.WithTimeout(r.Context(), a.opts.QueryTimeout)
		defer cancel()
		data, err := h(r.WithContext(priority.With(ctx, a.opts.Governor)))
		if err != nil {
			a.fail(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(response{Status: "success", Data: data})
	}
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
	return query.Request{Tenant: tenant, Query: r.FormValue(prefix + "query"), Start: from, End: until, Filter: f}, nil
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
	ctx, cancel := context.WithTimeout(r.Context(), a.opts.QueryTimeout)
	defer cancel()
	r = r.WithContext(priority.With(ctx, a.opts.Governor))
	q, err := a.queryRequest(r, "")
	if err == nil {
		err = requireQuery(q, "query")
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p, err := a.eng.Pprof(ctx, q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.google.protobuf+gzip")
	w.Header().Set("Content-Disposition", `attachment; filename="profile.pb.gz"`)
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
