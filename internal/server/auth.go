package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/hearth-profiler/hearth/internal/api"
	"github.com/hearth-profiler/hearth/internal/auth"
	"github.com/hearth-profiler/hearth/internal/events/jsonl"
	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/ingesters"
	"github.com/hearth-profiler/hearth/internal/otlp"
	"github.com/hearth-profiler/hearth/internal/querier"
	"github.com/hearth-profiler/hearth/internal/scrape"
	"github.com/hearth-profiler/hearth/internal/tenant"
)

// access is who may call a route when tokens are required.
type access struct {
	// open routes are served to anyone; their credentials are not read.
	open bool
	// scope is what the token must hold; 0 lets any valid token in.
	scope auth.Scope
}

var (
	openAccess = access{open: true}
	anyToken   = access{}
	needRead   = access{scope: auth.Read}
	needWrite  = access{scope: auth.Write}
	needAdmin  = access{scope: auth.Admin}
)

// queryPaths are the read routes of package api, each served for GET and
// POST.
var queryPaths = []string{
	"/api/v1/query/flamegraph", "/api/v1/query/top", "/api/v1/query/series", "/api/v1/query/diff",
	"/api/v1/query/pprof", "/api/v1/labels", "/api/v1/label/{name}/values", "/api/v1/series",
	"/api/v1/profile_types",
}

// accessTable is the route table: the access of each pattern of the mux.
// A pattern it does not list needs admin, so that a route added without
// thought is closed rather than open; the UI's static files ("/") are
// open to GET and HEAD only (see accessOf).
func accessTable(pushPath, querierPath, settingsPath string, protectMetrics bool) map[string]access {
	t := map[string]access{
		// Drilldown's settings are the UI's own: a reader keeps them.
		settingsPath:             needRead,
		"POST /ingest":           needWrite,
		"POST /pyroscope/ingest": needWrite,
		pushPath:                 needWrite,
		querierPath:              needRead,
		"GET /ready":             openAccess,
		"POST /-/flush":          needAdmin,
		"POST /-/reload":         needAdmin,
		"GET /api/v1/targets":    needRead,
		"GET " + ingesters.Path:  needRead,
		// Checked by the handler: a token of every tenant only.
		"GET " + ingesters.TenantsPath: anyToken,
		"GET /api/v1/auth/whoami":      anyToken,
		// The API's catch-alls only answer 404; a valid token is enough
		// to be told so.
		"/api/":                    anyToken,
		"/pyroscope/":              anyToken,
		"GET /metrics":             openAccess,
		"GET /debug/pprof/":        needAdmin,
		"GET /debug/pprof/cmdline": needAdmin,
		"GET /debug/pprof/profile": needAdmin,
		"GET /debug/pprof/symbol":  needAdmin,
		"GET /debug/pprof/trace":   needAdmin,
	}
	if protectMetrics {
		t["GET /metrics"] = needAdmin
	}
	for _, p := range otlp.Paths {
		t[p] = needWrite
	}
	for _, p := range otlp.EventPaths {
		t[p] = needWrite
	}
	for _, p := range querier.LegacyPaths {
		t[p] = needRead
	}
	for _, p := range api.TempoPaths {
		t[p] = needRead
	}
	t["POST "+jsonl.Path] = needWrite
	for _, m := range []string{"GET", "POST"} {
		for _, p := range append(slices.Clone(queryPaths), api.EventQueryPaths...) {
			t[m+" "+p] = needRead
		}
	}
	return t
}

// grpcAccess is the route table of the gRPC services, by full method
// name; a method it does not list needs admin.
var grpcAccess = map[string]access{
	"/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export": needWrite,
	"/opentelemetry.proto.collector.trace.v1.TraceService/Export":                  needWrite,
	"/opentelemetry.proto.collector.logs.v1.LogsService/Export":                    needWrite,
}

// tenantMetadataKey is tenant.Header as gRPC metadata keys are: lower case.
var tenantMetadataKey = strings.ToLower(tenant.Header)

func (s *Server) accessOf(method, pattern string) access {
	if pattern == "/" {
		if method == http.MethodGet || method == http.MethodHead {
			return openAccess
		}
		return needAdmin
	}
	if a, ok := s.access[pattern]; ok {
		return a
	}
	return needAdmin
}

// refusal is why a request is not served.
type refusal struct {
	status int // 400, 401 or 403
	msg    string
	token  string // the token's name, when it was known
}

