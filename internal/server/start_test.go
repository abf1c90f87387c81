package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/server"
)

// TestStartNotReadyWhileOpening checks that a starting server accepts
// connections at once and answers 503 until its storage is open, so that
// an orchestrator can tell "replaying" from "dead".
func TestStartNotReadyWhileOpening(t *testing.T) {
	release := make(chan struct{})
	defer server.HoldOpen(release)()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := server.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.ListenAddr = addr
	cfg.OTLPGRPCAddr = ""
	cfg.SelfProfileInterval = 0
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var opened atomic.Pointer[server.Server]
	go func() { done <- server.Start(ctx, cfg, nil, opened.Store) }()
	base := "http://" + addr
	get := func(path string) (int, string, http.Header) {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0, err.Error(), nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	deadline := time.Now().Add(10 * time.Second)
	code, body, _ := get("/ready")
	for code == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		code, body, _ = get("/ready")
	}
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "replaying") {
		t.Fatalf("/ready while opening = %d %q; want 503 saying it replays", code, body)
	}
	code, _, h := get("/api/v1/labels")
	if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Fatalf("query while opening = %d, Retry-After %q; want 503 with Retry-After", code, h.Get("Retry-After"))
	}
	close(release)
	for {
		if code, _, _ = get("/ready"); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/ready = %d after the storage opened; want 200", code)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if opened.Load() == nil {
		t.Error("Start served without calling opened")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Start did not return after its context ended")
	}
}
