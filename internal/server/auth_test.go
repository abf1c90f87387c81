package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/hearth-profiler/hearth/internal/logtest"
	"github.com/hearth-profiler/hearth/internal/server"
	"github.com/hearth-profiler/hearth/internal/testfiles"
)

// The tokens of the tests. Each test's server checks at its end that none
// of them occurs in its log.
const (
	readerToken = "tok-reader-5c1f0e9a"
	writerToken = "tok-writer-8d2b7e41"
	adminToken  = "tok-admin-3e9a6d10"
	otherToken  = "tok-other-b47c2f95"
	allToken    = "tok-all-0f6e1d3c"
	opsToken    = "tok-ops-9a4c7b22"
	multiToken  = "tok-multi-61d8e0f3"
)

var allSecrets = []string{readerToken, writerToken, adminToken, otherToken, allToken, opsToken, multiToken}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// testTokens is a tokens file: one token per scope for team-a, one with
// every scope for team-b only, one for every tenant, one with read and
// admin, one for two tenants. The reader's is given by its digest.
var testTokens = `tokens:
  - name: reader
    token_sha256: ` + sha256Hex(readerToken) + `
    tenants: [team-a]
    scopes: [read]
  - {name: writer, token: ` + writerToken + `, tenants: [team-a], scopes: [write]}
  - {name: admin, token: ` + adminToken + `, tenants: [team-a], scopes: [admin]}
  - {name: other, token: ` + otherToken + `, tenants: [team-b], scopes: [read, write, admin]}
  - {name: all, token: ` + allToken + `, tenants: ['*'], scopes: [read, write, admin]}
  - {name: ops, token: ` + opsToken + `, tenants: [team-a], scopes: [read, admin]}
  - {name: multi, token: ` + multiToken + `, tenants: [team-a, team-b], scopes: [read, write]}
`

