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
)

// TestServerAuthFlags runs `hearth server --auth.tokens-file`: requests
// need a token, SIGHUP reads the file again, and a bad file stops the
// start with one line naming the entry and field.
func TestServerAuthFlags(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.yaml")
	write := func(name, secret string) {
		t.Helper()
		s := "tokens:\n  - {name: " + name + ", token: " + secret + ", tenants: [team-a], scopes: [read]}\n"
		if err := os.WriteFile(tokens, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("first", "e2e-first-secret")
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
	if got := status("e2e-first-secret"); got != http.StatusOK {
		t.Errorf("token: %d; want 200", got)
	}
	write("second", "e2e-second-secret")
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// Within 3 s, before the file is polled (every 5 s): SIGHUP did it.
	for deadline := time.Now().Add(3 * time.Second); status("e2e-second-secret") != http.StatusOK; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the new token is not accepted after SIGHUP; logs:\n%s", srv.logs)
		}
	}
	if strings.Contains(srv.logs.String(), "e2e-") {
		t.Errorf("the log holds a token:\n%s", srv.logs)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("tokens:\n  - {name: x, token: e2e-bad-secret, tenants: [team-a], scopes: [reed]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(hearthBin, "server", "--listen", freeAddr(t), "--data", t.TempDir(), "--otlp.grpc.listen=", "--auth.tokens-file", bad)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Fatalf("server with a bad tokens file: %v; want a non-zero exit", err)
	}
	if !strings.Contains(stderr.String(), `entry 1 (name "x"): scopes: unknown scope "reed"`) || strings.Contains(stderr.String(), "e2e-bad-secret") {
		t.Errorf("stderr of a bad tokens file:\n%s", stderr.String())
	}
}
