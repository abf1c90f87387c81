package ingest

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hearth-profiler/hearth/internal/labels"
)

// The fuzz targets fail on panics, and on broken promises that the doc
// comments make about successful results; errors are fine. Run them with
// go test -run=^$ -fuzz=FuzzParseFolded -fuzztime=45s ./internal/ingest/

func FuzzParseFolded(f *testing.F) {
	for _, tc := range foldedCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, lim := range []Limits{{}, {MaxSamples: 3, MaxStackDepth: 4, MaxLineBytes: 16}} {
			for _, parse := range []func([]byte, Limits) ([]FoldedSample, error){ParseFolded, ParseLines} {
				got, err := parse(data, lim)
				if err != nil {
					continue
				}
				checkFoldedResult(t, data, lim, got)
			}
		}
	})
}

func checkFoldedResult(t *testing.T, data []byte, lim Limits, got []FoldedSample) {
	t.Helper()
	if lim.MaxSamples > 0 && len(got) > lim.MaxSamples {
		t.Fatalf("input %q: %d samples, more than MaxSamples %d", data, len(got), lim.MaxSamples)
	}
	seen := make(map[string]bool, len(got))
	for _, s := range got {
		if len(s.Stack) == 0 {
			t.Fatalf("input %q: sample with an empty stack", data)
		}
		if s.Value <= 0 {
			t.Fatalf("input %q: stack %q has value %d, want > 0", data, s.Stack, s.Value)
		}
		if lim.MaxStackDepth > 0 && len(s.Stack) > lim.MaxStackDepth {
			t.Fatalf("input %q: stack %q deeper than MaxStackDepth %d", data, s.Stack, lim.MaxStackDepth)
		}
		for _, fr := range s.Stack {
			if strings.Trim(fr, " \t") == "" || strings.Contains(fr, ";") || strings.ContainsAny(fr, "\n") {
				t.Fatalf("input %q: bad frame %q in stack %q", data, fr, s.Stack)
			}
		}
		k := strings.Join(s.Stack, ";")
		if seen[k] {
			t.Fatalf("input %q: stack %q appears twice", data, s.Stack)
		}
		seen[k] = true
	}
}

func FuzzParseName(f *testing.F) {
	for _, tc := range nameCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseName(s)
		if err != nil {
			return
		}
		if n.App == "" {
			t.Fatalf("ParseName(%q): empty App", s)
		}
		if n.Labels.Get(labels.ServiceName) == "" {
			t.Fatalf("ParseName(%q): no service_name in %s", s, n.Labels)
		}
		if err := n.Labels.Validate(); err != nil {
			t.Fatalf("ParseName(%q): invalid labels %s: %v", s, n.Labels, err)
		}
	})
}

func FuzzParseSampleTypeConfig(f *testing.F) {
	for _, tc := range sampleTypeConfigCases {
		if len(tc.in) <= 1<<10 {
			f.Add([]byte(tc.in))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseSampleTypeConfig(data)
		if err != nil {
			return
		}
		for name, e := range c {
			if name == "" || e == nil {
				t.Fatalf("ParseSampleTypeConfig(%q): entry %q is %v", data, name, e)
			}
		}
	})
}

// FuzzDecodeRequests: a logged payload that decodes logs again as the same
// requests, whatever version it was.
func FuzzDecodeRequests(f *testing.F) {
	r := &Request{Name: "a.cpu{x=1}", Format: "folded", From: 1, Profile: []byte("a;b 1")}
	f.Add(EncodeRequest(r))
	f.Add(EncodeRequests([]*Request{r, {Format: "pprof", Profile: []byte{1}, Labels: labels.FromStrings("service_name", "s"),
		NameKind: "cpu", Contention: ContentionBlock, SampleTypes: []string{"delay"}, DropFirst: true}}))
	if old, err := os.ReadFile("testdata/payload-v2.bin"); err == nil {
		f.Add(old)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := DecodeRequests(b)
		if err != nil {
			return
		}
		again, err := DecodeRequests(EncodeRequests(rs))
		if err != nil {
			t.Fatalf("decode re-encoded: %v", err)
		}
		if d := cmp.Diff(rs, again, cmp.Comparer(labels.Labels.Equal), cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("round trip (-first +second):\n%s", d)
		}
	})
}
