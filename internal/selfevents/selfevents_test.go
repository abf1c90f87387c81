package selfevents

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/hearth-profiler/hearth/internal/events"
)

// sink collects what a Recorder stores.
type sink struct {
	mu  sync.Mutex
	evs []events.Event
	err error
}

func (s *sink) store(_ context.Context, evs []events.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.evs = append(s.evs, evs...)
	return nil
}

// drain runs one flush of r into a new sink and returns the events.
func drain(t *testing.T, r *Recorder) []events.Event {
	t.Helper()
	var s sink
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Run flushes once more when ctx is done, then returns
	r.Run(ctx, time.Hour, s.store, slog.New(slog.DiscardHandler))
	return s.evs
}

func attr(e events.Event, key string) events.Value {
	for _, a := range e.Attrs {
		if a.Key == key {
			return a.Value
		}
	}
	return events.Value{}
}

func TestHTTP(t *testing.T) {
	r := New("v1.2.3")
	mux := http.NewServeMux()
	mux.HandleFunc("POST /ingest", func(w http.ResponseWriter, req *http.Request) {
		io.ReadAll(req.Body)
		Add(req.Context(), events.Attr{Key: "hearth.service", Value: events.String("shop")})
		slog.New(r.LogHandler(slog.DiscardHandler)).InfoContext(req.Context(), "stored", "profiles", 3)
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("disk full"))
	})
	ts := httptest.NewServer(r.HTTP(mux))
	defer ts.Close()
	req, _ := http.NewRequest("POST", ts.URL+"/ingest?name=x", strings.NewReader("12345"))
	req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	req.Header.Set("X-Scope-OrgID", "team-a")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	http.Get(ts.URL + "/nowhere")
	evs := drain(t, r)
	if len(evs) != 3 {
		t.Fatalf("%d events, want the log line and two requests: %+v", len(evs), evs)
	}
	logLine, ingest, miss := evs[0], evs[1], evs[2]
	if ingest.Name != "POST /ingest" || ingest.Kind != events.KindServer || ingest.Status != events.StatusError ||
		ingest.Service != Service || ingest.Duration <= 0 {
		t.Errorf("request event: %+v", ingest)
	}
	if ingest.TraceID.String() != "4bf92f3577b34da6a3ce929d0e0e4736" || ingest.ParentID.String() != "00f067aa0ba902b7" {
		t.Errorf("request event is not in the client's trace: %s %s", ingest.TraceID, ingest.ParentID)
	}
	for k, want := range map[string]events.Value{
		"span.http.route": events.String("/ingest"), "span.http.response.status_code": events.Int(503),
		"span.http.request.body.size": events.Int(5), "span.http.response.body.size": events.Int(9),
		"span.hearth.tenant": events.String("team-a"), "span.hearth.service": events.String("shop"),
		"resource.service.version": events.String("v1.2.3"),
	} {
		if got := attr(ingest, k); got != want {
			t.Errorf("request %s = %+v, want %+v", k, got, want)
		}
	}
	if logLine.TraceID != ingest.TraceID || logLine.ParentID != ingest.SpanID || logLine.Name != "stored" {
		t.Errorf("the log line made while serving is not in the request's trace: %+v", logLine)
	}
	if miss.Name != "GET (no route)" || attr(miss, "span.http.response.status_code") != events.Int(404) || miss.TraceID.IsZero() {
		t.Errorf("unrouted request: %+v", miss)
	}
}

func TestLogHandler(t *testing.T) {
	r := New("dev")
	var out bytes.Buffer
	logger := slog.New(r.LogHandler(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo})))
	st := logger.With("component", "storage").WithGroup("block")
	st.Info("block written", "tenant", "a", "bytes", 4096, "dur", 40*time.Millisecond)
	logger.Debug("scraped", "job", "api", "dur", 3*time.Millisecond)
	logger.Debug("noise")
	logger.Error("compact", "err", errors.New("disk full"))
	evs := drain(t, r)
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3: %+v", len(evs), evs)
	}
	bw := evs[0]
	if bw.Name != "block written" || bw.Duration != int64(40*time.Millisecond) || bw.Kind != events.KindInternal ||
		attr(bw, "span.component") != events.String("storage") || attr(bw, "span.block.tenant") != events.String("a") ||
		attr(bw, "span.block.bytes") != events.Int(4096) || attr(bw, "span.block.dur").Type != events.TypeNone {
		t.Errorf("block written: %+v", bw)
	}
	if evs[1].Name != "scraped" || evs[1].Duration != int64(3*time.Millisecond) {
		t.Errorf("a unit of work logged at debug is an event: %+v", evs[1])
	}
	if e := evs[2]; e.Status != events.StatusError || e.StatusMessage != "disk full" || e.Duration != 0 ||
		attr(e, "span.severity") != events.String("ERROR") {
		t.Errorf("error log line: %+v", e)
	}
	// The log itself shows what its level lets through, not the debug
	// records the recorder reads.
	if s := out.String(); !strings.Contains(s, "block written") || strings.Contains(s, "scraped") || strings.Contains(s, "noise") {
		t.Errorf("log output:\n%s", s)
	}
}

func TestUnaryInterceptor(t *testing.T) {
	r := New("dev")
	ic := r.UnaryInterceptor()
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("x-scope-orgid", "team-b"))
	info := &grpc.UnaryServerInfo{FullMethod: "/opentelemetry.proto.collector.trace.v1.TraceService/Export"}
	_, err := ic(ctx, nil, info, func(ctx context.Context, req any) (any, error) {
		Add(ctx, events.Attr{Key: "hearth.events", Value: events.Int(7)})
		return nil, status.Error(codes.Unavailable, "disk full")
	})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("interceptor changed the error: %v", err)
	}
	evs := drain(t, r)
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	e := evs[0]
	if e.Name != info.FullMethod || e.Status != events.StatusError || e.StatusMessage != "disk full" ||
		attr(e, "span.rpc.grpc.status_code") != events.Int(int64(codes.Unavailable)) ||
		attr(e, "span.hearth.tenant") != events.String("team-b") || attr(e, "span.hearth.events") != events.Int(7) {
		t.Errorf("gRPC event: %+v", e)
	}
}

// TestBounded: a sink that fails drops its batch, and a full buffer
// drops new events; both are counted.
func TestBounded(t *testing.T) {
	r := New("dev")
	for range maxBuffered + 10 {
		r.Record(events.Event{Name: "x"})
	}
	if r.Dropped() != 10 {
		t.Errorf("dropped %d past the buffer, want 10", r.Dropped())
	}
	s := &sink{err: errors.New("disk full")}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r.Run(ctx, time.Hour, s.store, slog.New(slog.DiscardHandler))
	if r.Dropped() != maxBuffered+10 || r.Stored() != 0 {
		t.Errorf("after a failed flush: dropped %d, stored %d", r.Dropped(), r.Stored())
	}
	if evs := drain(t, r); len(evs) != 0 {
		t.Errorf("a failed batch came back: %d events", len(evs))
	}
}

func TestParseTraceparent(t *testing.T) {
	for h, ok := range map[string]bool{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01": true,
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01": false,
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01": false,
		"00-4bf92f3577b34da6a3ce929d0e0e473x-00f067aa0ba902b7-01": false,
		"garbage": false, "": false,
	} {
		if _, _, got := parseTraceparent(h); got != ok {
			t.Errorf("parseTraceparent(%q) = %v, want %v", h, got, ok)
		}
	}
}