type authServer struct {
	*server.Server
	base       string // http://host:port
	grpcAddr   string // the OTLP gRPC port
	tokensPath string
	logs       *logtest.Buffer
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

// startAuthServer runs a server, with its OTLP gRPC port, requiring the
// tokens of tokensYAML ("" leaves it open). Its log is kept, and checked
// at the end for every token of the tests.
func startAuthServer(t *testing.T, tokensYAML string, mut func(*server.Config)) *authServer {
	t.Helper()
	as := &authServer{logs: &logtest.Buffer{}}
	cfg := server.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.SelfProfileInterval = 0
	cfg.ListenAddr = freeAddr(t)
	cfg.OTLPGRPCAddr = freeAddr(t)
	cfg.AuthPollInterval = 20 * time.Millisecond
	if tokensYAML != "" {
		as.tokensPath = filepath.Join(t.TempDir(), "tokens.yaml")
		if err := os.WriteFile(as.tokensPath, []byte(tokensYAML), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.AuthTokensFile = as.tokensPath
	}
	if mut != nil {
		mut(&cfg)
	}
	logger := slog.New(slog.NewJSONHandler(as.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := server.New(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	as.Server, as.base, as.grpcAddr = s, "http://"+cfg.ListenAddr, cfg.OTLPGRPCAddr
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		logs := as.logs.String()
		for _, secret := range allSecrets {
			if strings.Contains(logs, secret) {
				t.Errorf("the server's log holds the token %q", secret)
			}
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		resp, err := http.Get(as.base + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready: %v", err)
		}
	}
	return as
}

// probe is one request to a route, and who may send it.
type probe struct {
	access      string // open, token (any valid token), read, write or admin
	method      string
	path        string // with its query
	contentType string
	body        []byte
	ok          int // the status when allowed
}

// credential is one way a request may present itself.
type credential struct {
	name  string
	authz string // the Authorization header; "" sends none
	scope string // the scope the token holds, "" for the refused ones
}

func bearer(tok string) string { return "Bearer " + tok }

func basicAuth(user, tok string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+tok))
}

var matrixCredentials = []credential{
	{name: "no token"},
	{name: "unknown token", authz: bearer("tok-nobody-00000000")},
	{name: "token of another tenant", authz: bearer(otherToken)},
	{name: "read-only token", authz: bearer(readerToken), scope: "read"},
	{name: "write-only token", authz: bearer(writerToken), scope: "write"},
	{name: "admin token", authz: bearer(adminToken), scope: "admin"},
}

// want is the status a credential gets from a probe. Every request names
// tenant team-a; the token of another tenant holds every scope, for
// team-b only.
func (p probe) want(c credential) int {
	switch {
	case p.access == "open":
		return p.ok
	case c.name == "no token" || c.name == "unknown token":
		return http.StatusUnauthorized
	case c.scope == "":
		return http.StatusForbidden
	case p.access == "token" || p.access == c.scope:
		return p.ok
	}
	return http.StatusForbidden
}

func do(t *testing.T, method, u, contentType string, body []byte, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, raw
}

// routeProbes returns, for every pattern the server should register, the
// requests that exercise it.
func routeProbes(t *testing.T) map[string][]probe {
	otlpPayload, err := os.ReadFile(testfiles.Path(t, "internal/otlp/testdata/export-proto-v1.10.0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	cpu, err := os.ReadFile(testfiles.CorpusCPU(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	pushJSON := []byte(`{"series": [{"labels": [{"name": "__name__", "value": "process_cpu"}, {"name": "service_name", "value": "pushed"}],
		"samples": [{"rawProfile": "` + base64.StdEncoding.EncodeToString(cpu) + `"}]}]}`)
	folded := []byte("main;work 70\nmain;idle 30\n")
	p := map[string][]probe{
		"POST /ingest":            {{"write", "POST", "/ingest?name=checkout&format=folded", "text/plain", folded, 200}},
		"POST /pyroscope/ingest":  {{"write", "POST", "/pyroscope/ingest?name=checkout&format=folded", "text/plain", folded, 200}},
		"/push.v1.PusherService/": {{"write", "POST", "/push.v1.PusherService/Push", "application/json", pushJSON, 200}},
		"/querier.v1.QuerierService/": {{"read", "POST", "/querier.v1.QuerierService/ProfileTypes", "application/json",
			[]byte(`{"start": 1000, "end": 4000}`), 200}},
		"/settings.v1.SettingsService/":         {{"read", "POST", "/settings.v1.SettingsService/Get", "application/json", []byte(`{}`), 200}},
		"/settings.v1.RecordingRulesService/":   {{"read", "POST", "/settings.v1.RecordingRulesService/ListRecordingRules", "application/json", []byte(`{}`), 200}},
		"/capabilities.v1.FeatureFlagsService/": {{"read", "POST", "/capabilities.v1.FeatureFlagsService/GetFeatureFlags", "application/json", []byte(`{}`), 200}},
		"/v1development/profiles":               {{"write", "POST", "/v1development/profiles", "application/x-protobuf", otlpPayload, 200}},
		"/v1/profiles":                          {{"write", "POST", "/v1/profiles", "application/x-protobuf", otlpPayload, 200}},
		"/v1/traces":                            {{"write", "POST", "/v1/traces", "application/json", []byte(`{"resourceSpans":[]}`), 200}},
		"/v1/logs":                              {{"write", "POST", "/v1/logs", "application/json", []byte(`{"resourceLogs":[]}`), 200}},
		"POST /api/v1/events":                   {{"write", "POST", "/api/v1/events", "application/x-ndjson", []byte(`{"name":"probe"}`), 200}},
		"GET /ready":                            {{"open", "GET", "/ready", "", nil, 200}},
		"POST /-/flush":                         {{"admin", "POST", "/-/flush", "", nil, 200}},
		"POST /-/reload":                        {{"admin", "POST", "/-/reload", "", nil, 200}},
		"GET /api/v1/targets":                   {{"read", "GET", "/api/v1/targets", "", nil, 200}},
		"GET /api/v1/auth/whoami":               {{"token", "GET", "/api/v1/auth/whoami", "", nil, 200}},
		"/api/":                                 {{"token", "GET", "/api/v1/nothing-here", "", nil, 404}},
		"/pyroscope/":                           {{"token", "GET", "/pyroscope/nothing-here", "", nil, 404}},
		"GET /api/echo":                         {{"read", "GET", "/api/echo", "", nil, 200}},
		"GET /api/status/buildinfo":             {{"read", "GET", "/api/status/buildinfo", "", nil, 200}},
		"GET /api/traces/{id}":                  {{"read", "GET", "/api/traces/0af7651916cd43dd8448eb211c80319c", "", nil, 404}},
		"GET /api/v2/traces/{id}":               {{"read", "GET", "/api/v2/traces/0af7651916cd43dd8448eb211c80319c", "", nil, 404}},
		"GET /api/search":                       {{"read", "GET", "/api/search?q={}", "", nil, 200}},
		"GET /api/search/tags":                  {{"read", "GET", "/api/search/tags", "", nil, 200}},
		"GET /api/v2/search/tags":               {{"read", "GET", "/api/v2/search/tags", "", nil, 200}},
		"GET /api/search/tag/{name}/values":     {{"read", "GET", "/api/search/tag/service.name/values", "", nil, 200}},
		"GET /api/v2/search/tag/{name}/values":  {{"read", "GET", "/api/v2/search/tag/resource.service.name/values", "", nil, 200}},
		"GET /api/metrics/query":                {{"read", "GET", "/api/metrics/query?q={}%7Crate()", "", nil, 200}},
		"GET /api/metrics/query_range":          {{"read", "GET", "/api/metrics/query_range?q={}%7Crate()", "", nil, 200}},
		"GET /pyroscope/render":                 {{"read", "GET", "/pyroscope/render?query=process_cpu:cpu:nanoseconds:cpu:nanoseconds{}&from=now-1h", "", nil, 200}},
		"GET /pyroscope/render-diff":            {{"read", "GET", "/pyroscope/render-diff?leftQuery=process_cpu:cpu:nanoseconds:cpu:nanoseconds{}&rightQuery=process_cpu:cpu:nanoseconds:cpu:nanoseconds{}", "", nil, 200}},
		"/": {
			{"open", "GET", "/", "", nil, 200},
			{"open", "GET", "/app.js", "", nil, 200},
			{"open", "HEAD", "/targets.html", "", nil, 200},
			{"open", "GET", "/no-such-file", "", nil, 404},
			// Only reading the UI is open; anything else falls to the
			// default of unknown routes.
			{"admin", "POST", "/index.html", "", nil, 405},
		},
		"GET /metrics":             {{"admin", "GET", "/metrics", "", nil, 200}},
		"GET /debug/pprof/":        {{"admin", "GET", "/debug/pprof/", "", nil, 200}},
		"GET /debug/pprof/cmdline": {{"admin", "GET", "/debug/pprof/cmdline", "", nil, 200}},
		"GET /debug/pprof/profile": {{"admin", "GET", "/debug/pprof/profile?seconds=1", "", nil, 200}},
		"GET /debug/pprof/symbol":  {{"admin", "GET", "/debug/pprof/symbol", "", nil, 200}},
		"GET /debug/pprof/trace":   {{"admin", "GET", "/debug/pprof/trace?seconds=1", "", nil, 200}},
	}
	q := "from=now-1h&query=cpu&baseline_query=cpu&comparison_query=cpu"
	for _, m := range []string{"GET", "POST"} {
		for _, path := range []string{
			"/api/v1/query/flamegraph", "/api/v1/query/top", "/api/v1/query/series", "/api/v1/query/diff",
			"/api/v1/query/pprof", "/api/v1/labels", "/api/v1/series", "/api/v1/profile_types",
		} {
			p[m+" "+path] = []probe{{"read", m, path + "?" + q, "", nil, 200}}
		}
		p[m+" /api/v1/label/{name}/values"] = []probe{{"read", m, "/api/v1/label/service_name/values?" + q, "", nil, 200}}
		p[m+" /api/v1/events/query"] = []probe{{"read", m, "/api/v1/events/query?q={}&calc=count", "", nil, 200}}
		p[m+" /api/v1/events/compare"] = []probe{{"read", m, "/api/v1/events/compare?selection={duration>1s}", "", nil, 200}}
		p[m+" /api/v1/events/search"] = []probe{{"read", m, "/api/v1/events/search?q={}", "", nil, 200}}
		p[m+" /api/v1/events/attributes"] = []probe{{"read", m, "/api/v1/events/attributes", "", nil, 200}}
		p[m+" /api/v1/events/attribute/{key}/values"] = []probe{{"read", m, "/api/v1/events/attribute/span.http.route/values", "", nil, 200}}
		// No such trace: the answer says so, after the token is let in.
		p[m+" /api/v1/events/trace/{id}"] = []probe{{"read", m, "/api/v1/events/trace/0af7651916cd43dd8448eb211c80319c", "", nil, 404}}
	}
	return p
}

// TestAuthRoutes sends to every route of a server that requires tokens,
// with every kind of credential, and checks the status. A route the
// table does not cover fails the test: a new route must be given its
// access here and in the server's route table.
func TestAuthRoutes(t *testing.T) {
	as := startAuthServer(t, testTokens, func(c *server.Config) { c.AuthProtectMetrics = true })
	probes := routeProbes(t)
	registered := as.Patterns()
	for _, pat := range registered {
		if _, ok := probes[pat]; !ok {
			t.Errorf("route %q is registered but not in the test's table: give it an access", pat)
		}
	}
	for pat := range probes {
		if !slices.Contains(registered, pat) {
			t.Errorf("route %q of the test's table is not registered", pat)
		}
	}
	patterns := slices.Sorted(func(yield func(string) bool) {
		for p := range probes {
			if !yield(p) {
				return
			}
		}
	})
	for _, pat := range patterns {
		for _, p := range probes[pat] {
			for _, c := range matrixCredentials {
				header := map[string]string{"X-Scope-OrgID": "team-a"}
				if c.authz != "" {
					header["Authorization"] = c.authz
				}
				resp, body := do(t, p.method, as.base+p.path, p.contentType, p.body, header)
				if want := p.want(c); resp.StatusCode != want {
					t.Errorf("%s %s (route %q, %s), %s: %d; want %d: %.200s", p.method, p.path, pat, p.access, c.name, resp.StatusCode, want, body)
					continue
				}
				switch resp.StatusCode {
				case http.StatusUnauthorized:
					if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="hearth"` {
						t.Errorf("%s %s, %s: WWW-Authenticate %q", p.method, p.path, c.name, got)
					}
					fallthrough
				case http.StatusForbidden:
					if p.method != "HEAD" && len(bytes.TrimSpace(body)) == 0 {
						t.Errorf("%s %s, %s: %d without a message", p.method, p.path, c.name, resp.StatusCode)
					}
					if strings.HasPrefix(p.path, "/api/") {
						var r struct{ Status, ErrorType, Error string }
						if err := json.Unmarshal(body, &r); err != nil || r.Status != "error" || r.Error == "" {
							t.Errorf("%s %s, %s: refusal is not the API's JSON: %s", p.method, p.path, c.name, body)
						}
					}
				}
			}
		}
	}
	// The refusals say why.
	for _, c := range []struct {
		method, path, authz, want string
	}{
		{"GET", "/api/v1/labels", "", "authentication required"},
		{"GET", "/api/v1/labels", bearer("tok-nobody-00000000"), "unknown token"},
		{"GET", "/api/v1/labels", bearer(otherToken), `token "other" may not use tenant "team-a"`},
		{"POST", "/-/flush", bearer(readerToken), `token "reader" lacks the admin scope that POST /-/flush needs (it has: read)`},
		{"GET", "/api/v1/labels", "Token " + readerToken, "neither Bearer nor Basic"},
	} {
		header := map[string]string{"X-Scope-OrgID": "team-a"}
		if c.authz != "" {
			header["Authorization"] = c.authz
		}
		_, body := do(t, c.method, as.base+c.path, "", nil, header)
		var r struct{ Error string }
		if json.Unmarshal(body, &r) == nil {
			body = []byte(r.Error)
		}
		if !strings.Contains(string(body), c.want) {
			t.Errorf("%s %s with %q: %s; want it to say %q", c.method, c.path, c.authz, body, c.want)
		}
	}
	// A refused request is counted under its route.
	_, metrics := do(t, "GET", as.base+"/metrics", "", nil, map[string]string{"Authorization": bearer(adminToken)})
	if !strings.Contains(string(metrics), `hearth_http_requests_total{code="401",handler="POST /-/flush"}`) {
		t.Errorf("401s of /-/flush are not counted under its route")
	}
}