func (r *refusal) grpcCode() codes.Code {
	switch r.status {
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	}
	return codes.InvalidArgument
}

// identify checks the credentials of a request (the values of its
// Authorization header or metadata key) against the tokens, for a route of
// access a, and resolves the tenant it acts on from the tenant it names.
// route names the route in messages.
func identify(tokens *auth.Tokens, authz []string, named string, a access, route string) (*auth.Identity, *refusal) {
	creds, err := auth.ParseAuthorization(authz)
	if err != nil {
		msg := err.Error()
		if errors.Is(err, auth.ErrNoCredentials) {
			msg = "authentication required: " + msg
		}
		return nil, &refusal{status: http.StatusUnauthorized, msg: msg}
	}
	tok := tokens.Lookup(creds.Token)
	if tok == nil {
		return nil, &refusal{status: http.StatusUnauthorized, msg: "unknown token"}
	}
	if !tok.Scopes.Has(a.scope) {
		return nil, &refusal{status: http.StatusForbidden, token: tok.Name,
			msg: fmt.Sprintf("token %q lacks the %s scope that %s needs (it has: %s)", tok.Name, a.scope, route, scopeList(tok.Scopes))}
	}
	id, err := tok.Resolve(named, creds.User)
	if err != nil {
		st := http.StatusBadRequest
		if errors.Is(err, auth.ErrTenantDenied) {
			st = http.StatusForbidden
		}
		return nil, &refusal{status: st, msg: err.Error(), token: tok.Name}
	}
	return &auth.Identity{Token: tok, Tenant: id}, nil
}

func scopeList(s auth.Scope) string {
	if s == 0 {
		return "none"
	}
	return strings.Join(s.Names(), ", ")
}

// tokens returns the tokens in force, or nil when authentication is off.
func (s *Server) tokens() *auth.Tokens {
	if s.tokenFile == nil {
		return nil
	}
	return s.tokenFile.Tokens()
}

// authenticate serves what next serves to the requests that may have it.
// It takes the Authorization header out of every request, so that no
// handler or log sees it; with tokens, a request of a route that is not
// open must carry a valid one with the route's scope, and acts on the
// tenant resolved from it, which replaces X-Scope-OrgID so that the
// handlers read it as they always have.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authz := r.Header.Values("Authorization")
		r.Header.Del("Authorization")
		tokens := s.tokens()
		if tokens == nil {
			next.ServeHTTP(w, r)
			return
		}
		// The pattern the mux will pick; set here too so that the metrics
		// name the route of a refused request.
		_, r.Pattern = s.mux.Handler(r)
		a := s.accessOf(r.Method, r.Pattern)
		if r.Pattern == "/" && isProcedure(r) {
			// A call of a procedure Hearth does not serve is only told
			// so (unknownProcedures).
			a = anyToken
		}
		if a.open {
			next.ServeHTTP(w, r)
			return
		}
		route := r.Pattern
		if route == "" {
			route = r.Method + " " + r.URL.Path
		}
		id, ref := identify(tokens, authz, r.Header.Get(tenant.Header), a, route)
		if ref != nil {
			s.logger.Debug("request refused", "path", r.URL.Path, "status", ref.status, "token", ref.token, "remote", r.RemoteAddr, "reason", ref.msg)
			writeRefusal(w, r, ref)
			return
		}
		r.Header.Set(tenant.Header, id.Tenant)
		next.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), id)))
	})
}

// writeRefusal answers in the form the client reads: the API's JSON under
// /api/, a gRPC status to gRPC clients (push.v1 over gRPC), Connect's JSON
// error to Connect clients of push.v1, text elsewhere.
func writeRefusal(w http.ResponseWriter, r *http.Request, ref *refusal) {
	if ref.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hearth"`)
	}
	switch {
	case strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc"):
		// A trailers-only answer: gRPC clients read the status from
		// these headers, and would report only "HTTP 401" otherwise.
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Grpc-Status", strconv.Itoa(int(ref.grpcCode())))
		w.Header().Set("Grpc-Message", grpcPercentEncode(ref.msg))
		w.WriteHeader(http.StatusOK)
	case strings.HasPrefix(r.URL.Path, "/api/"):
		typ := map[int]string{http.StatusUnauthorized: "unauthorized", http.StatusForbidden: "forbidden"}[ref.status]
		if typ == "" {
			typ = ingest.ReasonBadData.String()
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ref.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": typ, "error": ref.msg})
	case strings.HasPrefix(r.URL.Path, "/push.v1."):
		code := map[int]string{http.StatusUnauthorized: "unauthenticated", http.StatusForbidden: "permission_denied"}[ref.status]
		if code == "" {
			code = "invalid_argument"
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ref.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"code": code, "message": ref.msg})
	default:
		http.Error(w, ref.msg, ref.status)
	}
}

