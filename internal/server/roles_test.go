package server_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/hearth-profiler/hearth/internal/server"
	"github.com/hearth-profiler/hearth/internal/testfiles"
)

// TestTargetChecked: an unknown role, and a role of a shared bucket
// without one, stop the start with a line that says so; a querier
// refuses scrape jobs, which would be writes; --ingesters on another role
// than a querier, or a value that is not a list of addresses, stops it
// too.
func TestTargetChecked(t *testing.T) {
	dir := t.TempDir()
	bucketDir := filepath.Join(dir, "bucket")
	storage := "storage:\n  bucket:\n    type: filesystem\n    config: {directory: " + bucketDir + "}\n"
	scrapeFile := filepath.Join(dir, "scrape.yaml")
	if err := os.WriteFile(scrapeFile, []byte(storage+
		"scrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['127.0.0.1:1']\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bucketFile := filepath.Join(dir, "hearth.yaml")
	if err := os.WriteFile(bucketFile, []byte(storage), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		target, file, ingesters, want string
	}{
		{"sideways", "", "", `--target="sideways": want all, ingester, querier or compactor`},
		{"compactor", "", "", "--target=compactor needs a bucket shared with the other instances"},
		{"compactor", scrapeFile, "", "scrape_configs: a compactor takes no writes"},
		{"querier", "", "", "--target=querier needs a bucket shared with the other instances"},
		{"ingester", "", "", "--target=ingester needs a bucket shared with the other instances"},
		{"querier", scrapeFile, "", "scrape_configs: a querier takes no writes"},
		{"ingester", bucketFile, "127.0.0.1:1", `--ingesters is for --target=querier, not "ingester"`},
		{"querier", bucketFile, "dns+nameonly", `want host:port or dns+NAME:PORT`},
	} {
		cfg := server.DefaultConfig()
		cfg.DataDir = t.TempDir()
		cfg.SelfProfileInterval = 0
		cfg.Target = c.target
		cfg.ConfigFile = c.file
		cfg.Ingesters = c.ingesters
		s, err := server.New(cfg, nil)
		if err == nil {
			s.Close()
			t.Errorf("--target=%s --ingesters=%q with config %q started", c.target, c.ingesters, c.file)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("--target=%s --ingesters=%q with config %q: %v; want it to say %q", c.target, c.ingesters, c.file, err, c.want)
		}
	}
}

// TestQuerierRefusesWrites: a querier answers every way in with the
// reason it takes no writes (gRPC OTLP: Unimplemented; Pyroscope's
// push.v1 over Connect: the 404, which Connect reads as Unimplemented)
// and serves queries.
func TestQuerierRefusesWrites(t *testing.T) {
	dir := t.TempDir()
	cfg := server.DefaultConfig()
	cfg.Target = server.TargetQuerier
	cfg.ConfigFile = filepath.Join(dir, "hearth.yaml")
	if err := os.WriteFile(cfg.ConfigFile, []byte("storage:\n  bucket:\n    type: filesystem\n    config: {directory: "+filepath.Join(dir, "bucket")+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := serve(t, cfg)

	payload, err := os.ReadFile(testfiles.Path(t, "internal/otlp/testdata/export-proto-v1.10.0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(strings.TrimPrefix(base, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := pprofileotlp.NewExportRequest()
	if err := req.UnmarshalProto(payload); err != nil {
		t.Fatal(err)
	}
	_, err = pprofileotlp.NewGRPCClient(conn).Export(context.Background(), req)
	if st, _ := status.FromError(err); st.Code() != codes.Unimplemented || !strings.Contains(st.Message(), "this instance is a querier") {
		t.Errorf("OTLP/gRPC export to a querier: %v; want Unimplemented saying it is a querier", err)
	}

	client := pushv1connect.NewPusherServiceClient(http.DefaultClient, base)
	_, err = client.Push(context.Background(), connect.NewRequest(&pushv1.PushRequest{}))
	if connect.CodeOf(err) != connect.CodeUnimplemented {
		t.Errorf("push.v1 to a querier: %v; want unimplemented", err)
	}

	resp, err := http.Get(base + "/api/v1/query/flamegraph?query=cpu&from=now-1h&until=now")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("a query to a querier: %s", resp.Status)
	}
}

// TestCompactorServes: a compactor takes the lease of its bucket (the
// object is there, and /metrics says so), answers /ready, and refuses
// writes with the reason.
func TestCompactorServes(t *testing.T) {
	dir := t.TempDir()
	bucketDir := filepath.Join(dir, "bucket")
	cfg := server.DefaultConfig()
	cfg.Target = server.TargetCompactor
	cfg.ConfigFile = filepath.Join(dir, "hearth.yaml")
	if err := os.WriteFile(cfg.ConfigFile, []byte("storage:\n  bucket:\n    type: filesystem\n    config: {directory: "+bucketDir+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := serve(t, cfg)
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/ready"); code != 200 {
		t.Fatalf("/ready: %d %s", code, body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, body := get("/metrics")
		// A sample line, not the HELP line, which says "1 while …".
		if slices.Contains(strings.Split(body, "\n"), "hearth_compactor_lease_held 1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the compactor never took the lease; /metrics:\n%s", grepLines(body, "hearth_compactor"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	raw, err := os.ReadFile(filepath.Join(bucketDir, "compactor-lease.json"))
	if err != nil || !strings.Contains(string(raw), `"holder"`) {
		t.Fatalf("lease object: %q, %v", raw, err)
	}
	resp, err := http.Post(base+"/ingest?name=app.cpu", "application/octet-stream", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), "this instance is a compactor") {
		t.Errorf("a write to a compactor: %s %s", resp.Status, b)
	}
}
