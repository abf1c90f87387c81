package ingest

import (
	"slices"
	"testing"

	gpprof "github.com/google/pprof/profile"
	"github.com/hearth-profiler/hearth/internal/testfiles"
)

// benchProfiles returns the gunzipped Go CPU profiles of the shared
// benchmark corpus, in name order.
func benchProfiles(b *testing.B) [][]byte {
	files := readProtoFiles(b, testfiles.CorpusCPU(b))
	var names []string
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	var out [][]byte
	var n int64
	for _, name := range names {
		out = append(out, files[name])
		n += int64(len(files[name]))
	}
	b.SetBytes(n / int64(len(out)))
	b.ReportAllocs()
	return out
}

// BenchmarkDecodePprof decodes one gunzipped corpus profile per op; compare
// with BenchmarkParseUncompressed.
func BenchmarkDecodePprof(b *testing.B) {
	profiles := benchProfiles(b)
	i := 0
	for b.Loop() {
		if _, err := decodePprofProto(profiles[i%len(profiles)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkParseUncompressed is google/pprof's decoding of the same bytes,
// with the CheckValid that ParseData adds, as decodePprofProto does it.
func BenchmarkParseUncompressed(b *testing.B) {
	profiles := benchProfiles(b)
	i := 0
	for b.Loop() {
		p, err := gpprof.ParseUncompressed(profiles[i%len(profiles)])
		if err != nil {
			b.Fatal(err)
		}
		if err := p.CheckValid(); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