// TestAuthMetricsOpen: without --auth.protect-metrics, /metrics needs no
// token, and every other route still does.
func TestAuthMetricsOpen(t *testing.T) {
	as := startAuthServer(t, testTokens, nil)
	if resp, _ := do(t, "GET", as.base+"/metrics", "", nil, nil); resp.StatusCode != 200 {
		t.Errorf("GET /metrics without a token: %d", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", as.base+"/debug/pprof/", "", nil, nil); resp.StatusCode != 401 {
		t.Errorf("GET /debug/pprof/ without a token: %d", resp.StatusCode)
	}
}

func exportRequest(t *testing.T) pprofileotlp.ExportRequest {
	t.Helper()
	payload, err := os.ReadFile(testfiles.Path(t, "internal/otlp/testdata/export-proto-v1.10.0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	req := pprofileotlp.NewExportRequest()
	if err := req.UnmarshalProto(payload); err != nil {
		t.Fatal(err)
	}
	return req
}

// labelValues asks for the values of a label in a tenant, as a token.
func labelValues(t *testing.T, base, authz, tenant, name string) []string {
	t.Helper()
	header := map[string]string{"Authorization": authz}
	if tenant != "" {
		header["X-Scope-OrgID"] = tenant
	}
	resp, body := do(t, "GET", base+"/api/v1/label/"+name+"/values?from=1700000000&until=now", "", nil, header)
	if resp.StatusCode != 200 {
		t.Fatalf("label values of %s in %q: %d %s", name, tenant, resp.StatusCode, body)
	}
	var r struct{ Data []string }
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	return r.Data
}

// TestAuthGRPC exports OTLP profiles with the real gRPC client, on the
// OTLP port and on the main port, with every kind of credential.
func TestAuthGRPC(t *testing.T) {
	as := startAuthServer(t, testTokens, nil)
	req := exportRequest(t)
	for _, port := range []struct{ name, addr string }{
		{"OTLP port", as.grpcAddr},
		{"main port", strings.TrimPrefix(as.base, "http://")},
	} {
		conn, err := grpc.NewClient(port.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		client := pprofileotlp.NewGRPCClient(conn)
		for _, c := range []struct {
			name, authz, tenant string
			want                codes.Code
		}{
			{"no token", "", "team-a", codes.Unauthenticated},
			{"unknown token", bearer("tok-nobody-00000000"), "team-a", codes.Unauthenticated},
			{"malformed", "Bearer", "team-a", codes.Unauthenticated},
			{"token of another tenant", bearer(otherToken), "team-a", codes.PermissionDenied},
			{"read-only token", bearer(readerToken), "team-a", codes.PermissionDenied},
			{"admin token", bearer(adminToken), "team-a", codes.PermissionDenied},
			{"write-only token", bearer(writerToken), "team-a", codes.OK},
			{"write-only token, no tenant named", bearer(writerToken), "", codes.OK},
			{"basic auth naming the tenant", basicAuth("team-b", multiToken), "", codes.OK},
			{"basic auth naming a tenant outside the token's", basicAuth("team-c", multiToken), "", codes.PermissionDenied},
			{"invalid tenant ID", bearer(allToken), "a/b", codes.InvalidArgument},
		} {
			ctx := context.Background()
			if c.authz != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", c.authz)
			}
			if c.tenant != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "x-scope-orgid", c.tenant)
			}
			_, err := client.Export(ctx, req)
			if got := status.Code(err); got != c.want {
				t.Errorf("%s, %s: %v; want %s", port.name, c.name, err, c.want)
			}
		}
	}
	// What was accepted went to the tenant the credentials resolved to.
	if got := labelValues(t, as.base, bearer(readerToken), "", "service_name"); !slices.Equal(got, []string{"checkout", "inventory"}) {
		t.Errorf("team-a's services = %v", got)
	}
	if got := labelValues(t, as.base, basicAuth("team-b", multiToken), "", "service_name"); !slices.Equal(got, []string{"checkout", "inventory"}) {
		t.Errorf("team-b's services = %v", got)
	}
	if got := labelValues(t, as.base, bearer(allToken), "anonymous", "service_name"); len(got) != 0 {
		t.Errorf("the default tenant got profiles: %v", got)
	}
}

// TestAuthBasic: basic auth with the token as password, the user naming
// the tenant, as Grafana's data sources send it.
func TestAuthBasic(t *testing.T) {
	as := startAuthServer(t, testTokens, nil)
	ingest := func(authz string, header map[string]string, service string) int {
		h := map[string]string{"Authorization": authz}
		for k, v := range header {
			h[k] = v
		}
		resp, _ := do(t, "POST", as.base+"/ingest?format=folded&name="+service, "text/plain", []byte("main;work 1\n"), h)
		return resp.StatusCode
	}
	for _, c := range []struct {
		name, authz string
		header      map[string]string
		service     string
		want        int
	}{
		{"user names a tenant of the token", basicAuth("team-b", multiToken), nil, "in-b", 200},
		{"no user: the token's first tenant", basicAuth("", multiToken), nil, "in-a", 200},
		{"user and header agree", basicAuth("team-b", multiToken), map[string]string{"X-Scope-OrgID": "team-b"}, "in-b-too", 200},
		{"user and header disagree", basicAuth("team-a", multiToken), map[string]string{"X-Scope-OrgID": "team-b"}, "nowhere", 403},
		{"user names another tenant", basicAuth("team-c", multiToken), nil, "nowhere", 403},
		{"wrong password", basicAuth("team-a", multiToken+"x"), nil, "nowhere", 401},
		{"no password", basicAuth("team-a", ""), nil, "nowhere", 401},
		{"the token as user", basicAuth(multiToken, ""), nil, "nowhere", 401},
	} {
		if got := ingest(c.authz, c.header, c.service); got != c.want {
			t.Errorf("%s: %d; want %d", c.name, got, c.want)
		}
	}
	if got := labelValues(t, as.base, basicAuth("team-b", multiToken), "", "service_name"); !slices.Equal(got, []string{"in-b", "in-b-too"}) {
		t.Errorf("team-b's services = %v", got)
	}
	if got := labelValues(t, as.base, basicAuth("team-a", multiToken), "", "service_name"); !slices.Equal(got, []string{"in-a"}) {
		t.Errorf("team-a's services = %v", got)
	}
	if got := labelValues(t, as.base, bearer(allToken), "team-c", "service_name"); len(got) != 0 {
		t.Errorf("team-c's services = %v", got)
	}
}

type whoamiAnswer struct {
	Auth    bool     `json:"auth"`
	Name    string   `json:"name"`
	Tenants []string `json:"tenants"`
	Scopes  []string `json:"scopes"`
	Tenant  string   `json:"tenant"`
}

func whoami(t *testing.T, base string, header map[string]string) (int, whoamiAnswer) {
	t.Helper()
	resp, body := do(t, "GET", base+"/api/v1/auth/whoami", "", nil, header)
	var w whoamiAnswer
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(body, &w); err != nil {
			t.Fatalf("whoami: %v: %s", err, body)
		}
	}
	return resp.StatusCode, w
}

