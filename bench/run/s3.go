package main

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/hearth-profiler/hearth/bench/internal/hearthproc"
)

// With -s3, the benchmark keeps its blocks in a bucket of a versitygw S3
// server it runs on loopback, as issue 14's deployment does: an ingester
// (--target ingester) takes the ingest and uploads its blocks, and each
// query's cold call goes to a querier (--target querier) started on an
// empty data directory, so that nothing of the bucket is cached locally.

// versitygwPackage is the S3 server the benchmark runs, the version the
// tests and CI install.
const versitygwPackage = "github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// s3Server is a versitygw process serving one bucket for the benchmark.
type s3Server struct {
	Endpoint string
	Bucket   string
	Root     string // the posix backend's directory: the bucket's bytes
	cmd      *exec.Cmd
	done     chan struct{}
	config   string // the storage section for hearth's --config
}

const (
	s3AccessKey = "hearth-bench"
	s3SecretKey = "hearth-bench-secret"
)

// findVersitygw looks for versitygw where `go install` puts it.
func findVersitygw() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, p := range filepath.SplitList(string(trimNL(out))) {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("-s3 needs versitygw: go install %s", versitygwPackage)
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// startS3 runs versitygw over work/s3, makes the bucket "hearth-bench",
// and writes the configuration file that points hearth at it.
func startS3(work, logPath string) (*s3Server, error) {
	bin, err := findVersitygw()
	if err != nil {
		return nil, err
	}
	addr, err := hearthproc.FreeAddr()
	if err != nil {
		return nil, err
	}
	s := &s3Server{Endpoint: addr, Bucket: "hearth-bench", Root: filepath.Join(work, "s3"), done: make(chan struct{})}
	if err := os.MkdirAll(s.Root, 0o755); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	s.cmd = exec.Command(bin, "--access", s3AccessKey, "--secret", s3SecretKey, "--port", addr, "--quiet", "posix", s.Root)
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID=", "ROOT_SECRET_ACCESS_KEY=", "ROOT_ACCESS_KEY=", "ROOT_SECRET_KEY=")
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	go func() {
		s.cmd.Wait()
		close(s.done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("versitygw exited at start; see %s", logPath)
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("versitygw not listening on %s after 10s; see %s", addr, logPath)
		}
		time.Sleep(5 * time.Millisecond)
	}
	client, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(s3AccessKey, s3SecretKey, "")})
	if err != nil {
		s.Stop()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := client.MakeBucket(ctx, s.Bucket, minio.MakeBucketOptions{}); err != nil {
		s.Stop()
		return nil, fmt.Errorf("make bucket %s on versitygw: %w", s.Bucket, err)
	}
	s.config = filepath.Join(work, "hearth-s3.yaml")
	yaml := fmt.Sprintf("storage:\n  bucket:\n    type: s3\n    config:\n      bucket: %s\n      endpoint: %s\n      insecure: true\n      access_key: %s\n      secret_key: %s\n",
		s.Bucket, addr, s3AccessKey, s3SecretKey)
	if err := os.WriteFile(s.config, []byte(yaml), 0o600); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Stop kills versitygw.
func (s *s3Server) Stop() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// ingesterArgs are the flags of the server that takes the ingest.
func (s *s3Server) ingesterArgs() []string {
	return []string{"--config", s.config, "--target", "ingester"}
}

// querierArgs are the flags of the server that answers the queries.
func (s *s3Server) querierArgs() []string {
	return []string{"--config", s.config, "--target", "querier"}
}

// bucketBytes is the size of the bucket's objects on versitygw's disk.
func (s *s3Server) bucketBytes() (int64, error) {
	var n int64
	err := filepath.WalkDir(filepath.Join(s.Root, s.Bucket), func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}

// s3Result is what -s3 adds to the figures.
type s3Result struct {
	Endpoint              string  `json:"endpoint"`
	Bucket                string  `json:"bucket"`
	BucketBytes           int64   `json:"bucket_bytes"` // after the ingester's shutdown
	BucketBytesPerProfile float64 `json:"bucket_bytes_per_profile"`
}
