package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/hearth-profiler/hearth/internal/logtest"
	"github.com/hearth-profiler/hearth/internal/server"
	"github.com/hearth-profiler/hearth/internal/testfiles"
	"github.com/hearth-profiler/hearth/internal/tlsconfig"
	"github.com/hearth-profiler/hearth/internal/tlsconfig/tlstest"
)

// serveTLS starts a server of cfg with TLS on a free port and returns its
// address (host:port).
func serveTLS(t *testing.T, cfg server.Config) string {
	t.Helper()
	return serveTLSLog(t, cfg, tlog{t})
}

// serveTLSLog is serveTLS with the server's log, at debug level, to w.
func serveTLSLog(t *testing.T, cfg server.Config, w io.Writer) string {
	t.Helper()
	_, addr := serveLog(t, cfg, w)
	return addr
}

// serveLog serves a server on a loopback port (HTTP/1.1 and cleartext
// HTTP/2, as Run does, or TLS as cfg says), its log at debug level to w,
// and returns it with its address.
func serveLog(t *testing.T, cfg server.Config, w io.Writer) (*server.Server, string) {
	t.Helper()
	cfg.DataDir = t.TempDir()
	cfg.SelfProfileInterval = 0
	cfg.OTLPGRPCAddr = ""
	s, err := server.New(cfg, slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return s, ln.Addr().String()
}

// tlsFiles writes a CA and a server certificate it signed to a directory.
func tlsFiles(t *testing.T) (ca *tlstest.CA, certFile, keyFile, caFile string) {
	t.Helper()
	dir := t.TempDir()
	ca = tlstest.NewCA(t, "test CA")
	certFile, keyFile = ca.Server(t).Write(t, dir, "server")
	return ca, certFile, keyFile, ca.Write(t, dir, "ca")
}

// TestTLSWaysIn serves TLS and reaches the server by HTTP/1.1, by HTTP/2
// (negotiated by ALPN), with the Connect push client and with a gRPC
// OTLP client on the one port; cleartext is refused.
func TestTLSWaysIn(t *testing.T) {
	ca, certFile, keyFile, _ := tlsFiles(t)
	cfg := server.DefaultConfig()
	cfg.TLS = tlsconfig.Server{CertFile: certFile, KeyFile: keyFile}
	addr := serveTLS(t, cfg)
	base := "https://" + addr

	for _, c := range []struct {
		name  string
		h2    bool
		proto string
	}{{"HTTP/1.1", false, "HTTP/1.1"}, {"HTTP/2", true, "HTTP/2.0"}} {
		t.Run(c.name, func(t *testing.T) {
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, ForceAttemptHTTP2: c.h2}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Get(base + "/ready")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Proto != c.proto {
				t.Fatalf("/ready: %s over %s, want 200 over %s", resp.Status, resp.Proto, c.proto)
			}
		})
	}

	// Cleartext to the TLS port.
	resp, err := http.Get("http://" + addr + "/ready")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("a cleartext request was answered 200 on the TLS port")
		}
	}

	// push.v1 over Connect, HTTP/2 over TLS.
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	cpu, err := os.ReadFile(testfiles.CorpusCPU(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	_, err = pushv1connect.NewPusherServiceClient(&http.Client{Transport: tr}, base).Push(context.Background(), connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels:  []*typesv1.LabelPair{{Name: "__name__", Value: "process_cpu"}, {Name: "service_name", Value: "over-tls"}},
		Samples: []*pushv1.RawSample{{RawProfile: cpu}},
	}}}))
	if err != nil {
		t.Fatalf("Connect push over TLS: %v", err)
	}

	// OTLP gRPC on the main port, over TLS.
	if err := exportOTLP(t, addr, credentials.NewTLS(&tls.Config{RootCAs: ca.Pool()})); err != nil {
		t.Fatalf("OTLP gRPC over TLS: %v", err)
	}

	resp, err = (&http.Client{Transport: tr}).Get(base + "/api/v1/label/service_name/values?from=1700000000")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, svc := range []string{"over-tls", "checkout"} {
		if !strings.Contains(string(body), `"`+svc+`"`) {
			t.Errorf("service %s missing after pushing over TLS: %s", svc, body)
		}
	}
}

