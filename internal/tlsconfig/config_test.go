package tlsconfig_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/logtest"
	"github.com/hearth-profiler/hearth/internal/tlsconfig"
	"github.com/hearth-profiler/hearth/internal/tlsconfig/tlstest"
)

// serveTLS accepts connections with cfg, completing each handshake and
// writing one byte, until the test ends.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if c.(*tls.Conn).Handshake() == nil {
					c.Write([]byte{1})
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// dial connects with cfg and returns the certificate the server showed;
// a refused handshake is an error.
func dial(addr string, cfg *tls.Config) ([]byte, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// With TLS 1.3 the server checks the client's certificate after the
	// client thinks the handshake is done: reading tells.
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		return nil, err
	}
	return c.ConnectionState().PeerCertificates[0].Raw, nil
}

func TestServerErrors(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	certFile, keyFile := ca.Server(t).Write(t, dir, "server")
	_, otherKey := ca.Server(t).Write(t, dir, "other")
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not PEM\n"), 0o600)
	missing := filepath.Join(dir, "missing.crt")
	for _, c := range []struct {
		name string
		cfg  tlsconfig.Server
		want string
	}{
		{"cert only", tlsconfig.Server{CertFile: certFile}, "--tls.cert-file is set without --tls.key-file"},
		{"key only", tlsconfig.Server{KeyFile: keyFile}, "--tls.key-file is set without --tls.cert-file"},
		{"client CA only", tlsconfig.Server{ClientCAFile: certFile}, "--tls.client-ca-file needs --tls.cert-file and --tls.key-file"},
		{"missing cert", tlsconfig.Server{CertFile: missing, KeyFile: keyFile}, "--tls.cert-file: stat " + missing + ": no such file"},
		{"missing key", tlsconfig.Server{CertFile: certFile, KeyFile: missing}, "--tls.key-file: stat " + missing + ": no such file"},
		{"mismatch", tlsconfig.Server{CertFile: certFile, KeyFile: otherKey}, "are not a certificate and its key: tls: private key does not match public key"},
		{"not PEM", tlsconfig.Server{CertFile: garbage, KeyFile: keyFile}, "are not a certificate and its key"},
		{"client CA not PEM", tlsconfig.Server{CertFile: certFile, KeyFile: keyFile, ClientCAFile: garbage}, "--tls.client-ca-file: " + garbage + " holds no PEM certificate"},
		{"min version", tlsconfig.Server{CertFile: certFile, KeyFile: keyFile, MinVersion: "1.1"}, `--tls.min-version: "1.1": want 1.2 or 1.3`},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := c.cfg.Config(nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, %v; want an error with %q", cfg, err, c.want)
			}
		})
	}
	if cfg, err := (tlsconfig.Server{}).Config(nil); cfg != nil || err != nil {
		t.Errorf("no files: got %v, %v; want no TLS and no error", cfg, err)
	}
}

