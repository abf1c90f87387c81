package main_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/s3test"
	"github.com/hearth-profiler/hearth/internal/storage/bucket"
	"github.com/hearth-profiler/hearth/internal/testfiles"
)

// writeFile writes body to a new file in dir and returns its path.
func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// s3Storage is the storage section of a configuration file for the
// bucket name on srv, with the secret key in secretFile.
func s3Storage(srv *s3test.Server, name, secretFile string) string {
	return fmt.Sprintf(`storage:
  bucket:
    type: s3
    config:
      bucket: %s
      endpoint: %s
      insecure: true
      access_key: %s
      secret_key_file: %s
`, name, srv.Endpoint, srv.AccessKey, secretFile)
}

// s3Bucket starts an S3 server with a new bucket on it, and writes in dir
// the configuration file of the Hearth instances that share the bucket,
// with the secret key in a file beside it.
func s3Bucket(t *testing.T, dir string) (srv *s3test.Server, name, cfgPath string) {
	t.Helper()
	srv = s3test.Start(t)
	name = srv.NewBucket(t)
	secret := writeFile(t, dir, "secret", srv.SecretKey+"\n")
	return srv, name, writeFile(t, dir, "hearth.yaml", s3Storage(srv, name, secret))
}

// flushAll asks each server to cut its heads and upload them, and fails
// unless each answers 200: once they have, every block is in the bucket.
func flushAll(t *testing.T, procs ...*proc) {
	t.Helper()
	for _, p := range procs {
		resp, err := http.Post(p.url+"/-/flush", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST /-/flush to %s: %d", p.url, resp.StatusCode)
		}
	}
}

// eventCalc runs `hearth events` against the server at base: calc over
// the events of service in [from, until), as JSON, trimmed.
func eventCalc(t *testing.T, base, service, calc string, from, until int64) string {
	t.Helper()
	out, errs, code := runHearth(t, nil, "events", fmt.Sprintf(`{ resource.service.name = %q }`, service), "--calc", calc,
		"--from", fmt.Sprint(from), "--until", fmt.Sprint(until), "--server", base, "--output", "json")
	if code != 0 {
		t.Fatalf("hearth events: exit %d\n%s", code, errs)
	}
	return strings.TrimSpace(out)
}

// pushCorpus sends 20 of the corpus's CPU profiles, one a second from
// base, as services svc0 to svc2, to the servers in turn.
func pushCorpus(t *testing.T, client *http.Client, base int64, urls ...string) {
	t.Helper()
	files := testfiles.CorpusCPU(t)
	for i := range 20 {
		body, err := os.ReadFile(files[i%len(files)])
		if err != nil {
			t.Fatal(err)
		}
		if err := push(client, urls[i%len(urls)], fmt.Sprintf("svc%d", i%3), base+int64(i), body); err != nil {
			t.Fatal(err)
		}
	}
}

