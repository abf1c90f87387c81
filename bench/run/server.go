package main

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

// server is a hearth server process started by the driver.
type server struct {
	addr    string // host:port
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited
	waitErr error         // valid once exited is closed
}

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startServer runs `hearth server` on addr with its data in dataDir,
// self-profiling off, appending its log to logPath, and returns once GET
// /ready answers 200, with the time from exec to that answer.
func startServer(bin, addr, dataDir, logPath string, timeout time.Duration) (*server, time.Duration, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, 0, err
	}
	defer logFile.Close() // the child holds its own descriptor
	s := &server{addr: addr, logPath: logPath, exited: make(chan struct{})}
	s.cmd = exec.Command(bin, "server", "--listen", addr, "--data", dataDir, "--self-profile.interval", "0", "--otlp.grpc.listen=")
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	start := time.Now()
	if err := s.cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	client := &http.Client{Timeout: time.Second}
	deadline := start.Add(timeout)
	for {
		resp, err := client.Get("http://" + addr + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, time.Since(start), nil
			}
		}
		select {
		case <-s.exited:
			return nil, 0, fmt.Errorf("hearth server exited before it was ready (%v); log: %s", s.waitErr, s.logTail())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.kill()
			return nil, 0, fmt.Errorf("hearth server not ready after %v; log: %s", timeout, s.logTail())
		}
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// stop sends SIGTERM and waits for the process to exit, killing it after
// timeout. It returns how long the shutdown took.
func (s *server) stop(timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return 0, fmt.Errorf("signal hearth server: %w", err)
	}
	select {
	case <-s.exited:
	case <-time.After(timeout):
		s.kill()
		return time.Since(start), fmt.Errorf("hearth server still running %v after SIGTERM; killed", timeout)
	}
	d := time.Since(start)
	if s.waitErr != nil {
		return d, fmt.Errorf("hearth server exited with %v; log: %s", s.waitErr, s.logTail())
	}
	return d, nil
}

// kill ends the process at once; for error paths.
func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// logTail is the end of the server's log, for error messages.
func (s *server) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return err.Error()
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}
