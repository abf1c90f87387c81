package server_test

import (
	"bytes"
	"context"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"

	"github.com/hearth-profiler/hearth/internal/events"
	"github.com/hearth-profiler/hearth/internal/server"
	"github.com/hearth-profiler/hearth/internal/storage"
)

// serveServer serves a server on a loopback port, its log to the test's,
// and returns it with its address.
func serveServer(t *testing.T, cfg server.Config) (*server.Server, string) {
	t.Helper()
	return serveLog(t, cfg, tlog{t})
}

// eventNames returns the names of the events db holds for tenant, sorted.
func eventNames(t *testing.T, db *storage.DB, tenant string) []string {
	t.Helper()
	var names []string
	err := db.SelectEvents(context.Background(), tenant, storage.EventQuery{Columns: events.Columns{Intrinsics: events.ColName}, Start: 0, End: math.MaxInt64},
		func(b *events.Batch) error {
			names = append(names, b.Name...)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

func postEvents(t *testing.T, url, ct, tenant string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("X-Scope-OrgID", tenant)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("POST %s: %d %s", url, resp.StatusCode, b)
	}
	return resp.StatusCode
}

// TestEventsWaysIn sends events by every way in to one running server, on
// its one port, and reads them back from its storage, by tenant.
func TestEventsWaysIn(t *testing.T) {
	s, addr := serveServer(t, server.DefaultConfig())
	base := "http://" + addr

	postEvents(t, base+"/api/v1/events", "application/x-ndjson", "lines",
		[]byte(`{"name":"nightly backup","service.name":"cron","duration_ms":5120}`+"\n"+`{"name":"rotate logs"}`+"\n"))

	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "shop")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetName("POST /cart")
	sp.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	sp.SetStartTimestamp(1793534400e9)
	sp.SetEndTimestamp(1793534400e9 + 412e6)
	traces, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	postEvents(t, base+"/v1/traces", "application/x-protobuf", "otlp-http", traces)

	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetTimestamp(1793534401e9)
	lr.Body().SetStr("cache miss")
	logs, err := plogotlp.NewExportRequestFromLogs(ld).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	postEvents(t, base+"/v1/logs", "application/json", "otlp-http", logs)

	// OTLP/gRPC on the HTTP port, gzipped as the Collector sends.
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	gctx := metadataTenant(context.Background(), "otlp-grpc")
	if _, err := ptraceotlp.NewGRPCClient(conn).Export(gctx, ptraceotlp.NewExportRequestFromTraces(td), grpc.UseCompressor(gzip.Name)); err != nil {
		t.Fatalf("OTLP/gRPC traces: %v", err)
	}
	if _, err := plogotlp.NewGRPCClient(conn).Export(gctx, plogotlp.NewExportRequestFromLogs(ld)); err != nil {
		t.Fatalf("OTLP/gRPC logs: %v", err)
	}

	for tenant, want := range map[string][]string{
		"lines":     {"nightly backup", "rotate logs"},
		"otlp-http": {"POST /cart", "log"},
		"otlp-grpc": {"POST /cart", "log"},
		"anonymous": nil,
	} {
		if got := eventNames(t, s.DB(), tenant); !slices.Equal(got, want) {
			t.Errorf("tenant %s holds events %q, want %q", tenant, got, want)
		}
	}

	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(metrics), "hearth_ingest_events_stored_total 6\n") {
		t.Errorf("metrics do not count 6 events stored:\n%s", grepLines(string(metrics), "hearth_ingest_events"))
	}
}

// TestEventsLimitsFromConfig checks that the server holds events to the
// limits of its configuration.
func TestEventsLimitsFromConfig(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.Events.MaxPerRequest = 1
	_, addr := serveServer(t, cfg)
	resp, err := http.Post("http://"+addr+"/api/v1/events", "application/x-ndjson", strings.NewReader("{}\n{}\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "--events.max-per-request") {
		t.Errorf("two events over a limit of one: %d %s", resp.StatusCode, b)
	}
	cfg.Events.MaxAttributes = -1
	if _, err := server.New(cfg, nil); err == nil || !strings.Contains(err.Error(), "--events.max-attributes") {
		t.Errorf("a negative limit: %v", err)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
