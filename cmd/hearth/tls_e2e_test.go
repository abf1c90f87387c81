package main_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/hearth-profiler/hearth/internal/agent/bpf"
	"github.com/hearth-profiler/hearth/internal/logtest"
	"github.com/hearth-profiler/hearth/internal/testfiles"
	"github.com/hearth-profiler/hearth/internal/tlsconfig/tlstest"
)

// runHearth runs the binary with extra environment variables and returns
// its output and exit code.
func runHearth(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(hearthBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// pki is a CA with a server and a client certificate, as files.
type pki struct {
	ca                    *tlstest.CA
	dir                   string
	caFile                string
	serverCert, serverKey string
	clientCert, clientKey string
	clientPair            tls.Certificate
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{ca: tlstest.NewCA(t, "hearth test CA"), dir: t.TempDir()}
	p.caFile = p.ca.Write(t, p.dir, "ca")
	p.serverCert, p.serverKey = p.ca.Server(t).Write(t, p.dir, "server")
	client := p.ca.Client(t, "hearth test client")
	p.clientCert, p.clientKey = client.Write(t, p.dir, "client")
	p.clientPair = client.TLS(t)
	return p
}

// tlsClientConfig trusts the CA and shows the client certificate.
func (p *pki) tlsClientConfig() *tls.Config {
	return &tls.Config{RootCAs: p.ca.Pool(), Certificates: []tls.Certificate{p.clientPair}}
}

// startTLSServer runs `hearth server` with TLS and waits for /ready over
// HTTPS; its url is https://.
func startTLSServer(t *testing.T, p *pki, addr string, extra ...string) *proc {
	t.Helper()
	var logs logtest.Buffer
	args := append([]string{"server", "--listen", addr, "--data", t.TempDir(), "--self-profile.interval", "0",
		"--tls.cert-file", p.serverCert, "--tls.key-file", p.serverKey}, extra...)
	cmd := exec.Command(hearthBin, args...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	srv := &proc{cmd: cmd, url: "https://" + addr}
	tr := &http.Transport{TLSClientConfig: p.tlsClientConfig()}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := hc.Get(srv.url + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				t.Cleanup(func() {
					if t.Failed() {
						t.Logf("server log:\n%s", logs.String())
					}
				})
				return srv
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("server not ready over HTTPS after 30s; logs:\n%s", logs.String())
	return nil
}

func oneLineFailure(t *testing.T, what, stderr string, code int) {
	t.Helper()
	t.Logf("%s: %s", what, strings.TrimSpace(stderr))
	if code == 0 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.HasPrefix(stderr, "hearth ") {
		t.Errorf("%s: exit %d, stderr %q: want non-zero and one line", what, code, stderr)
	}
}

// TestTLS runs `hearth server` with TLS and client certificates required:
// push and query reach it over HTTPS with --tls.ca-file and a client
// certificate, clients without either are refused, OTLP gRPC works over
// TLS on its own port, and a replaced certificate is served without a
// restart.
func TestTLS(t *testing.T) {
	p := newPKI(t)
	grpcAddr := freeAddr(t)
	srv := startTLSServer(t, p, freeAddr(t), "--tls.client-ca-file", p.caFile, "--otlp.grpc.listen="+grpcAddr)
	withCert := []string{"--server", srv.url, "--tls.ca-file", p.caFile, "--tls.cert-file", p.clientCert, "--tls.key-file", p.clientKey}
	file := testfiles.CorpusCPU(t)[0]

	out, stderr, code := runHearth(t, nil, append([]string{"push", file, "--labels", "service_name=over-tls"}, withCert...)...)
	if code != 0 || !strings.Contains(out, "pushed ") {
		t.Fatalf("push over TLS: exit %d\n%s%s", code, out, stderr)
	}
	out, stderr, code = runHearth(t, nil, append([]string{"query", `cpu{service_name="over-tls"}`, "--from", "1700000000", "--output", "top"}, withCert...)...)
	if code != 0 || !strings.Contains(out, "process_cpu") {
		t.Fatalf("query over TLS: exit %d\n%s%s", code, out, stderr)
	}

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no client certificate", []string{"--server", srv.url, "--tls.ca-file", p.caFile}, "the server requires a client certificate: give --tls.cert-file and --tls.key-file"},
		{"the system's authorities", []string{"--server", srv.url}, "give its CA with --tls.ca-file"},
		{"a name the certificate lacks", append([]string{"--tls.server-name", "elsewhere.example"}, withCert...), "--tls.server-name"},
		{"TLS flags on http://", []string{"--server", "http://" + strings.TrimPrefix(srv.url, "https://"), "--tls.ca-file", p.caFile}, "--tls.* flags are for an https:// --server"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, code := runHearth(t, nil, append([]string{"query", `cpu{}`}, c.args...)...)
			oneLineFailure(t, c.name, stderr, code)
			if !strings.Contains(stderr, c.want) {
				t.Errorf("stderr %q does not say %q", stderr, c.want)
			}
		})
	}

	t.Run("OTLP gRPC", func(t *testing.T) {
		payload, err := os.ReadFile(testfiles.Path(t, "internal/otlp/testdata/export-proto-v1.10.0.pb"))
		if err != nil {
			t.Fatal(err)
		}
		req := pprofileotlp.NewExportRequest()
		if err := req.UnmarshalProto(payload); err != nil {
			t.Fatal(err)
		}
		export := func(cfg *tls.Config) error {
			conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = pprofileotlp.NewGRPCClient(conn).Export(ctx, req)
			return err
		}
		if err := export(&tls.Config{RootCAs: p.ca.Pool()}); err == nil {
			t.Error("OTLP gRPC without a client certificate was served")
		}
		if err := export(p.tlsClientConfig()); err != nil {
			t.Fatalf("OTLP gRPC over TLS: %v", err)
		}
		out, stderr, code := runHearth(t, nil, append([]string{"query", `cpu{service_name="checkout"}`, "--from", "1700000000", "--output", "top"}, withCert...)...)
		if code != 0 || !strings.Contains(out, "process_cpu") {
			t.Fatalf("query after the OTLP export: exit %d\n%s%s", code, out, stderr)
		}
	})

	t.Run("rotation", func(t *testing.T) {
		served := func() []byte {
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", strings.TrimPrefix(srv.url, "https://"), p.tlsClientConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			return c.ConnectionState().PeerCertificates[0].Raw
		}
		before := served()
		next := p.ca.Server(t)
		next.Write(t, p.dir, "server")
		// The files are checked at most every 5 s.
		deadline := time.Now().Add(20 * time.Second)
		for !bytes.Equal(served(), next.Cert.Raw) {
			if time.Now().After(deadline) {
				t.Fatal("the replaced certificate is not served after 20s")
			}
			time.Sleep(200 * time.Millisecond)
		}
		if bytes.Equal(before, next.Cert.Raw) {
			t.Fatal("the test's two certificates are the same")
		}
		// And push still works over the new one.
		out, stderr, code := runHearth(t, nil, append([]string{"push", file, "--labels", "service_name=after-rotation"}, withCert...)...)
		if code != 0 {
			t.Fatalf("push after rotation: exit %d\n%s%s", code, out, stderr)
		}
	})
}

// TestTLSStartErrors: `hearth server` with wrong TLS files exits non-zero
// with one line naming the flag.
func TestTLSStartErrors(t *testing.T) {
	p := newPKI(t)
	_, otherKey := p.ca.Server(t).Write(t, t.TempDir(), "other")
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"cert without key", []string{"--tls.cert-file", p.serverCert}, "--tls.cert-file is set without --tls.key-file"},
		{"missing cert", []string{"--tls.cert-file", p.serverCert + ".gone", "--tls.key-file", p.serverKey}, "--tls.cert-file: stat"},
		{"pair that does not match", []string{"--tls.cert-file", p.serverCert, "--tls.key-file", otherKey}, "private key does not match public key"},
		{"min version", []string{"--tls.cert-file", p.serverCert, "--tls.key-file", p.serverKey, "--tls.min-version", "1.0"}, "--tls.min-version"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"server", "--listen", freeAddr(t), "--data", t.TempDir(), "--otlp.grpc.listen="}, c.args...)
			_, stderr, code := runHearth(t, nil, args...)
			oneLineFailure(t, c.name, stderr, code)
			if !strings.Contains(stderr, c.want) {
				t.Errorf("stderr %q does not say %q", stderr, c.want)
			}
		})
	}
}

