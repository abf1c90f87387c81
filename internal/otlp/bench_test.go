package otlp

import (
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	gpprof "github.com/google/pprof/profile"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"

	"github.com/hearth-profiler/hearth/internal/otlp/otlptest"
	"github.com/hearth-profiler/hearth/internal/testfiles"
)

// benchRequests turns the benchmark corpus's Go CPU profiles into export
// requests as 50 services would send them, one pprof profile (two OTLP
// profiles: samples and cpu) per request, every 10 s per service, as
// internal/ingest's BenchmarkIngest sends the same profiles as pprof.
func benchRequests(b *testing.B) []pprofile.Profiles {
	var parsed []*gpprof.Profile
	for _, f := range testfiles.CorpusCPU(b) {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		p, err := gpprof.ParseData(data)
		if err != nil {
			b.Fatal(err)
		}
		parsed = append(parsed, p)
	}
	out := make([]pprofile.Profiles, 200)
	for i := range out {
		ob := otlptest.NewBuilder()
		sp := ob.Scope(map[string]any{
			"service.name":                fmt.Sprintf("svc%d", i%50),
			"deployment.environment.name": "bench",
			"cloud.region":                fmt.Sprintf("r%d", i%3),
		}, "bench")
		ob.AddPprof(sp, parsed[i%len(parsed)], t0.Add(time.Duration(i/50)*10*time.Second))
		out[i] = ob.Profiles()
	}
	return out
}

// BenchmarkExportHTTP measures OTLP/HTTP exports of the corpus, gzipped
// protobuf as exporters send by default, through a real HTTP server into a
// store. Client and server share the process.
func BenchmarkExportHTTP(b *testing.B) {
	reqs := benchRequests(b)
	bodies := make([][]byte, len(reqs))
	var total int64
	for i, pd := range reqs {
		bodies[i] = gzipBytes(b, encodeExport(b, pd, false))
		total += int64(len(bodies[i]))
	}
	s := newTestServer(b, Options{})
	h := http.Header{"Content-Encoding": {"gzip"}}
	b.SetBytes(total / int64(len(bodies)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if status, _, out := post(b, s.url+Paths[0], contentProtobuf, h, bodies[i%len(bodies)]); status != http.StatusOK {
			b.Fatalf("status %d: %s", status, out)
		}
		i++
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "profiles/s")
}

// BenchmarkExportGRPC measures the same exports through pdata's gRPC
// client, whose encoding of each request counts here too.
func BenchmarkExportGRPC(b *testing.B) {
	reqs := benchRequests(b)
	s := newGRPCTestServer(b)
	ctx := grpcContext(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		resp, err := s.client.Export(ctx, pprofileotlp.NewExportRequestFromProfiles(reqs[i%len(reqs)]))
		if err != nil {
			b.Fatal(err)
		}
		if n := resp.PartialSuccess().RejectedProfiles(); n != 0 {
			b.Fatalf("%d refused: %s", n, resp.PartialSuccess().ErrorMessage())
		}
		i++
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "profiles/s")
}
