package main_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hearth-profiler/hearth/internal/testfiles"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
)

// TestOTLPGRPC exports to the binary's OTLP gRPC port with gzip, as the
// Collector's otlp exporter does by default: the server process must
// have the decompressor registered itself.
func TestOTLPGRPC(t *testing.T) {
	dir := t.TempDir()
	grpcAddr := freeAddr(t)
	srv := startServer(t, filepath.Join(dir, "data"), freeAddr(t), "--otlp.grpc.listen="+grpcAddr)
	payload, err := os.ReadFile(testfiles.Path(t, "internal/otlp/testdata/export-proto-v1.10.0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	req := pprofileotlp.NewExportRequest()
	if err := req.UnmarshalProto(payload); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := pprofileotlp.NewGRPCClient(conn).Export(context.Background(), req, grpc.UseCompressor(gzip.Name)); err != nil {
		t.Fatalf("export with gzip: %v", err)
	}
	body := getBody(t, srv.url+"/api/v1/label/service_name/values?from=1700000000")
	if !strings.Contains(body, `"checkout"`) || !strings.Contains(body, `"inventory"`) {
		t.Fatalf("services after the export: %s", body)
	}
}
