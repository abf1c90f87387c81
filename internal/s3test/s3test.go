// Package s3test runs an S3 server on loopback for tests, as httptest
// runs an HTTP server: versitygw (its posix backend, over a temporary
// directory), one process per Start, on a free port.
//
//	srv := s3test.Start(t)
//	name := srv.NewBucket(t)
//	cfg := &bucket.Config{Type: "s3", Config: srv.Config(name)}
//
// versitygw is looked for on PATH, then in GOBIN or GOPATH/bin; when it is
// in neither, the first Start of any test binary installs it with
// `go install` (VersitygwPackage), under a file lock so that test binaries
// running in parallel build it once. A test that cannot have it fails,
// saying how to install it: it never skips.
//
// To run the same tests against another S3 server (SeaweedFS, MinIO, AWS),
// set HEARTH_TEST_S3_ENDPOINT (host:port, plain HTTP),
// HEARTH_TEST_S3_ACCESS_KEY and HEARTH_TEST_S3_SECRET_KEY, and
// HEARTH_TEST_S3_REGION if it needs one; each test then makes its buckets
// there, and empties and removes them when it ends. Stop and Restart need
// the test's own server: with an external one, a test that calls them is
// skipped.
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/thanos-io/objstore/providers/s3"
)

// VersitygwPackage is what Start installs when versitygw is not found:
// the version that the tests and CI's .ci/run use.
const VersitygwPackage = "github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// Environment variables that point the tests at an S3 server of one's own.
const (
	EnvEndpoint  = "HEARTH_TEST_S3_ENDPOINT"
	EnvAccessKey = "HEARTH_TEST_S3_ACCESS_KEY"
	EnvSecretKey = "HEARTH_TEST_S3_SECRET_KEY"
	EnvRegion    = "HEARTH_TEST_S3_REGION"
)

// Server is an S3 server for one test.
type Server struct {
	// Endpoint is the server's host:port; it speaks plain HTTP.
	Endpoint             string
	AccessKey, SecretKey string
	Region               string

	t        testing.TB
	external bool
	bin      string // versitygw
	root     string // the posix backend's directory

	mu   sync.Mutex
	cmd  *exec.Cmd     // nil while stopped
	done chan struct{} // closed when cmd has exited
	logs *bytes.Buffer
}

// Start starts a server that the test's Cleanup stops, or returns the
// external one that the environment names.
func Start(t testing.TB) *Server {
	t.Helper()
	if ep := os.Getenv(EnvEndpoint); ep != "" {
		return &Server{Endpoint: ep, AccessKey: os.Getenv(EnvAccessKey), SecretKey: os.Getenv(EnvSecretKey),
			Region: os.Getenv(EnvRegion), t: t, external: true}
	}
	bin, err := versitygw()
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	s := &Server{AccessKey: "hearth-test", SecretKey: "hearth-test-secret", t: t, bin: bin, root: t.TempDir()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Endpoint = ln.Addr().String()
	ln.Close()
	s.start()
	t.Cleanup(s.stop)
	return s
}

// External says whether the server is one the environment named.
func (s *Server) External() bool { return s.external }

// start runs versitygw on s.Endpoint and waits until it accepts
// connections.
func (s *Server) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	logs := &bytes.Buffer{}
	cmd := exec.Command(s.bin, "--access", s.AccessKey, "--secret", s.SecretKey,
		"--port", s.Endpoint, "--quiet", "posix", s.root)
	// versitygw also reads its keys from these; the flags must win.
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID=", "ROOT_SECRET_ACCESS_KEY=", "ROOT_ACCESS_KEY=", "ROOT_SECRET_KEY=")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("s3test: start versitygw: %v", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	s.cmd, s.done, s.logs = cmd, done, logs
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Endpoint, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			s.t.Fatalf("s3test: versitygw exited at start (%v):\n%s", cmd.ProcessState, logs)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("s3test: versitygw not listening on %s after 10s:\n%s", s.Endpoint, logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stop kills the server, if it runs.
func (s *Server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Stop stops the server, keeping its data, as an outage would: requests
// to Endpoint are refused until Restart.
func (s *Server) Stop() {
	s.t.Helper()
	if s.external {
		s.t.Skip("s3test: stopping the server needs the test's own, not " + EnvEndpoint)
	}
	s.stop()
}

// Restart starts a stopped server again on the same endpoint and data.
func (s *Server) Restart() {
	s.t.Helper()
	if s.external {
		s.t.Skip("s3test: restarting the server needs the test's own, not " + EnvEndpoint)
	}
	s.stop()
	s.start()
}

// Config returns the configuration of objstore's S3 provider for the
// bucket name on s: the config keys of a storage.bucket section.
func (s *Server) Config(name string) map[string]any {
	c := map[string]any{
		"bucket": name, "endpoint": s.Endpoint, "insecure": true,
		"access_key": s.AccessKey, "secret_key": s.SecretKey,
	}
	if s.Region != "" {
		c["region"] = s.Region
	}
	return c
}

var bucketSeq atomic.Int64

// NewBucket makes an empty bucket on s and returns its name. On an
// external server it is emptied and removed when the test ends.
func (s *Server) NewBucket(t testing.TB) string {
	t.Helper()
	var rnd [4]byte
	rand.Read(rnd[:])
	name := fmt.Sprintf("hearth-test-%d-%s", bucketSeq.Add(1), hex.EncodeToString(rnd[:]))
	cfg := s3.Config{Bucket: name, Endpoint: s.Endpoint, Insecure: true, AccessKey: s.AccessKey,
		SecretKey: s.SecretKey, Region: s.Region}
	_, remove, err := s3.NewTestBucketFromConfig(t, s.Region, cfg, false)
	if err != nil {
		t.Fatalf("s3test: make bucket %s on %s: %v", name, s.Endpoint, err)
	}
	if s.external {
		t.Cleanup(remove)
	}
	return name
}

var (
	installOnce sync.Once
	installed   string
	installErr  error
)

// versitygw returns the path of the versitygw binary, installing it the
// first time when it is nowhere to be found.
func versitygw() (string, error) {
	installOnce.Do(func() { installed, installErr = findOrInstall() })
	return installed, installErr
}

func findOrInstall() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output()
	if err != nil {
		return "", fmt.Errorf("go env: %v", err)
	}
	lines := strings.Split(string(out), "\n")
	bindir := strings.TrimSpace(lines[0])
	if bindir == "" && len(lines) > 1 {
		bindir = filepath.Join(strings.Split(strings.TrimSpace(lines[1]), string(os.PathListSeparator))[0], "bin")
	}
	bin := filepath.Join(bindir, "versitygw")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	// Test binaries of several packages run at once: one builds, the
	// others wait for it and find the binary.
	if err := os.MkdirAll(bindir, 0o755); err != nil {
		return "", fmt.Errorf("install versitygw: %v", err)
	}
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "hearth-s3test-install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("install versitygw: %v", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("install versitygw: lock: %v", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", VersitygwPackage)
	cmd.Env = append(os.Environ(), "GOBIN="+bindir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("versitygw is not on PATH nor in %s, and installing it failed (%v):\n%s\n"+
			"Install it with: go install %s", bindir, err, out, VersitygwPackage)
	}
	if _, err := os.Stat(bin); err != nil {
		return "", errors.New("go install " + VersitygwPackage + " left no binary in " + bindir)
	}
	return bin, nil
}