// grpcPercentEncode encodes a grpc-message value as the gRPC protocol
// asks: bytes outside printable ASCII, and '%', as %XX.
func grpcPercentEncode(msg string) string {
	var b strings.Builder
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c < ' ' || c > '~' || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// authorizeGRPC does for a gRPC call what authenticate does for an HTTP
// request, on the metadata of the call's context.
func (s *Server) authorizeGRPC(ctx context.Context, method string) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	md = md.Copy()
	authz := md.Get("authorization")
	delete(md, "authorization")
	tokens := s.tokens()
	if tokens == nil {
		return metadata.NewIncomingContext(ctx, md), nil
	}
	a, ok := grpcAccess[method]
	if !ok {
		a = needAdmin
	}
	var named string
	if vs := md.Get(tenantMetadataKey); len(vs) > 0 {
		named = vs[0]
	}
	id, ref := identify(tokens, authz, named, a, method)
	if ref != nil {
		s.logger.Debug("gRPC call refused", "method", method, "code", ref.grpcCode().String(), "token", ref.token, "reason", ref.msg)
		return nil, status.Error(ref.grpcCode(), ref.msg)
	}
	md.Set(tenantMetadataKey, id.Tenant)
	return auth.NewContext(metadata.NewIncomingContext(ctx, md), id), nil
}

func (s *Server) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := s.authorizeGRPC(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (s *Server) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := s.authorizeGRPC(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return handler(srv, &streamWithContext{ServerStream: ss, ctx: ctx})
}

type streamWithContext struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *streamWithContext) Context() context.Context { return s.ctx }

// whoami is the answer of GET /api/v1/auth/whoami: who the request's
// credentials stand for. The UI asks it to know whether to ask for a
// token, and which tenants to offer.
type whoami struct {
	Auth    bool     `json:"auth"`
	Name    string   `json:"name"`
	Tenants []string `json:"tenants"`
	Scopes  []string `json:"scopes"`
	Tenant  string   `json:"tenant"`
}

func (s *Server) serveWhoami(w http.ResponseWriter, r *http.Request) {
	id, _ := auth.FromContext(r.Context())
	var ans whoami
	if id == nil || id.Token == nil {
		ten, err := tenant.FromHTTP(r)
		if err != nil {
			writeRefusal(w, r, &refusal{status: http.StatusBadRequest, msg: err.Error()})
			return
		}
		ans = whoami{Tenants: s.tenants(r), Scopes: auth.AllScopes.Names(), Tenant: ten}
	} else {
		tok := id.Token
		ans = whoami{Auth: true, Name: tok.Name, Scopes: tok.Scopes.Names(), Tenant: id.Tenant}
		for _, t := range tok.Tenants {
			if t != auth.AnyTenant {
				ans.Tenants = append(ans.Tenants, t)
			}
		}
		if tok.AnyTenant() {
			ans.Tenants = append(ans.Tenants, s.tenants(r)...)
			slices.Sort(ans.Tenants)
			ans.Tenants = slices.Compact(ans.Tenants)
		}
	}
	if ans.Tenants == nil {
		ans.Tenants = []string{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ans)
}

// serveTargets answers /api/v1/targets: every target to an open server,
// to a token of every tenant and to an admin; the targets of the token's
// tenants to others.
func (s *Server) serveTargets(w http.ResponseWriter, r *http.Request) {
	data := s.scrape.TargetsData()
	if id, ok := auth.FromContext(r.Context()); ok && !id.SeesAllTenants() {
		data.ActiveTargets = slices.DeleteFunc(data.ActiveTargets, func(t scrape.TargetStatus) bool { return !id.Token.Allows(t.Tenant) })
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": data})
}

// logAuthMode says at start whether requests need tokens.
func logAuthMode(logger *slog.Logger, f *auth.File, protectMetrics bool) {
	if f == nil {
		logger.Warn("authentication is off: anyone who can reach the port can read and write every tenant; set --auth.tokens-file to require tokens")
		return
	}
	logger.Info("authentication is on", "tokens_file", f.Path(), "protect_metrics", protectMetrics)
}
