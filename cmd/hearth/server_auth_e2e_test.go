package main_test

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/testfiles"
)

// TestServerAuth runs `hearth server --auth.tokens-file` with Hearth's own
// clients: requests need a token, push and query send theirs, a tenant
// outside the token's is refused in one line, SIGHUP reads the file again,
// and a bad file stops the start with one line naming the entry and
// field. No token reaches any output.
func TestServerAuth(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.yaml")
	write := func(entries string) {
		t.Helper()
		if err := os.WriteFile(tokens, []byte("tokens:\n"+entries), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("  - {name: ci, token: e2e-ci-secret, tenants: [team-a], scopes: [read, write]}\n")
	srv := startServer(t, t.TempDir(), freeAddr(t), "--auth.tokens-file", tokens)
	status := func(secret string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.url+"/api/v1/labels", nil)
		if secret != "" {
			req.Header.Set("Authorization", "Bearer "+secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(""); got != http.StatusUnauthorized {
		t.Errorf("no token: %d; want 401", got)
	}
	if got := status("e2e-ci-secret"); got != http.StatusOK {
		t.Errorf("token: %d; want 200", got)
	}

	tokenFile := filepath.Join(dir, "ci-token")
	if err := os.WriteFile(tokenFile, []byte("e2e-ci-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var outputs strings.Builder
	file := testfiles.CorpusCPU(t)[0]
	out, stderr, code := runHearth(t, []string{"HEARTH_TOKEN="}, "push", file, "--labels", "service_name=e2e-auth", "--server", srv.url, "--token-file", tokenFile)
	outputs.WriteString(out + stderr)
	if code != 0 {
		t.Fatalf("push with the token: exit %d: %s", code, stderr)
	}
	out, stderr, code = runHearth(t, []string{"HEARTH_TOKEN=e2e-ci-secret"}, "query", `cpu{service_name="e2e-auth"}`, "--from", "2000-01-01T00:00:00Z", "--output", "top", "--server", srv.url)
	outputs.WriteString(out + stderr)
	if code != 0 || !strings.Contains(out, "runtime.") {
		t.Errorf("query with the token: exit %d: %s%s", code, out, stderr)
	}
	out, stderr, code = runHearth(t, []string{"HEARTH_TOKEN="}, "push", file, "--labels", "service_name=e2e-auth", "--tenant", "team-b", "--server", srv.url, "--token-file", tokenFile)
	outputs.WriteString(out + stderr)
	if code == 0 || !strings.Contains(stderr, "403") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("push to a tenant outside the token's: exit %d: %q", code, stderr)
	}

	write("  - {name: second, token: e2e-second-secret, tenants: [team-a], scopes: [read]}\n")
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// Within 3 s, before the file is polled (every 5 s): SIGHUP did it.
	for deadline := time.Now().Add(3 * time.Second); status("e2e-second-secret") != http.StatusOK; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the new token is not accepted after SIGHUP; logs:\n%s", srv.logs)
		}
	}
	if got := status("e2e-ci-secret"); got != http.StatusUnauthorized {
		t.Errorf("removed token after SIGHUP: %d; want 401", got)
	}

	// Stopped, so that its log is complete and no longer written.
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := srv.cmd.Wait(); err != nil {
		t.Errorf("server: %v", err)
	}
	outputs.WriteString(srv.logs.String())

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("tokens:\n  - {name: x, token: e2e-bad-secret, tenants: [team-a], scopes: [reed]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(hearthBin, "server", "--listen", freeAddr(t), "--data", t.TempDir(), "--otlp.grpc.listen=", "--auth.tokens-file", bad)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Fatalf("server with a bad tokens file: %v; want a non-zero exit", err)
	}
	if !strings.Contains(errb.String(), `entry 1 (name "x"): scopes: unknown scope "reed"`) {
		t.Errorf("stderr of a bad tokens file:\n%s", errb.String())
	}
	outputs.WriteString(errb.String())
	if strings.Contains(outputs.String(), "e2e-") {
		t.Errorf("a token shows in an output or log:\n%s", outputs.String())
	}
}