// tokenServer answers like a server that checks tokens: 200 to good, 403
// to other (a token of another tenant), 401 otherwise, and echoes the
// header it got in its messages, as a careless server might. It keeps
// the headers it saw.
type tokenServer struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

func newTokenServer(t *testing.T) *tokenServer {
	ts := &tokenServer{}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		ts.mu.Lock()
		ts.seen = append(ts.seen, auth)
		ts.mu.Unlock()
		switch auth {
		case "Bearer good-token":
			if strings.HasPrefix(r.URL.Path, "/api/v1/query/") {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, `{"status":"success","data":{"entries":[]}}`)
			}
		case "Bearer other-token":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, `{"status":"error","errorType":"forbidden","error":"%s may not read tenant team-a"}`, auth)
		default:
			http.Error(w, "bad token: "+auth, http.StatusUnauthorized)
		}
	}))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *tokenServer) last() string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.seen) == 0 {
		return "(no request)"
	}
	return ts.seen[len(ts.seen)-1]
}

// TestClientToken: push and query send the token of --token-file or
// HEARTH_TOKEN (the flag wins), and a 401 or 403 is one line saying what
// to do, without the token.
func TestClientToken(t *testing.T) {
	ts := newTokenServer(t)
	dir := t.TempDir()
	n := 0
	tokenFile := func(tok string) string {
		n++
		f := filepath.Join(dir, fmt.Sprintf("token-%d", n))
		if err := os.WriteFile(f, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	file := testfiles.CorpusCPU(t)[0]
	commands := map[string][]string{
		"push":  {"push", file, "--labels", "service_name=x", "--server", ts.URL},
		"query": {"query", `cpu{}`, "--output", "top", "--tenant", "team-a", "--server", ts.URL},
	}
	for name, cmd := range commands {
		t.Run(name, func(t *testing.T) {
			for _, c := range []struct {
				name   string
				env    []string
				args   []string
				header string
				want   []string // in stderr; none: success
			}{
				{"token file", nil, []string{"--token-file", tokenFile("good-token")}, "Bearer good-token", nil},
				{"variable", []string{"HEARTH_TOKEN=good-token"}, nil, "Bearer good-token", nil},
				{"the flag wins", []string{"HEARTH_TOKEN=wrong-s3cret"}, []string{"--token-file", tokenFile("good-token")}, "Bearer good-token", nil},
				{"no token", []string{"HEARTH_TOKEN="}, nil, "", []string{"needs a token", "--token-file", "HEARTH_TOKEN", "401"}},
				{"wrong token", []string{"HEARTH_TOKEN=wrong-s3cret"}, nil, "Bearer wrong-s3cret", []string{"did not accept the token from HEARTH_TOKEN", "401"}},
				{"token of another tenant", nil, []string{"--token-file", tokenFile("other-token")}, "Bearer other-token", []string{"is not allowed to do this in", "403"}},
				{"empty token file", nil, []string{"--token-file", filepath.Join(dir, "empty")}, "", []string{"--token-file"}},
			} {
				t.Run(c.name, func(t *testing.T) {
					if c.name == "empty token file" {
						os.WriteFile(filepath.Join(dir, "empty"), []byte("\n"), 0o600)
					}
					before := ts.last()
					out, stderr, code := runHearth(t, append([]string{"HEARTH_TOKEN="}, c.env...), append(append([]string{}, cmd...), c.args...)...)
					if c.header != "" || c.want == nil {
						if got := ts.last(); got != c.header {
							t.Errorf("Authorization %q, want %q", got, c.header)
						}
					} else if c.name == "empty token file" && ts.last() != before {
						t.Error("a request was sent with an empty token file")
					}
					if c.want == nil {
						if code != 0 {
							t.Fatalf("exit %d\n%s%s", code, out, stderr)
						}
						return
					}
					oneLineFailure(t, c.name, stderr, code)
					for _, w := range c.want {
						if !strings.Contains(stderr, w) {
							t.Errorf("stderr %q does not say %q", stderr, w)
						}
					}
					for _, secret := range []string{"wrong-s3cret", "other-token", "good-token"} {
						if strings.Contains(out+stderr, secret) {
							t.Errorf("the output shows the token %q: %q", secret, out+stderr)
						}
					}
				})
			}
		})
	}
}

// startAgent runs `hearth agent` with args until the test ends, sending
// its log to logs, and returns a function that stops it with SIGTERM and
// checks that it exits cleanly.
func startAgent(t *testing.T, logs *logtest.Buffer, args ...string) (stop func()) {
	t.Helper()
	cmd := exec.Command(hearthBin, append([]string{"agent", "--listen", "", "--interval", "1s", "--drain-interval", "500ms"}, args...)...)
	cmd.Env = append(os.Environ(), "HEARTH_TOKEN=")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return func() {
		t.Helper()
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("agent: %v; logs:\n%s", err, logs.String())
		}
	}
}

// TestAgentTLS runs `hearth agent` against `hearth server` over TLS with a
// client certificate, and against a server that refuses its token, whose
// file it re-reads. It needs what TestAgent needs, and is skipped the same
// way.
func TestAgentTLS(t *testing.T) {
	if err := bpf.Check(); err != nil {
		if os.Getenv("HEARTH_REQUIRE_BPF") != "" {
			t.Fatalf("eBPF profiling is not possible here: %v", err)
		}
		t.Skipf("eBPF profiling is not possible here: %v", err)
	}
	p := newPKI(t)
	burn := filepath.Join(t.TempDir(), "burn-tls")
	if out, err := exec.Command("go", "build", "-o", burn, filepath.Join("testdata", "burn", "burn.go")).CombinedOutput(); err != nil {
		t.Fatalf("build the Go program: %v\n%s", err, out)
	}
	burnCmd := exec.Command(burn)
	burnCmd.Env = append(os.Environ(), "OTEL_SERVICE_NAME=burn-tls")
	if err := burnCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { burnCmd.Process.Kill(); burnCmd.Wait() })
	pid := strconv.Itoa(burnCmd.Process.Pid)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("first-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("hearth server with client certificates", func(t *testing.T) {
		srv := startTLSServer(t, p, freeAddr(t), "--tls.client-ca-file", p.caFile)
		var logs logtest.Buffer
		stop := startAgent(t, &logs, "--server", srv.url, "--include-pid", pid, "--token-file", tokenFile,
			"--tls.ca-file", p.caFile, "--tls.cert-file", p.clientCert, "--tls.key-file", p.clientKey)
		tr := &http.Transport{TLSClientConfig: p.tlsClientConfig()}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		deadline := time.Now().Add(20 * time.Second)
		for {
			resp, err := hc.Get(srv.url + "/api/v1/label/service_name/values?from=now-5m")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), `"burn-tls"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no profile of burn-tls after 20s: %s; agent logs:\n%s", body, logs.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
		stop()
		if strings.Contains(logs.String(), "first-s3cret") {
			t.Errorf("the agent's log shows its token:\n%s", logs.String())
		}
	})

	t.Run("token refused, then rotated", func(t *testing.T) {
		var mu sync.Mutex
		seen := map[string]bool{}
		ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen[r.Header.Get("Authorization")] = true
			mu.Unlock()
			http.Error(w, "unknown token", http.StatusUnauthorized)
		}))
		ts.EnableHTTP2 = true
		ts.TLS = &tls.Config{Certificates: []tls.Certificate{p.ca.Server(t).TLS(t)}}
		ts.StartTLS()
		defer ts.Close()
		saw := func(h string) func() bool {
			return func() bool { mu.Lock(); defer mu.Unlock(); return seen[h] }
		}
		var logs logtest.Buffer
		stop := startAgent(t, &logs, "--server", ts.URL, "--include-pid", pid, "--token-file", tokenFile, "--tls.ca-file", p.caFile)
		waitUntil(t, 20*time.Second, "the first token", saw("Bearer first-s3cret"), &logs)
		waitUntil(t, 10*time.Second, "the refusal in the log", func() bool {
			return strings.Contains(logs.String(), "the server did not accept the token")
		}, &logs)
		if err := os.WriteFile(tokenFile, []byte("second-s3cret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		// Refused pushes back off for up to a minute; a few seconds here.
		waitUntil(t, 30*time.Second, "the rotated token", saw("Bearer second-s3cret"), &logs)
		stop()
		for _, secret := range []string{"first-s3cret", "second-s3cret"} {
			if strings.Contains(logs.String(), secret) {
				t.Errorf("the agent's log shows its token %s:\n%s", secret, logs.String())
			}
		}
	})
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool, logs *logtest.Buffer) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v; agent logs:\n%s", what, d, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