func exportOTLP(t *testing.T, addr string, creds credentials.TransportCredentials) error {
	t.Helper()
	payload, err := os.ReadFile(testfiles.Path(t, "internal/otlp/testdata/export-proto-v1.10.0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	req := pprofileotlp.NewExportRequest()
	if err := req.UnmarshalProto(payload); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = pprofileotlp.NewGRPCClient(conn).Export(ctx, req)
	return err
}

// TestTLSClientCertificates: with a client CA, requests without a client
// certificate are refused, over HTTP and gRPC, and logged as warnings;
// requests with one are served. A connection closed before its handshake,
// a TCP probe's, is logged at debug level only.
func TestTLSClientCertificates(t *testing.T) {
	ca, certFile, keyFile, caFile := tlsFiles(t)
	cfg := server.DefaultConfig()
	cfg.TLS = tlsconfig.Server{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile}
	var logs logtest.Buffer
	addr := serveTLSLog(t, cfg, &logs)
	probe, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	probe.Close()
	clientCert := ca.Client(t, "pusher").TLS(t)
	get := func(tc *tls.Config) error {
		tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + addr + "/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if err := get(&tls.Config{RootCAs: ca.Pool()}); err == nil {
		t.Error("HTTPS without a client certificate was served")
	}
	if err := get(&tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{clientCert}}); err != nil {
		t.Errorf("HTTPS with a client certificate: %v", err)
	}
	if err := exportOTLP(t, addr, credentials.NewTLS(&tls.Config{RootCAs: ca.Pool()})); err == nil {
		t.Error("gRPC without a client certificate was served")
	}
	if err := exportOTLP(t, addr, credentials.NewTLS(&tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{clientCert}})); err != nil {
		t.Errorf("gRPC with a client certificate: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), ": EOF") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	var warned, probed bool
	for _, line := range strings.Split(logs.String(), "\n") {
		switch {
		case strings.Contains(line, "didn't provide a certificate"):
			warned = warned || strings.Contains(line, "level=WARN")
		case strings.Contains(line, "TLS handshake error") && strings.Contains(line, ": EOF"):
			probed = true
			if !strings.Contains(line, "level=DEBUG") {
				t.Errorf("a probe's connection is logged above debug: %s", line)
			}
		}
	}
	if !warned || !probed {
		t.Errorf("want a warning for the client without a certificate and a debug line for the probe; log:\n%s", logs.String())
	}
}

// TestTLSRotation replaces the certificate files of a serving server: new
// connections get the new certificate.
func TestTLSRotation(t *testing.T) {
	ca, certFile, keyFile, _ := tlsFiles(t)
	cfg := server.DefaultConfig()
	cfg.TLS = tlsconfig.Server{CertFile: certFile, KeyFile: keyFile, CheckInterval: 50 * time.Millisecond}
	addr := serveTLS(t, cfg)
	served := func() []byte {
		t.Helper()
		// A new transport each time: a new connection, a new handshake.
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get("https://" + addr + "/ready")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].Raw
	}
	first := served()
	next := ca.Server(t)
	next.Write(t, filepath.Dir(certFile), "server")
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := served()
		if bytes.Equal(got, next.Cert.Raw) {
			break
		}
		if !bytes.Equal(got, first) {
			t.Fatal("the server shows a certificate that is neither the old nor the new")
		}
		if time.Now().After(deadline) {
			t.Fatal("the replaced certificate is not served after 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTLSStartErrors: a server with wrong TLS files does not start, and
// says why in one line naming the flag.
func TestTLSStartErrors(t *testing.T) {
	ca, certFile, keyFile, _ := tlsFiles(t)
	_, otherKey := ca.Server(t).Write(t, t.TempDir(), "other")
	for _, c := range []struct {
		name string
		tls  tlsconfig.Server
		want string
	}{
		{"cert without key", tlsconfig.Server{CertFile: certFile}, "--tls.cert-file is set without --tls.key-file"},
		{"missing key", tlsconfig.Server{CertFile: certFile, KeyFile: keyFile + ".gone"}, "--tls.key-file: stat"},
		{"key of another certificate", tlsconfig.Server{CertFile: certFile, KeyFile: otherKey}, "private key does not match public key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := server.DefaultConfig()
			cfg.DataDir = t.TempDir()
			cfg.TLS = c.tls
			s, err := server.New(cfg, nil)
			if err == nil {
				s.Close()
				t.Fatal("the server started")
			}
			if !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q: want one line with %q", err, c.want)
			}
		})
	}
}
