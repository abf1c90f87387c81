package otlp

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	gpprof "github.com/google/pprof/profile"

	"github.com/hearth-profiler/hearth/internal/otlp/otlptest"
	"github.com/hearth-profiler/hearth/internal/profiletest"
	"github.com/hearth-profiler/hearth/internal/query"
	"github.com/hearth-profiler/hearth/internal/testfiles"
)

// TestRoundTripPprof converts each real profile of the shared test data to
// OTLP (with otlptest.FromPprof, written apart from this package's
// conversion and used by the benchmarks too), exports it over HTTP, and
// checks that Hearth stores what it stores when given the original pprof:
// the same profile types, and per type the same flame graph stacks, total
// and top table. The pprof side is also checked against go tool pprof, so
// that agreeing on a wrong answer is not enough.
func TestRoundTripPprof(t *testing.T) {
	files := append(testfiles.Pprof(t), testfiles.CorpusCPU(t)[:2]...)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			p, err := gpprof.ParseData(data)
			if err != nil {
				t.Fatalf("parse %s: %v", file, err)
			}

			ref := profiletest.OpenStore(t)
			ref.Push(t, "golden{service_name=golden}", data, t0)
			refEng := query.NewEngine(ref.DB)

			p.TimeNanos = t0.UnixNano() // where the pprof side is stored
			s := newTestServer(t, Options{})
			resp := exportHTTP(t, s.url, otlptest.FromPprof(p, map[string]string{"service.name": "golden"}), false, true)
			if ps := resp.PartialSuccess(); ps.RejectedProfiles() != 0 {
				t.Fatalf("%d profiles refused: %s", ps.RejectedProfiles(), ps.ErrorMessage())
			}

			ctx := context.Background()
			wantTypes, err := refEng.ProfileTypes(ctx, request("{}"))
			if err != nil {
				t.Fatal(err)
			}
			gotTypes, err := s.eng.ProfileTypes(ctx, request("{}"))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantTypes, gotTypes); diff != "" {
				t.Fatalf("profile types differ (-pprof +otlp):\n%s", diff)
			}
			if len(gotTypes) == 0 {
				t.Fatal("nothing stored")
			}
			raw := profiletest.PprofRaw(t, file)
			for _, typ := range gotTypes {
				r := request(typ + `{service_name="golden"}`)
				want, wantTotal := flameStacks(t, refEng, r)
				got, gotTotal := flameStacks(t, s.eng, r)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s: flame graph differs (-pprof +otlp):\n%s", typ, diff)
				}
				if gotTotal != wantTotal {
					t.Errorf("%s: total %d, want %d", typ, gotTotal, wantTotal)
				}
				if diff := cmp.Diff(topTable(t, refEng, r), topTable(t, s.eng, r)); diff != "" {
					t.Errorf("%s: top table differs (-pprof +otlp):\n%s", typ, diff)
				}
				if !matchesSomeRawType(raw, got) {
					t.Errorf("%s: stacks match none of go tool pprof -raw's sample types", typ)
				}
			}
		})
	}
}

// matchesSomeRawType reports whether st equals the stacks of one sample
// type as go tool pprof -raw reads the file.
func matchesSomeRawType(raw *profiletest.Raw, st profiletest.Stacks) bool {
	for _, want := range raw.Stacks {
		if cmp.Equal(want, st) {
			return true
		}
	}
	return false
}