// TestRotation replaces the server's files while it serves: a handshake
// after the check interval gets the new certificate; a new pair that does
// not match is logged and the one before stays.
func TestRotation(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	first, second, third := ca.Server(t), ca.Server(t), ca.Server(t)
	certFile, keyFile := first.Write(t, dir, "server")
	var logs logtest.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	cfg, err := tlsconfig.Server{CertFile: certFile, KeyFile: keyFile, CheckInterval: 50 * time.Millisecond}.Config(logger)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, cfg)
	client := &tls.Config{RootCAs: ca.Pool()}
	shown := func() []byte {
		t.Helper()
		raw, err := dial(addr, client)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	if !bytes.Equal(shown(), first.Cert.Raw) {
		t.Fatal("the server does not show its first certificate")
	}
	second.Write(t, dir, "server")
	waitFor(t, func() bool { return bytes.Equal(shown(), second.Cert.Raw) }, "the replaced certificate")
	if !strings.Contains(logs.String(), "TLS certificate reloaded") {
		t.Errorf("the reload was not logged:\n%s", logs.String())
	}

	// A certificate with the wrong key: the second pair stays.
	if err := os.WriteFile(certFile, third.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		shown()
		return strings.Contains(logs.String(), "TLS certificate reload failed")
	}, "the failed reload in the log")
	if !strings.Contains(logs.String(), "private key does not match public key") {
		t.Errorf("the log does not say why the reload failed:\n%s", logs.String())
	}
	failures := strings.Count(logs.String(), "TLS certificate reload failed")
	for range 3 {
		time.Sleep(60 * time.Millisecond)
		if !bytes.Equal(shown(), second.Cert.Raw) {
			t.Fatal("after a failed reload the server does not show the previous certificate")
		}
	}
	if n := strings.Count(logs.String(), "TLS certificate reload failed"); n != failures {
		t.Errorf("the failed reload was logged again on later handshakes (%d times, then %d), want once until the files change:\n%s", failures, n, logs.String())
	}
	// The matching key arrives: the third pair is served.
	if err := os.WriteFile(keyFile, third.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return bytes.Equal(shown(), third.Cert.Raw) }, "the third certificate once its key is written")
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 5s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClientCertificates: with a client CA the server refuses clients
// without a certificate or with one another authority signed.
func TestClientCertificates(t *testing.T) {
	dir := t.TempDir()
	ca, other := tlstest.NewCA(t, "test CA"), tlstest.NewCA(t, "other CA")
	certFile, keyFile := ca.Server(t).Write(t, dir, "server")
	caFile := ca.Write(t, dir, "ca")
	cfg, err := tlsconfig.Server{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile}.Config(nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, cfg)
	for _, c := range []struct {
		name string
		pair *tlstest.Pair
		ok   bool
	}{
		{"no certificate", nil, false},
		{"certificate of another CA", ptr(other.Client(t, "intruder")), false},
		{"certificate of the CA", ptr(ca.Client(t, "agent")), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := tlsconfig.Client{CAFile: caFile}
			if c.pair != nil {
				opts.CertFile, opts.KeyFile = c.pair.Write(t, t.TempDir(), "client")
			}
			ccfg, err := opts.Config(nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = dial(addr, ccfg)
			if c.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !c.ok && err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestMinVersion(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	certFile, keyFile := ca.Server(t).Write(t, dir, "server")
	cfg, err := tlsconfig.Server{CertFile: certFile, KeyFile: keyFile, MinVersion: "1.3"}.Config(nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, cfg)
	if _, err := dial(addr, &tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS12}); err == nil {
		t.Error("a TLS 1.2 client was accepted with --tls.min-version 1.3")
	}
	if _, err := dial(addr, &tls.Config{RootCAs: ca.Pool()}); err != nil {
		t.Errorf("a TLS 1.3 client was refused: %v", err)
	}
}

// TestClientVerify: the client trusts the CA file only, checks the name
// it is given, and skips the check only when told to.
func TestClientVerify(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	certFile, keyFile := ca.Server(t, "hearth.internal").Write(t, dir, "server")
	cfg, err := tlsconfig.Server{CertFile: certFile, KeyFile: keyFile}.Config(nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, cfg)
	caFile := ca.Write(t, dir, "ca")
	otherCAFile := tlstest.NewCA(t, "other CA").Write(t, dir, "other")
	for _, c := range []struct {
		name string
		opts tlsconfig.Client
		want string // "" for success
	}{
		{"system roots", tlsconfig.Client{}, "certificate signed by unknown authority"},
		{"CA file", tlsconfig.Client{CAFile: caFile}, ""},
		{"other CA", tlsconfig.Client{CAFile: otherCAFile}, "certificate signed by unknown authority"},
		{"server name in the certificate", tlsconfig.Client{CAFile: caFile, ServerName: "hearth.internal"}, ""},
		{"server name not in the certificate", tlsconfig.Client{CAFile: caFile, ServerName: "elsewhere.example"}, "not elsewhere.example"},
		{"insecure", tlsconfig.Client{InsecureSkipVerify: true}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			ccfg, err := c.opts.Config(nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = dial(addr, ccfg)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
		})
	}
}

func TestClientErrors(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	certFile, _ := ca.Client(t, "c").Write(t, dir, "client")
	for _, c := range []struct {
		name string
		opts tlsconfig.Client
		want string
	}{
		{"cert without key", tlsconfig.Client{CertFile: certFile}, "--tls.cert-file is set without --tls.key-file"},
		{"missing CA", tlsconfig.Client{CAFile: filepath.Join(dir, "nope")}, "--tls.ca-file: open"},
		{"CA not PEM", tlsconfig.Client{CAFile: writeFile(t, dir, "x", "hello")}, "holds no PEM certificate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.opts.Config(nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
		})
	}
	if _, err := (tlsconfig.Client{}).Config(nil); err != nil {
		t.Errorf("no options: %v", err)
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
