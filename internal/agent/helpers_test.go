package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"

	"github.com/hearth-profiler/hearth/internal/server"
)

// testLogger sends log lines to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlog struct{ t testing.TB }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// startServer runs a real Hearth server in this process, on ln when not
// nil (a port the agent already tries), else on a port of its own.
func startServer(t *testing.T, ln net.Listener) *httptest.Server {
	t.Helper()
	return startServerWith(t, ln, nil)
}

// startServerWith is startServer with a configuration that mut changes.
func startServerWith(t *testing.T, ln net.Listener, mut func(*server.Config)) *httptest.Server {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.SelfProfileInterval = 0
	if mut != nil {
		mut(&cfg)
	}
	s, err := server.New(cfg, testLogger(t).With("component", "server"))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(s.Handler())
	if ln != nil {
		ts.Listener.Close()
		ts.Listener = ln
	}
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return ts
}

// freeAddr returns an address where nothing listens (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// listenOn listens on addr, which a test freed a moment ago.
func listenOn(t *testing.T, addr string) net.Listener {
	t.Helper()
	var err error
	for range 50 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("listen on %s again: %v", addr, err)
	return nil
}

// queryAPI calls a GET endpoint of the server's API and decodes its data.
func queryAPI(t *testing.T, base, path string, params url.Values, tenant string, v any) {
	t.Helper()
	req, err := http.NewRequest("GET", base+path+"?"+params.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if tenant != "" {
		req.Header.Set("X-Scope-OrgID", tenant)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Status != "success" {
		t.Fatalf("GET %s?%s: %d %s", path, params.Encode(), resp.StatusCode, body)
	}
	if err := json.Unmarshal(r.Data, v); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
}

// seriesOf returns the label sets of the series a query selects.
func seriesOf(t *testing.T, base, query, tenant string) []map[string]string {
	t.Helper()
	var s []map[string]string
	queryAPI(t, base, "/api/v1/series", url.Values{"query": {query}, "from": {"-1h"}, "until": {"now"}}, tenant, &s)
	return s
}

type flameNode struct {
	Name     string       `json:"name"`
	Total    int64        `json:"total"`
	Children []*flameNode `json:"children"`
}

type flameGraph struct {
	Total int64      `json:"total"`
	Root  *flameNode `json:"root"`
}

func flameOf(t *testing.T, base, query string) flameGraph {
	t.Helper()
	var fg flameGraph
	queryAPI(t, base, "/api/v1/query/flamegraph", url.Values{"query": {query}, "from": {"-1h"}, "until": {"now"}}, "", &fg)
	return fg
}

// hasPath says whether the tree holds the path of names from its root's
// children down, adjacent.
func hasPath(n *flameNode, path ...string) bool {
	if n == nil {
		return false
	}
	if len(path) == 0 {
		return true
	}
	for _, c := range n.Children {
		if c.Name == path[0] && hasPath(c, path[1:]...) {
			return true
		}
	}
	return false
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// captureServer is a push.v1.PusherService that keeps every request, and
// answers Unavailable to the first failFirst of them.
type captureServer struct {
	pushv1connect.UnimplementedPusherServiceHandler
	mu        sync.Mutex
	requests  []*connect.Request[pushv1.PushRequest]
	failFirst int
	calls     int
}

func (c *captureServer) Push(_ context.Context, req *connect.Request[pushv1.PushRequest]) (*connect.Response[pushv1.PushResponse], error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.calls <= c.failFirst {
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("not yet"))
	}
	c.requests = append(c.requests, req)
	return connect.NewResponse(&pushv1.PushResponse{}), nil
}

// series returns every pushed series, in order.
func (c *captureServer) series() []*pushv1.RawProfileSeries {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*pushv1.RawProfileSeries
	for _, r := range c.requests {
		out = append(out, r.Msg.Series...)
	}
	return out
}

func startCapture(t *testing.T, c *captureServer) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(pushv1connect.NewPusherServiceHandler(c))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

// labelMap returns the labels of a pushed series.
func labelMap(s *pushv1.RawProfileSeries) map[string]string {
	m := map[string]string{}
	for _, l := range s.Labels {
		m[l.Name] = l.Value
	}
	return m
}

// testPusher returns a pusher with short timeouts and backoffs.
func testPusher(t *testing.T, serverURL string, maxBufferBytes int64) *pusher {
	return newPusher(pusherOptions{
		server:         serverURL,
		maxBufferBytes: maxBufferBytes,
		timeout:        5 * time.Second,
		retryMin:       10 * time.Millisecond,
		retryMax:       100 * time.Millisecond,
	}, testLogger(t).With("component", "push"))
}

// runPusher runs p until the test ends.
func runPusher(t *testing.T, p *pusher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// encodeProfile builds and gzips the profile of stacks, with frames from
// testUserFrames and testKernelFrames.
func encodeProfile(t testing.TB, stacks ...*stack) []byte {
	t.Helper()
	var fs frameStats
	p := buildProfile(profileInput{
		stacks: stacks, user: testUserFrames, kernel: testKernelFrames,
		start: time.Now().Add(-time.Second), duration: time.Second, periodNanos: int64(time.Second) / 19,
	}, &fs)
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func pidsOf(series []map[string]string) []string {
	var pids []string
	for _, s := range series {
		pids = append(pids, s["pid"])
	}
	return pids
}
