package ingest_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/profiletest"
	"github.com/hearth-profiler/hearth/internal/testfiles"
)

// FuzzIngestPprof feeds arbitrary bytes through the whole pprof ingest
// path, decoding and storing: it must refuse bad input with an error and
// never panic.
func FuzzIngestPprof(f *testing.F) {
	for _, file := range append(testfiles.Pprof(f), testfiles.CorpusCPU(f)[:2]...) {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, false)
	}
	f.Add([]byte{}, true)
	f.Add([]byte{0x1f, 0x8b, 0x08}, false)
	s := profiletest.OpenStore(f)
	t0 := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, data []byte, prev bool) {
		r := &ingest.Request{Name: "fuzz.cpu{env=f}", Format: "pprof", Profile: data, From: t0.UnixNano()}
		if prev {
			r.PrevProfile = data
		}
		// Ingest decodes and, when the input is valid, stores it.
		_ = s.Ing.Ingest(context.Background(), "fuzz", r)
	})
}
