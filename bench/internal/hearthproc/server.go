// Package hearthproc runs a hearth server binary for the benchmarks under
// bench/ and reads what /proc says about it: CPU time, resident memory and
// its peak. Each benchmark starts its own server process so that the
// figures are the server's alone, not the driver's.
package hearthproc

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Config says how to start one `hearth server`.
type Config struct {
	Binary  string // path of the hearth binary
	Addr    string // --listen, host:port
	DataDir string // --data
	LogPath string // the server's stdout and stderr are appended here
	// OTLPGRPCAddr is --otlp.grpc.listen: a second port serving only OTLP
	// gRPC. Empty turns that port off (OTLP gRPC then arrives only on
	// Addr, over cleartext HTTP/2), so that a benchmark never collides with
	// another server on the default port.
	OTLPGRPCAddr string
	ReadyTimeout time.Duration // longest wait for GET /ready to answer 200
	// Args are more flags of `hearth server`, after the ones above.
	Args []string
}

// Server is a hearth server process started by Start.
type Server struct {
	Addr    string // host:port of the main listener
	LogPath string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited
	waitErr error         // valid once exited is closed
}

// FreeAddr returns a loopback address with a port nobody listens on.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Start runs `hearth server` as cfg says, with self-profiling off (it
// would add its own profiles to what is measured), and returns once GET
// /ready answers 200, with the time from exec to that answer.
func Start(cfg Config) (*Server, time.Duration, error) {
	logFile, err := os.OpenFile(cfg.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, 0, err
	}
	defer logFile.Close() // the child holds its own descriptor
	s := &Server{Addr: cfg.Addr, LogPath: cfg.LogPath, exited: make(chan struct{})}
	args := append([]string{"server", "--listen", cfg.Addr, "--data", cfg.DataDir,
		"--self-profile.interval", "0", "--otlp.grpc.listen=" + cfg.OTLPGRPCAddr}, cfg.Args...)
	s.cmd = exec.Command(cfg.Binary, args...)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	start := time.Now()
	if err := s.cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("start %s: %w", cfg.Binary, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	client := &http.Client{Timeout: time.Second}
	deadline := start.Add(cfg.ReadyTimeout)
	for {
		resp, err := client.Get("http://" + cfg.Addr + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, time.Since(start), nil
			}
		}
		select {
		case <-s.exited:
			return nil, 0, fmt.Errorf("hearth server exited before it was ready (%v); log: %s", s.waitErr, s.LogTail())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Kill()
			return nil, 0, fmt.Errorf("hearth server not ready after %v; log: %s", cfg.ReadyTimeout, s.LogTail())
		}
	}
}

// PID is the server's process ID.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stop sends SIGTERM and waits for the process to exit, killing it after
// timeout. It returns how long the shutdown took.
func (s *Server) Stop(timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return 0, fmt.Errorf("signal hearth server: %w", err)
	}
	select {
	case <-s.exited:
	case <-time.After(timeout):
		s.Kill()
		return time.Since(start), fmt.Errorf("hearth server still running %v after SIGTERM; killed", timeout)
	}
	d := time.Since(start)
	if s.waitErr != nil {
		return d, fmt.Errorf("hearth server exited with %v; log: %s", s.waitErr, s.LogTail())
	}
	return d, nil
}

// Kill ends the process at once and waits for it; for error paths.
func (s *Server) Kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// LogTail is the end of the server's log, for error messages.
func (s *Server) LogTail() string {
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		return err.Error()
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}
