package otlptest

import (
	"os"
	"testing"
	"time"

	gpprof "github.com/google/pprof/profile"
	"github.com/hearth-profiler/hearth/internal/testfiles"
)

// TestFromPprof checks the shape of a converted corpus profile: one
// resource with the attributes given, one Profile per sample type at the
// pprof time, and every sample and location carried over. That the content
// survives is checked by package otlp's round trip.
func TestFromPprof(t *testing.T) {
	data, err := os.ReadFile(testfiles.CorpusCPU(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	p, err := gpprof.ParseData(data)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	p.TimeNanos = at.UnixNano()
	pd := FromPprof(p, map[string]string{"service.name": "svc-7"})

	if n := pd.ResourceProfiles().Len(); n != 1 {
		t.Fatalf("%d resources, want 1", n)
	}
	rp := pd.ResourceProfiles().At(0)
	if v, ok := rp.Resource().Attributes().Get("service.name"); !ok || v.Str() != "svc-7" {
		t.Errorf("service.name = %v (present %t), want svc-7", v.AsString(), ok)
	}
	ps := rp.ScopeProfiles().At(0).Profiles()
	if ps.Len() != len(p.SampleType) {
		t.Fatalf("%d profiles, want one per sample type (%d)", ps.Len(), len(p.SampleType))
	}
	strs := pd.Dictionary().StringTable()
	for i, st := range p.SampleType {
		op := ps.At(i)
		if got := strs.At(int(op.SampleType().TypeStrindex())); got != st.Type {
			t.Errorf("profile %d: sample type %q, want %q", i, got, st.Type)
		}
		if !op.Time().AsTime().Equal(at) {
			t.Errorf("profile %d: time %v, want %v", i, op.Time().AsTime(), at)
		}
		if op.Samples().Len() != len(p.Sample) {
			t.Errorf("profile %d: %d samples, want %d", i, op.Samples().Len(), len(p.Sample))
		}
	}
	// Index 0 of each table is the zero entry the proto asks for.
	if got, want := pd.Dictionary().LocationTable().Len(), len(p.Location)+1; got != want {
		t.Errorf("%d locations, want %d", got, want)
	}
}