func TestAuthWhoami(t *testing.T) {
	as := startAuthServer(t, testTokens, nil)
	for _, ten := range []string{"team-b", "team-z"} {
		if resp, body := do(t, "POST", as.base+"/ingest?format=folded&name=x", "", []byte("main 1\n"),
			map[string]string{"Authorization": bearer(allToken), "X-Scope-OrgID": ten}); resp.StatusCode != 200 {
			t.Fatalf("ingest into %s: %d %s", ten, resp.StatusCode, body)
		}
	}
	for _, c := range []struct {
		name   string
		header map[string]string
		status int
		want   whoamiAnswer
	}{
		{"no token", nil, 401, whoamiAnswer{}},
		{"reader", map[string]string{"Authorization": bearer(readerToken)}, 200,
			whoamiAnswer{true, "reader", []string{"team-a"}, []string{"read"}, "team-a"}},
		{"multi, basic auth naming team-b", map[string]string{"Authorization": basicAuth("team-b", multiToken)}, 200,
			whoamiAnswer{true, "multi", []string{"team-a", "team-b"}, []string{"read", "write"}, "team-b"}},
		{"writer asks too", map[string]string{"Authorization": bearer(writerToken)}, 200,
			whoamiAnswer{true, "writer", []string{"team-a"}, []string{"write"}, "team-a"}},
		// A token of every tenant is told the tenants that hold data.
		{"every tenant", map[string]string{"Authorization": bearer(allToken), "X-Scope-OrgID": "team-z"}, 200,
			whoamiAnswer{true, "all", []string{"team-b", "team-z"}, []string{"read", "write", "admin"}, "team-z"}},
		{"tenant outside the token's", map[string]string{"Authorization": bearer(readerToken), "X-Scope-OrgID": "team-b"}, 403, whoamiAnswer{}},
	} {
		code, got := whoami(t, as.base, c.header)
		if code != c.status {
			t.Errorf("%s: %d; want %d", c.name, code, c.status)
			continue
		}
		if code == 200 && fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: %+v; want %+v", c.name, got, c.want)
		}
	}
}

