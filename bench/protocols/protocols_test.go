package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	"google.golang.org/protobuf/proto"

	"github.com/hearth-profiler/hearth/bench/internal/hearthproc"
	"github.com/hearth-profiler/hearth/internal/otlp/otlptest"
	"github.com/hearth-profiler/hearth/internal/server"
)

// testWorkload is a small workload: more profiles than services, so that
// every service gets several.
func testWorkload(t *testing.T, n int) workload {
	t.Helper()
	corpus, err := loadCorpus("../corpus")
	if err != nil {
		t.Fatal(err)
	}
	return workload{corpus: corpus, n: n, services: 7, window: 10, end: time.Now().Unix() / 10 * 10}
}

// startServer runs Hearth in this process on free loopback ports, OTLP
// gRPC on a port of its own when grpcPort is set, and waits until it is
// ready.
func startServer(t *testing.T, grpcPort bool) target {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.SelfProfileInterval = 0
	cfg.OTLPGRPCAddr = ""
	var err error
	if cfg.ListenAddr, err = hearthproc.FreeAddr(); err != nil {
		t.Fatal(err)
	}
	tg := target{base: "http://" + cfg.ListenAddr}
	if grpcPort {
		if cfg.OTLPGRPCAddr, err = hearthproc.FreeAddr(); err != nil {
			t.Fatal(err)
		}
		tg.grpcBase = "http://" + cfg.OTLPGRPCAddr
	}
	s, err := server.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(tg.base + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return tg
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestProtocols sends a small workload by each protocol to a fresh
// server, as the benchmark does, and checks that every request succeeds
// and that the server stored every profile.
func TestProtocols(t *testing.T) {
	w := testWorkload(t, 30)
	b, err := encode(w, need{push: true, otlp: true, otlpGzip: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			tg := startServer(t, p.grpcPort)
			reqs, err := requests(p, tg, w, b)
			if err != nil {
				t.Fatal(err)
			}
			r, err := send(p, reqs, 3, os.Getpid())
			if err != nil {
				t.Fatal(err)
			}
			if r.Errors > 0 {
				t.Fatalf("%d requests failed; first: %s", r.Errors, r.FirstError)
			}
			if r.Profiles != w.n || r.PprofBytes == 0 || r.BodyBytes == 0 || r.P99 == 0 {
				t.Errorf("figures: %+v", r)
			}
			if s := verify(tg.base, w); !s.ok() {
				t.Errorf("stored: %s", s)
			}
		})
	}
}

// TestVerifyNoticesMissingProfiles checks that the stored check fails
// when a profile was not sent.
func TestVerifyNoticesMissingProfiles(t *testing.T) {
	w := testWorkload(t, 12)
	b, err := encode(w, need{})
	if err != nil {
		t.Fatal(err)
	}
	tg := startServer(t, false)
	reqs, err := requests(protocols[0], tg, w, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := send(protocols[0], reqs[1:], 2, os.Getpid()); err != nil {
		t.Fatal(err)
	}
	s := verify(tg.base, w)
	missing := w.file(0).cpuNanos
	if s.ok() || s.Points != w.n-1 || s.CPUNanos != s.WantCPUNanos-missing || s.ServiceTotal != s.WantSvcTotal-missing {
		t.Errorf("stored without profile 0: %s; want it missing from the count and both totals", s)
	}
}

// TestPushBodyIsTheClients checks that the push body sent is what the
// generated Connect client sends for the same request, to the same path
// with the same content type.
func TestPushBodyIsTheClients(t *testing.T) {
	w := testWorkload(t, 1)
	b, err := encode(w, need{push: true})
	if err != nil {
		t.Fatal(err)
	}
	var got *http.Request
	var gotBody []byte
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		got, gotBody = r, body
		rw.Header().Set("Content-Type", "application/proto")
	}))
	defer srv.Close()
	c := pushv1connect.NewPusherServiceClient(srv.Client(), srv.URL)
	if _, err := c.Push(context.Background(), connect.NewRequest(pushRequest(w.service(0), b.pprof[0]))); err != nil {
		t.Fatal(err)
	}
	reqs, err := requests(protocols[slices.IndexFunc(protocols, func(p protocol) bool { return p.name == "push" })], target{base: srv.URL}, w, b)
	if err != nil {
		t.Fatal(err)
	}
	ours := reqs[0].Request
	if !slices.Equal(gotBody, b.push[0]) {
		t.Errorf("the client sends %d bytes, the benchmark %d, not the same", len(gotBody), len(b.push[0]))
	}
	if got.URL.Path != ours.URL.Path || got.Header.Get("Content-Type") != ours.Header.Get("Content-Type") {
		t.Errorf("client: %s %s, benchmark: %s %s", got.URL.Path, got.Header.Get("Content-Type"), ours.URL.Path, ours.Header.Get("Content-Type"))
	}
	var back pushv1.PushRequest
	if err := proto.Unmarshal(b.push[0], &back); err != nil || len(back.Series) != 1 {
		t.Errorf("decode the push body: %v, %d series", err, len(back.Series))
	}
}

// TestOTLPMessageIsTheClients checks that the OTLP message sent is what
// pdata's gRPC client puts on the wire for the same profiles.
func TestOTLPMessageIsTheClients(t *testing.T) {
	w := testWorkload(t, 1)
	b, err := encode(w, need{otlp: true})
	if err != nil {
		t.Fatal(err)
	}
	p, err := profile.ParseData(b.pprof[0])
	if err != nil {
		t.Fatal(err)
	}
	pd := otlptest.FromPprof(p, map[string]string{"service.name": w.service(0)})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got, err := otlptest.CaptureGRPC(ctx, pd)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, b.otlp[0]) {
		t.Errorf("pdata's client sends %d bytes, the benchmark %d, not the same", len(got), len(b.otlp[0]))
	}
}