// postEvents sends JSON lines events to the server.
func postEvents(t *testing.T, base string, lines []string) {
	t.Helper()
	resp, err := http.Post(base+"/api/v1/events", "application/x-ndjson", strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 {
		t.Fatalf("POST /api/v1/events: %d %s", resp.StatusCode, b)
	}
}

// TestS3Server runs `hearth server` with its blocks in a bucket on a real
// S3 server: POST /-/flush has the blocks in the bucket when it answers;
// a restart on an empty data directory answers as before from the
// bucket; the start-up log names the bucket without its keys; a reload
// that changes the bucket is refused.
func TestS3Server(t *testing.T) {
	dir := t.TempDir()
	s3srv, name, cfgPath := s3Bucket(t, dir)
	addr := freeAddr(t)
	srv := startServer(t, filepath.Join(dir, "data1"), addr, "--config", cfgPath)

	logs := srv.logs.String()
	for _, want := range []string{"type=s3", "endpoint=" + s3srv.Endpoint, "bucket=" + name} {
		if !strings.Contains(logs, want) {
			t.Errorf("start-up log does not say %q:\n%s", want, logs)
		}
	}

	client := &http.Client{Timeout: 10 * time.Second}
	base := time.Now().Add(-time.Hour).Unix()
	pushCorpus(t, client, base, srv.url)
	var lines []string
	for i := range 30 {
		lines = append(lines, fmt.Sprintf(`{"time": %d, "name": "deploy", "service": "s3-e2e", "n": %d}`, base+int64(i), i))
	}
	postEvents(t, srv.url, lines)
	events := func(url string) string {
		t.Helper()
		return eventCalc(t, url, "s3-e2e", "count,sum(span.n)", base-10, base+100)
	}
	before := answers(t, srv.url, base, base+20)
	beforeEvents := events(srv.url)
	if !strings.Contains(beforeEvents, `"count":30`) {
		t.Errorf("events before the flush: %s", beforeEvents)
	}

	// The flush answers once the blocks are in the bucket.
	flushAll(t, srv)
	b, err := bucket.Open(&bucket.Config{Type: bucket.TypeS3, Config: s3srv.Config(name)}, bucket.Options{SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var metas int
	ctx := context.Background()
	var blockDirs []string
	if err := b.Iter(ctx, "anonymous/blocks/", func(n string) error {
		blockDirs = append(blockDirs, n)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, d := range blockDirs {
		if ok, err := b.Exists(ctx, d+"meta.json"); ok && err == nil {
			metas++
		}
	}
	if metas == 0 {
		t.Fatalf("no block in the bucket right after POST /-/flush answered (%q)", blockDirs)
	}

	// Reloading the same file is fine; another bucket is refused.
	reload := func() (int, string) {
		t.Helper()
		resp, err := client.Post(srv.url+"/-/reload", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := reload(); code != 200 {
		t.Errorf("reload of the same file: %d %s", code, body)
	}
	secret := filepath.Join(dir, "secret") // s3Bucket's
	writeFile(t, dir, "hearth.yaml", s3Storage(s3srv, name+"-other", secret))
	if code, body := reload(); code != 400 || !strings.Contains(body, "restart Hearth to change it") {
		t.Errorf("reload with another bucket: %d %s; want 400 saying a restart is needed", code, body)
	}
	writeFile(t, dir, "hearth.yaml", s3Storage(s3srv, name, secret))
	srv.stop(t, syscall.SIGTERM)
	if logs := srv.logs.String(); strings.Contains(logs, s3srv.SecretKey) {
		t.Errorf("the log holds the secret key:\n%s", logs)
	}

	// A new, empty data directory: everything comes from the bucket.
	// The keys come from the environment this time.
	writeFile(t, dir, "hearth.yaml", fmt.Sprintf("storage:\n  bucket:\n    type: s3\n    config: {bucket: %s, endpoint: %s, insecure: true}\n", name, s3srv.Endpoint))
	t.Setenv("AWS_ACCESS_KEY_ID", s3srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3srv.SecretKey)
	srv = startServer(t, filepath.Join(dir, "data2"), addr, "--config", cfgPath)
	after := answers(t, srv.url, base, base+20)
	for k := range before {
		if before[k] != after[k] {
			t.Errorf("%s answer changed across a restart on an empty data directory", k)
		}
	}
	if got := events(srv.url); got != beforeEvents {
		t.Errorf("events across a restart on an empty data directory:\n%s\nwant\n%s", got, beforeEvents)
	}
	srv.stop(t, syscall.SIGTERM)
}

// TestS3StartErrors: a bucket that is misconfigured, does not exist,
// refuses the keys or cannot be reached stops `hearth server` at start-up
// with one line naming the cause, and a non-zero exit, without a hang and
// without the secret key in what it prints.
func TestS3StartErrors(t *testing.T) {
	s3srv := s3test.Start(t)
	name := s3srv.NewBucket(t)
	dir := t.TempDir()
	// A server that accepts connections and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	const wrongSecret = "not-the-secret-key"
	s3 := func(kv ...string) string {
		c := map[string]string{"bucket": name, "endpoint": s3srv.Endpoint, "insecure": "true",
			"access_key": s3srv.AccessKey, "secret_key": s3srv.SecretKey}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(c, kv[i])
			} else {
				c[kv[i]] = kv[i+1]
			}
		}
		out := "storage:\n  bucket:\n    type: s3\n    config:\n"
		for k, v := range c {
			out += fmt.Sprintf("      %s: %s\n", k, v)
		}
		return out
	}
	for _, c := range []struct {
		name, config, want string
		within             time.Duration
	}{
		{"unknown type", "storage:\n  bucket:\n    type: gcs\n    config: {bucket: x}\n", `unknown type "gcs"`, 5 * time.Second},
		{"unknown key", s3("bucket_name", "x"), `field bucket_name not found`, 5 * time.Second},
		{"no bucket name", s3("bucket", ""), "bucket is required", 5 * time.Second},
		{"no endpoint", s3("endpoint", ""), "endpoint is required", 5 * time.Second},
		{"missing key file", s3("secret_key", "", "secret_key_file", filepath.Join(dir, "nope")), "secret_key_file", 5 * time.Second},
		{"wrong secret key", s3("secret_key", wrongSecret), "signature", 20 * time.Second},
		{"unknown access key", s3("access_key", "nobody"), "access key", 20 * time.Second},
		{"bucket that does not exist", s3("bucket", "no-such-bucket"), "bucket does not exist", 20 * time.Second},
		{"endpoint refusing connections", s3("endpoint", freeAddr(t)), "connection refused", 5 * time.Second},
		{"endpoint that does not answer", s3("endpoint", silent.Addr().String()), "no answer within 2s", 10 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfgPath := writeFile(t, t.TempDir(), "hearth.yaml", c.config)
			start := time.Now()
			_, stderr, code := runHearth(t, nil, "server", "--listen", freeAddr(t), "--data", t.TempDir(), "--otlp.grpc.listen=",
				"--self-profile.interval", "0", "--log.level", "warn", "--storage.bucket-check-timeout", "2s", "--config", cfgPath)
			took := time.Since(start)
			oneLineFailure(t, c.name, stderr, code)
			if !strings.Contains(strings.ToLower(stderr), strings.ToLower(c.want)) {
				t.Errorf("stderr %q does not say %q", stderr, c.want)
			}
			if took > c.within {
				t.Errorf("took %s to fail, want under %s", took.Round(time.Millisecond), c.within)
			}
			if strings.Contains(stderr, s3srv.SecretKey) || strings.Contains(stderr, wrongSecret) {
				t.Errorf("stderr holds a secret key: %q", stderr)
			}
		})
	}
}

// TestS3OutageSeen stops the S3 server under a running `hearth server`:
// a flush fails and is retried, /ready still answers 200 and says since
// when blocks are not written, /metrics shows it and the bucket's failed
// operations, and once the store is back a flush writes everything and
// the failure is gone.
func TestS3OutageSeen(t *testing.T) {
	s3srv := s3test.Start(t)
	name := s3srv.NewBucket(t)
	dir := t.TempDir()
	secret := writeFile(t, dir, "secret", s3srv.SecretKey+"\n")
	// One retry: the S3 client's ten would make each failure take seconds.
	cfgPath := writeFile(t, dir, "hearth.yaml", s3Storage(s3srv, name, secret)+"      max_retries: 1\n")
	srv := startServer(t, filepath.Join(dir, "data"), freeAddr(t), "--config", cfgPath)
	client := &http.Client{Timeout: 30 * time.Second}
	flush := func() int {
		t.Helper()
		resp, err := client.Post(srv.url+"/-/flush", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	body, err := os.ReadFile(testfiles.CorpusCPU(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour).Unix()
	if err := push(client, srv.url, "svc", base, body); err != nil {
		t.Fatal(err)
	}
	if code := flush(); code != 200 {
		t.Fatalf("flush with the store up: %d", code)
	}
	metric := func(text, prefix string) (float64, bool) {
		for line := range strings.Lines(text) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix+" "); ok {
				var f float64
				fmt.Sscan(v, &f)
				return f, true
			}
		}
		return 0, false
	}
	uploads := `hearth_objstore_bucket_operations_total{bucket="` + name + `",operation="upload"}`
	if n, ok := metric(getBody(t, srv.url+"/metrics"), uploads); !ok || n == 0 {
		t.Errorf("%s: %v %v; want the flush's uploads", uploads, n, ok)
	}

	s3srv.Stop()
	if err := push(client, srv.url, "svc", base+10, body); err != nil {
		t.Fatalf("a write while the store is down: %v", err)
	}
	if code := flush(); code == 200 {
		t.Fatalf("flush with the store down answered 200")
	}
	resp, err := client.Get(srv.url + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	ready, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(ready), "blocks not written since") {
		t.Errorf("/ready with the store down: %d %q; want 200 saying blocks are not written", resp.StatusCode, ready)
	}
	m := getBody(t, srv.url+"/metrics")
	if _, ok := metric(m, "hearth_storage_cut_failing_since_timestamp_seconds"); !ok {
		t.Errorf("/metrics with the store down has no hearth_storage_cut_failing_since_timestamp_seconds")
	}
	failures := `hearth_objstore_bucket_operation_failures_total{bucket="` + name + `",operation="upload"}`
	if n, ok := metric(m, failures); !ok || n == 0 {
		t.Errorf("%s: %v %v; want the failed uploads", failures, n, ok)
	}

	s3srv.Restart()
	if code := flush(); code != 200 {
		t.Fatalf("flush with the store back: %d", code)
	}
	if got := getBody(t, srv.url+"/ready"); got != "ready\n" {
		t.Errorf("/ready with the store back: %q", got)
	}
	if _, ok := metric(getBody(t, srv.url+"/metrics"), "hearth_storage_cut_failing_since_timestamp_seconds"); ok {
		t.Errorf("/metrics still says cuts fail after one succeeded")
	}
	from, until := base-10, base+100
	if n := flameTotal(t, srv.url, from, until); n == 0 {
		t.Errorf("nothing to query after the outage")
	}
	srv.stop(t, syscall.SIGTERM)
}