// TestAuthOff: without a tokens file every route is open as before, a
// token sent anyway changes nothing, whoami says so, and the start warns.
func TestAuthOff(t *testing.T) {
	as := startAuthServer(t, "", nil)
	if !strings.Contains(as.logs.String(), "anyone who can reach the port can read and write every tenant") {
		t.Error("no warning at start that authentication is off")
	}
	for _, header := range []map[string]string{nil, {"Authorization": bearer("anything")}, {"X-Scope-OrgID": "team-q"}} {
		if resp, body := do(t, "POST", as.base+"/ingest?format=folded&name=open", "", []byte("main 1\n"), header); resp.StatusCode != 200 {
			t.Errorf("ingest with %v: %d %s", header, resp.StatusCode, body)
		}
		if resp, _ := do(t, "POST", as.base+"/-/flush", "", nil, header); resp.StatusCode != 200 {
			t.Errorf("flush with %v: %d", header, resp.StatusCode)
		}
	}
	code, got := whoami(t, as.base, map[string]string{"X-Scope-OrgID": "team-q"})
	want := whoamiAnswer{false, "", []string{"anonymous", "team-q"}, []string{"read", "write", "admin"}, "team-q"}
	if code != 200 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("whoami of an open server: %d %+v; want %+v", code, got, want)
	}
	if code, _ := whoami(t, as.base, map[string]string{"X-Scope-OrgID": "a/b"}); code != 400 {
		t.Errorf("whoami naming an invalid tenant: %d; want 400", code)
	}
	conn, err := grpc.NewClient(as.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := pprofileotlp.NewGRPCClient(conn).Export(context.Background(), exportRequest(t)); err != nil {
		t.Errorf("OTLP gRPC export to an open server: %v", err)
	}
}

