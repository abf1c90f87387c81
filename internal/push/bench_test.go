package push

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"

	"github.com/hearth-profiler/hearth/internal/profiletest"
	"github.com/hearth-profiler/hearth/internal/testfiles"
)

// BenchmarkPush pushes the real Go CPU profiles of the benchmark corpus, one
// per request, 50 services, through an HTTP server with a connect-go
// protobuf client, Pyroscope's generated one, as Alloy's pyroscope.write
// does. Compare with
// BenchmarkIngest in internal/ingest: the same profiles without HTTP and
// Connect.
func BenchmarkPush(b *testing.B) {
	var bodies [][]byte
	var bytes int64
	for _, f := range testfiles.CorpusCPU(b) {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		bodies = append(bodies, data)
		bytes += int64(len(data))
	}
	s := profiletest.OpenStore(b)
	path, h := NewHandler(s.Ing, nil)
	mux := http.NewServeMux()
	mux.Handle(path, h)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := newClient(srv.Client(), srv.URL)
	msgs := make([]*pushv1.PushRequest, 0, 50*len(bodies))
	for i := range 50 * len(bodies) {
		msgs = append(msgs, newPushRequest(series{
			labels: []string{
				"__name__", "process_cpu", "service_name", fmt.Sprintf("svc%d", i%50),
				"env", "bench", "region", fmt.Sprintf("r%d", i%3),
			},
			profiles: [][]byte{bodies[i%len(bodies)]},
		}))
	}
	b.SetBytes(bytes / int64(len(bodies)))
	b.ReportAllocs()
	ctx := context.Background()
	i := 0
	for b.Loop() {
		if _, err := c.Push(ctx, connect.NewRequest(msgs[i%len(msgs)])); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
