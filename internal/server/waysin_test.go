package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"

	"github.com/hearth-profiler/hearth/internal/server"
	"github.com/hearth-profiler/hearth/internal/testfiles"
)

// TestWaysIn sends through every push protocol to one running server, on
// its one port: OTLP over HTTP and over gRPC (cleartext HTTP/2), and
// Pyroscope's push.v1 over Connect, each with its real client code.
func TestWaysIn(t *testing.T) {
	base := serve(t, server.DefaultConfig())

	payload, err := os.ReadFile(testfiles.Path(t, "internal/otlp/testdata/export-proto-v1.10.0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	// OTLP/HTTP, protobuf.
	resp, err := http.Post(base+"/v1development/profiles", "application/x-protobuf", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("OTLP/HTTP: %s", resp.Status)
	}
	// OTLP/gRPC on the HTTP port, under another tenant so that both
	// arrivals can be told apart.
	conn, err := grpc.NewClient(strings.TrimPrefix(base, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := pprofileotlp.NewExportRequest()
	if err := req.UnmarshalProto(payload); err != nil {
		t.Fatal(err)
	}
	gctx := metadataTenant(context.Background(), "grpc-team")
	// gzip, as the Collector's otlp exporter sends by default.
	if _, err := pprofileotlp.NewGRPCClient(conn).Export(gctx, req, grpc.UseCompressor(gzip.Name)); err != nil {
		t.Fatalf("OTLP/gRPC: %v", err)
	}
	// push.v1 over Connect, with the generated client.
	cpu, err := os.ReadFile(testfiles.CorpusCPU(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	client := pushv1connect.NewPusherServiceClient(http.DefaultClient, base)
	_, err = client.Push(context.Background(), connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels:  []*typesv1.LabelPair{{Name: "__name__", Value: "process_cpu"}, {Name: "service_name", Value: "alloy-pushed"}},
		Samples: []*pushv1.RawSample{{RawProfile: cpu}},
	}}}))
	if err != nil {
		t.Fatalf("Connect push: %v", err)
	}

	services := func(tenant string) []string {
		q := url.Values{"from": {"1700000000"}, "until": {"now"}}
		req, _ := http.NewRequest("GET", base+"/api/v1/label/service_name/values?"+q.Encode(), nil)
		req.Header.Set("X-Scope-OrgID", tenant)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Data []string }
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return body.Data
	}
	if got, want := services("anonymous"), []string{"alloy-pushed", "checkout", "inventory"}; !slices.Equal(got, want) {
		t.Errorf("services of the default tenant = %v; want %v", got, want)
	}
	if got, want := services("grpc-team"), []string{"checkout", "inventory"}; !slices.Equal(got, want) {
		t.Errorf("services of tenant grpc-team = %v; want %v", got, want)
	}
}

func metadataTenant(ctx context.Context, tenant string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "x-scope-orgid", tenant)
}