// TestAuthTargets: /api/v1/targets shows a token the targets of its
// tenants; a token of every tenant, or with the admin scope, sees all.
func TestAuthTargets(t *testing.T) {
	config := filepath.Join(t.TempDir(), "hearth.yaml")
	err := os.WriteFile(config, []byte(`scrape_configs:
  - job_name: job-a
    tenant: team-a
    static_configs: [{targets: ['127.0.0.1:9']}]
  - job_name: job-b
    tenant: team-b
    static_configs: [{targets: ['127.0.0.1:9']}]
  - job_name: job-default
    static_configs: [{targets: ['127.0.0.1:9']}]
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	as := startAuthServer(t, testTokens, func(c *server.Config) { c.ConfigFile = config })
	jobs := func(authz string) (int, []string) {
		resp, body := do(t, "GET", as.base+"/api/v1/targets", "", nil, map[string]string{"Authorization": authz})
		if resp.StatusCode != 200 {
			return resp.StatusCode, nil
		}
		var r struct {
			Data struct {
				ActiveTargets []struct {
					ScrapePool string `json:"scrapePool"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, tg := range r.Data.ActiveTargets {
			out = append(out, tg.ScrapePool)
		}
		sort.Strings(out)
		return 200, out
	}
	for _, c := range []struct {
		name, authz string
		status      int
		want        []string
	}{
		{"reader of team-a", bearer(readerToken), 200, []string{"job-a"}},
		{"reader of team-a and team-b", bearer(multiToken), 200, []string{"job-a", "job-b"}},
		{"every tenant", bearer(allToken), 200, []string{"job-a", "job-b", "job-default"}},
		{"read and admin, team-a", bearer(opsToken), 200, []string{"job-a", "job-b", "job-default"}},
		{"admin without read", bearer(adminToken), 403, nil},
		{"writer", bearer(writerToken), 403, nil},
	} {
		code, got := jobs(c.authz)
		if code != c.status || !slices.Equal(got, c.want) {
			t.Errorf("%s: %d %v; want %d %v", c.name, code, got, c.status, c.want)
		}
	}
}

// TestAuthReload: the tokens file is read again when it changes and on
// POST /-/reload; a bad file keeps the tokens in force and is reported.
func TestAuthReload(t *testing.T) {
	first := "tokens:\n  - {name: first, token: " + readerToken + ", tenants: [team-a], scopes: [read, admin]}\n"
	as := startAuthServer(t, first, nil)
	status := func(tok string) int {
		resp, _ := do(t, "GET", as.base+"/api/v1/labels", "", nil, map[string]string{"Authorization": bearer(tok)})
		return resp.StatusCode
	}
	if got := status(readerToken); got != 200 {
		t.Fatalf("first token: %d", got)
	}
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(as.tokensPath, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Changed on disk: seen without being asked.
	write("tokens:\n  - {name: second, token: " + writerToken + ", tenants: [team-a], scopes: [read, admin]}\n")
	for deadline := time.Now().Add(5 * time.Second); status(writerToken) != 200; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the new token is not accepted after the file changed")
		}
	}
	if got := status(readerToken); got != 401 {
		t.Errorf("removed token: %d; want 401", got)
	}
	// A bad file: POST /-/reload says why, and the tokens in force stay.
	write("tokens:\n  - {name: third, token: " + adminToken + ", tenants: [team-a], scopes: [raed]}\n")
	resp, body := do(t, "POST", as.base+"/-/reload", "", nil, map[string]string{"Authorization": bearer(writerToken)})
	if resp.StatusCode != 400 || !strings.Contains(string(body), `entry 1 (name "third"): scopes: unknown scope "raed"`) {
		t.Errorf("POST /-/reload of a bad tokens file: %d %s", resp.StatusCode, body)
	}
	time.Sleep(100 * time.Millisecond) // several polls
	if got := status(writerToken); got != 200 {
		t.Errorf("token in force after a bad file: %d", got)
	}
	if got := status(adminToken); got != 401 {
		t.Errorf("token of a bad file: %d", got)
	}
	// Reload, as SIGHUP calls it.
	write("tokens:\n  - {name: fourth, token: " + adminToken + ", tenants: [team-a], scopes: [read]}\n")
	if err := as.Reload(); err != nil {
		t.Fatal(err)
	}
	if status(adminToken) != 200 || status(writerToken) != 401 {
		t.Error("Reload did not put the new tokens in force")
	}
	logs := as.logs.String()
	for _, want := range []string{`"names":["second"]`, `scopes: unknown scope \"raed\"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log does not say %s", want)
		}
	}
}

// TestAuthStartsOnlyWithAGoodFile: a bad tokens file stops the start with
// its cause.
func TestAuthStartsOnlyWithAGoodFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(path, []byte("tokens:\n  - {name: x, token: "+readerToken+", tenants: [], scopes: [read]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := server.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.AuthTokensFile = path
	_, err := server.New(cfg, nil)
	if err == nil || !strings.Contains(err.Error(), `--auth.tokens-file: load `+path+`: entry 1 (name "x"): tenants: empty`) {
		t.Errorf("New with a bad tokens file: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), readerToken) {
		t.Errorf("the error holds the token: %v", err)
	}
	cfg.AuthTokensFile = filepath.Join(t.TempDir(), "missing.yaml")
	if _, err := server.New(cfg, nil); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("New with a missing tokens file: %v", err)
	}
}

// TestAuthPushClients pushes with Pyroscope's generated push.v1 client, in
// the Connect and the gRPC protocols: a refusal reaches each as its
// protocol's code, with the reason.
func TestAuthPushClients(t *testing.T) {
	as := startAuthServer(t, testTokens, nil)
	cpu, err := os.ReadFile(testfiles.CorpusCPU(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	h2c := &http.Client{Transport: &http.Transport{Protocols: new(http.Protocols)}}
	h2c.Transport.(*http.Transport).Protocols.SetUnencryptedHTTP2(true)
	for _, proto := range []struct {
		name   string
		client pushv1connect.PusherServiceClient
	}{
		{"Connect", pushv1connect.NewPusherServiceClient(http.DefaultClient, as.base)},
		{"gRPC", pushv1connect.NewPusherServiceClient(h2c, as.base, connect.WithGRPC())},
	} {
		for _, c := range []struct {
			name, authz string
			want        connect.Code // 0: success
			msg         string
		}{
			{"no token", "", connect.CodeUnauthenticated, "authentication required"},
			{"read-only token", bearer(readerToken), connect.CodePermissionDenied, `token "reader" lacks the write scope`},
			{"write token", bearer(writerToken), 0, ""},
		} {
			req := connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
				Labels:  []*typesv1.LabelPair{{Name: "__name__", Value: "process_cpu"}, {Name: "service_name", Value: "pushed-" + proto.name}},
				Samples: []*pushv1.RawSample{{RawProfile: cpu}},
			}}})
			if c.authz != "" {
				req.Header().Set("Authorization", c.authz)
			}
			_, err := proto.client.Push(context.Background(), req)
			if c.want == 0 {
				if err != nil {
					t.Errorf("%s, %s: %v", proto.name, c.name, err)
				}
				continue
			}
			if got := connect.CodeOf(err); got != c.want || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("%s, %s: %v (%s); want %s saying %q", proto.name, c.name, err, got, c.want, c.msg)
			}
		}
	}
	if got := labelValues(t, as.base, bearer(readerToken), "", "service_name"); !slices.Equal(got, []string{"pushed-Connect", "pushed-gRPC"}) {
		t.Errorf("team-a's services = %v", got)
	}
}
