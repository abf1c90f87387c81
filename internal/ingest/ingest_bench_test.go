package ingest_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	gpprof "github.com/google/pprof/profile"

	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/profiletest"
	"github.com/hearth-profiler/hearth/internal/testfiles"
)

// BenchmarkIngest measures decoding and storing the real Go CPU profiles
// of the benchmark corpus, 50 services, as /ingest does minus HTTP. Compare
// with BenchmarkPprofParse: google/pprof's parse alone of the same bytes.
func BenchmarkIngest(b *testing.B) {
	bodies := corpus(b)
	s := profiletest.OpenStore(b)
	ctx := context.Background()
	var bytes int64
	for _, body := range bodies {
		bytes += int64(len(body))
	}
	b.SetBytes(bytes / int64(len(bodies)))
	b.ReportAllocs()
	t0 := time.Unix(1_700_000_000, 0)
	i := 0
	for b.Loop() {
		r := &ingest.Request{
			Name:   fmt.Sprintf("app.cpu{service_name=svc%d,env=bench,region=r%d}", i%50, i%3),
			Format: "pprof", Profile: bodies[i%len(bodies)],
			From: t0.Add(time.Duration(i/50) * 10 * time.Second).UnixNano(),
		}
		if err := s.Ing.Ingest(ctx, "anonymous", r); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkPprofParse is the floor any ingest path that parses with
// google/pprof sits on.
func BenchmarkPprofParse(b *testing.B) {
	bodies := corpus(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := gpprof.ParseData(bodies[i%len(bodies)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func corpus(b *testing.B) [][]byte {
	var out [][]byte
	for _, f := range testfiles.CorpusCPU(b) {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}
