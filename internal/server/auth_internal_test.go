package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/metadata"

	"github.com/hearth-profiler/hearth/internal/auth"
)

func newTestServer(t *testing.T, tokens string) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	if tokens != "" {
		cfg.AuthTokensFile = filepath.Join(t.TempDir(), "tokens.yaml")
		if err := os.WriteFile(cfg.AuthTokensFile, []byte(tokens), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestAuthorizationHidden: the handlers behind the middleware and the
// gRPC interceptor never see the credentials, and see the resolved tenant
// where they have always read it.
func TestAuthorizationHidden(t *testing.T) {
	for _, tokens := range []string{"", "tokens:\n  - {name: w, token: secret-w, tenants: [team-a, team-b], scopes: [write]}\n"} {
		s := newTestServer(t, tokens)
		var seen *http.Request
		h := s.authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r }))
		req := httptest.NewRequest("POST", "/ingest", nil)
		req.Header.Set("Authorization", "Bearer secret-w")
		h.ServeHTTP(httptest.NewRecorder(), req)
		if seen == nil {
			t.Fatalf("tokens %q: request not served", tokens)
		}
		if v := seen.Header.Values("Authorization"); len(v) != 0 {
			t.Errorf("tokens %q: the handler sees Authorization %q", tokens, v)
		}
		id, ok := auth.FromContext(seen.Context())
		switch {
		case tokens == "" && (ok || seen.Header.Get("X-Scope-OrgID") != ""):
			t.Errorf("open server: the request was given an identity or tenant")
		case tokens != "" && (!ok || id.Token.Name != "w" || seen.Header.Get("X-Scope-OrgID") != "team-a"):
			t.Errorf("the handler sees tenant %q, identity %+v; want team-a and token w", seen.Header.Get("X-Scope-OrgID"), id)
		}

		md := metadata.Pairs("authorization", "Bearer secret-w", "x-scope-orgid", "team-b")
		ctx, err := s.authorizeGRPC(metadata.NewIncomingContext(context.Background(), md),
			"/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export")
		if err != nil {
			t.Fatalf("tokens %q: gRPC: %v", tokens, err)
		}
		got, _ := metadata.FromIncomingContext(ctx)
		if v := got.Get("authorization"); len(v) != 0 {
			t.Errorf("tokens %q: the gRPC service sees authorization %q", tokens, v)
		}
		if v := got.Get("x-scope-orgid"); len(v) != 1 || v[0] != "team-b" {
			t.Errorf("tokens %q: the gRPC service sees tenant %q; want team-b", tokens, v)
		}
	}
}

// TestUnknownRoutesNeedAdmin: a pattern or gRPC method missing from the
// route tables is closed, not open.
func TestUnknownRoutesNeedAdmin(t *testing.T) {
	s := newTestServer(t, "tokens:\n  - {name: r, token: secret-r, tenants: ['*'], scopes: [read, write]}\n")
	for _, c := range []struct{ method, pattern string }{
		{"GET", "GET /made/up"}, {"POST", "/"}, {"DELETE", "/"}, {"GET", ""},
	} {
		if a := s.accessOf(c.method, c.pattern); a != needAdmin {
			t.Errorf("access of %s %q = %+v; want admin", c.method, c.pattern, a)
		}
	}
	md := metadata.Pairs("authorization", "Bearer secret-r")
	if _, err := s.authorizeGRPC(metadata.NewIncomingContext(context.Background(), md), "/some.Service/Method"); err == nil {
		t.Error("an unknown gRPC method is open to a token without admin")
	}
}
