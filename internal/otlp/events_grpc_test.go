package otlp

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/hearth-profiler/hearth/internal/events"
	"github.com/hearth-profiler/hearth/internal/events/eventstest"
	"github.com/hearth-profiler/hearth/internal/storage"
)

// eventsGRPC serves RegisterEventsGRPC on a loopback port, with a
// recorder behind it.
type eventsGRPC struct {
	rec    *eventstest.Recorder
	addr   string
	traces ptraceotlp.GRPCClient
	logs   plogotlp.GRPCClient
}

func newEventsGRPC(t *testing.T, opts Options) *eventsGRPC {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &eventstest.Recorder{}
	srv := grpc.NewServer()
	RegisterEventsGRPC(srv, rec, nil, opts)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &eventsGRPC{rec: rec, addr: lis.Addr().String(), traces: ptraceotlp.NewGRPCClient(conn), logs: plogotlp.NewGRPCClient(conn)}
}

func TestTracesGRPC(t *testing.T) {
	s := newEventsGRPC(t, Options{})
	resp, err := s.traces.Export(grpcContext(t, "x-scope-orgid", "team-a"), ptraceotlp.NewExportRequestFromTraces(badSpans()))
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	ps := resp.PartialSuccess()
	if ps.RejectedSpans() != 5 || !strings.Contains(ps.ErrorMessage(), "5 of 8 spans refused") {
		t.Errorf("partial success %d %q", ps.RejectedSpans(), ps.ErrorMessage())
	}
	if d := cmp.Diff(exampleTraceEvents(), s.rec.Events("team-a")); d != "" {
		t.Errorf("stored (-want +got):\n%s", d)
	}
}

func TestLogsGRPC(t *testing.T) {
	s := newEventsGRPC(t, Options{})
	resp, err := s.logs.Export(grpcContext(t), plogotlp.NewExportRequestFromLogs(exampleLogs()))
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	if n := resp.PartialSuccess().RejectedLogRecords(); n != 1 {
		t.Errorf("rejected_log_records %d, want 1", n)
	}
	got := s.rec.Events("anonymous")
	if len(got) != 3 || got[0].Name != "cart.updated" || got[0].Service != "checkout" {
		t.Errorf("stored %+v", got)
	}
}

func TestEventsGRPCRefusals(t *testing.T) {
	t.Run("bad tenant", func(t *testing.T) {
		s := newEventsGRPC(t, Options{})
		_, err := s.traces.Export(grpcContext(t, "x-scope-orgid", "a/b"), ptraceotlp.NewExportRequestFromTraces(exampleTraces()))
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "invalid tenant ID") {
			t.Errorf("err %v, want InvalidArgument naming the tenant", err)
		}
	})
	t.Run("too many", func(t *testing.T) {
		s := newEventsGRPC(t, Options{Events: events.Limits{MaxPerRequest: 1}})
		_, err := s.logs.Export(grpcContext(t), plogotlp.NewExportRequestFromLogs(exampleLogs()))
		st := status.Convert(err)
		// ResourceExhausted without RetryInfo: exporters do not retry.
		if st.Code() != codes.ResourceExhausted || len(st.Details()) != 0 || !strings.Contains(st.Message(), "4 log records, over the limit of 1") {
			t.Errorf("status %v %q %v", st.Code(), st.Message(), st.Details())
		}
		if s.rec.Calls() != 0 {
			t.Errorf("storage called for a refused request")
		}
	})
	t.Run("storage unavailable", func(t *testing.T) {
		s := newEventsGRPC(t, Options{})
		s.rec.Err = fmt.Errorf("%w: log closed", storage.ErrUnavailable)
		_, err := s.traces.Export(grpcContext(t), ptraceotlp.NewExportRequestFromTraces(exampleTraces()))
		st := status.Convert(err)
		if st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "spans not stored, retry later") {
			t.Fatalf("status %v %q", st.Code(), st.Message())
		}
		var retry *errdetails.RetryInfo
		for _, d := range st.Details() {
			if r, ok := d.(*errdetails.RetryInfo); ok {
				retry = r
			}
		}
		if retry == nil || retry.GetRetryDelay().AsDuration() <= 0 {
			t.Errorf("no RetryInfo in %v", st.Details())
		}
	})
}
