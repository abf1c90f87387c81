package server_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hearth-profiler/hearth/internal/server"
)

// TestQuerierAsksIngestersWithTokens: with tokens, a querier forwards the
// caller's token to the ingesters, which check it as they would the
// caller's own query: data in an ingester's head is queryable on the
// querier by its tenant's reader, not by another tenant's, and the
// ingester's route for queriers is closed to a request without a token.
func TestQuerierAsksIngestersWithTokens(t *testing.T) {
	dir := t.TempDir()
	storage := filepath.Join(dir, "hearth.yaml")
	if err := os.WriteFile(storage, []byte("storage:\n  bucket:\n    type: filesystem\n    config: {directory: "+filepath.Join(dir, "bucket")+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(dir, "tokens.yaml")
	if err := os.WriteFile(tokens, []byte(testTokens), 0o600); err != nil {
		t.Fatal(err)
	}
	icfg := server.DefaultConfig()
	icfg.Target = server.TargetIngester
	icfg.ConfigFile = storage
	icfg.AuthTokensFile = tokens
	ing := serve(t, icfg)

	qcfg := server.DefaultConfig()
	qcfg.Target = server.TargetQuerier
	qcfg.ConfigFile = storage
	qcfg.AuthTokensFile = tokens
	qcfg.Ingesters = strings.TrimPrefix(ing, "http://")
	q := serve(t, qcfg)

	resp, _ := do(t, "POST", ing+"/ingest?name=app.cpu&format=folded", "text/plain", []byte("main;work 10\nmain;idle 5\n"),
		map[string]string{"Authorization": bearer(writerToken)})
	if resp.StatusCode != 200 {
		t.Fatalf("push to the ingester: %s", resp.Status)
	}
	total := func(base, tok string) (int, int64) {
		t.Helper()
		hdr := map[string]string{}
		if tok != "" {
			hdr["Authorization"] = bearer(tok)
		}
		resp, body := do(t, "GET", base+"/api/v1/query/flamegraph?query=cpu&from=now-1h&until=now%2B1h", "", nil, hdr)
		if resp.StatusCode != 200 {
			return resp.StatusCode, 0
		}
		var fg struct {
			Data struct {
				Total int64 `json:"total"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &fg); err != nil {
			t.Fatalf("flame graph: %v: %s", err, body)
		}
		return resp.StatusCode, fg.Data.Total
	}
	_, want := total(ing, readerToken)
	if want == 0 {
		t.Fatal("the ingester answers an empty flame graph")
	}
	if code, n := total(q, readerToken); code != 200 || n != want {
		t.Errorf("team-a's reader on the querier: %d, total %d; want 200 and %d, from the ingester's head", code, n, want)
	}
	if code, n := total(q, otherToken); code != 200 || n != 0 {
		t.Errorf("team-b's token on the querier: %d, total %d; want 200 and nothing of team-a's", code, n)
	}
	_, metrics := do(t, "GET", q+"/metrics", "", nil, nil)
	if want := `hearth_querier_ingester_requests_total{ingester="` + qcfg.Ingesters + `",result="success"}`; !strings.Contains(string(metrics), want) {
		t.Errorf("the querier's /metrics do not count its requests to the ingester: no %s", want)
	}
	if code, _ := total(q, ""); code != http.StatusUnauthorized {
		t.Errorf("no token on the querier: %d; want 401", code)
	}
	resp, _ = do(t, "GET", ing+"/internal/v1/head?start=0&end=1", "", nil, nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the ingester's head route without a token: %s; want 401", resp.Status)
	}
	resp, _ = do(t, "GET", ing+"/internal/v1/head?start=0&end=1", "", nil, map[string]string{"Authorization": bearer(writerToken)})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("the ingester's head route with a write-only token: %s; want 403", resp.Status)
	}

	// A tenant only in the ingester's head is offered by the querier's
	// whoami to a token of every tenant; the ingester lists its tenants
	// to such a token only.
	resp, _ = do(t, "POST", ing+"/ingest?name=app.cpu&format=folded", "text/plain", []byte("main 1\n"),
		map[string]string{"Authorization": bearer(allToken), "X-Scope-OrgID": "team-z"})
	if resp.StatusCode != 200 {
		t.Fatalf("push of team-z to the ingester: %s", resp.Status)
	}
	resp, body := do(t, "GET", q+"/api/v1/auth/whoami", "", nil, map[string]string{"Authorization": bearer(allToken)})
	var who struct{ Tenants []string }
	if err := json.Unmarshal(body, &who); err != nil || resp.StatusCode != 200 {
		t.Fatalf("whoami on the querier: %s %s", resp.Status, body)
	}
	if !slices.Contains(who.Tenants, "team-z") || !slices.Contains(who.Tenants, "team-a") {
		t.Errorf("whoami on the querier offers %q; want team-a and team-z, which only the ingester's head holds", who.Tenants)
	}
	resp, _ = do(t, "GET", ing+"/internal/v1/tenants", "", nil, map[string]string{"Authorization": bearer(readerToken)})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("the ingester's tenants route with a token of team-a only: %s; want 403", resp.Status)
	}
}
