package query_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	gpprof "github.com/google/pprof/profile"

	"github.com/hearth-profiler/hearth/internal/profile"
	"github.com/hearth-profiler/hearth/internal/profiletest"
	"github.com/hearth-profiler/hearth/internal/query"
	"github.com/hearth-profiler/hearth/internal/testfiles"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func request(q string) query.Request {
	return query.Request{Tenant: "anonymous", Query: q, Start: t0.Add(-time.Hour), End: t0.Add(time.Hour)}
}

// flameStacks reads the stacks of a flame graph: each node's self value
// under the path of names from the root.
func flameStacks(fg *query.FlameGraph) profiletest.Stacks {
	st := profiletest.Stacks{}
	var walk func(n *query.Node, path []string)
	walk = func(n *query.Node, path []string) {
		if n.Self != 0 {
			st[strings.Join(path, ";")] += n.Self
		}
		for _, c := range n.Children {
			walk(c, append(path, c.Name))
		}
	}
	walk(fg.Root, nil)
	return st
}

// expectedTop computes a top table from stacks: self at the leaf, total
// once per stack for each function in it.
func expectedTop(st profiletest.Stacks) map[string][2]int64 {
	out := map[string][2]int64{}
	for k, v := range st {
		if k == "" {
			continue // a sample without a stack has no function
		}
		frames := strings.Split(k, ";")
		e := out[frames[len(frames)-1]]
		e[0] += v
		out[frames[len(frames)-1]] = e
		seen := map[string]bool{}
		for _, f := range frames {
			if seen[f] {
				continue
			}
			seen[f] = true
			e := out[f]
			e[1] += v
			out[f] = e
		}
	}
	return out
}

// TestGoldenPprof ingests each real profile and checks that the flame
// graph, the top table and the exported pprof hold exactly the stacks and
// values that go tool pprof -raw reads from the same file, per sample type.
func TestGoldenPprof(t *testing.T) {
	files := append(testfiles.Pprof(t), testfiles.CorpusCPU(t)[:3]...)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			want := profiletest.PprofRaw(t, file)
			s := profiletest.OpenStore(t)
			s.PushFile(t, "golden{service_name=golden}", file, t0)
			eng := query.NewEngine(s.DB)
			ctx := context.Background()
			types, err := eng.ProfileTypes(ctx, request("{}"))
			if err != nil {
				t.Fatal(err)
			}
			checked := 0
			for _, typName := range types {
				typ, _ := profile.ParseType(typName)
				i := slices.Index(want.SampleTypes, typ.SampleType+"/"+typ.SampleUnit)
				if i < 0 {
					t.Fatalf("profile type %s has no sample type in %v", typName, want.SampleTypes)
				}
				q := typName + `{service_name="golden"}`
				fg, err := eng.FlameGraph(ctx, request(q), 1<<30)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want.Stacks[i], flameStacks(fg)); diff != "" {
					t.Errorf("%s: flame graph stacks differ from go tool pprof -raw (-want +got):\n%s", typName, diff)
				}
				var sum int64
				for _, v := range want.Stacks[i] {
					sum += v
				}
				if fg.Total != sum {
					t.Errorf("%s: flame graph total %d, want %d", typName, fg.Total, sum)
				}
				top, err := eng.Top(ctx, request(q), "self", 0)
				if err != nil {
					t.Fatal(err)
				}
				gotTop := map[string][2]int64{}
				for _, e := range top.Entries {
					gotTop[e.Name] = [2]int64{e.Self, e.Total}
				}
				if diff := cmp.Diff(expectedTop(want.Stacks[i]), gotTop); diff != "" {
					t.Errorf("%s: top table differs (-want +got):\n%s", typName, diff)
				}
				checked++
			}
			if checked != countNonEmpty(want) {
				t.Errorf("checked %d profile types, the file has %d sample types with data", checked, countNonEmpty(want))
			}

			// The whole selection as pprof, read back by go tool pprof.
			p, err := eng.Pprof(ctx, request(`{service_name="golden"}`))
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := p.Write(&buf); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "export.pb.gz")
			if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			got := profiletest.PprofRaw(t, out)
			for i, st := range want.SampleTypes {
				if len(want.Stacks[i]) == 0 {
					continue
				}
				j := slices.Index(got.SampleTypes, st)
				if j < 0 {
					t.Errorf("exported pprof lacks sample type %s: has %v", st, got.SampleTypes)
					continue
				}
				if diff := cmp.Diff(want.Stacks[i], got.Stacks[j]); diff != "" {
					t.Errorf("exported pprof, %s: stacks differ (-want +got):\n%s", st, diff)
				}
			}
		})
	}
}

func countNonEmpty(r *profiletest.Raw) int {
	n := 0
	for _, st := range r.Stacks {
		if len(st) > 0 {
			n++
		}
	}
	return n
}

// TestMergeEqualsPprofMerge checks that the merge of N stored profiles is
// google/pprof's profile.Merge of the same N.
func TestMergeEqualsPprofMerge(t *testing.T) {
	files := testfiles.CorpusCPU(t)
	s := profiletest.OpenStore(t)
	var ps []*gpprof.Profile
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := gpprof.ParseData(data)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
		s.Push(t, "merge{service_name=merge}", data, t0.Add(time.Duration(i)*10*time.Second))
	}
	want, err := gpprof.Merge(ps)
	if err != nil {
		t.Fatal(err)
	}
	eng := query.NewEngine(s.DB)
	got, err := eng.Pprof(context.Background(), request(`{service_name="merge"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := got.CheckValid(); err != nil {
		t.Fatalf("merged pprof is invalid: %v", err)
	}
	// Equal mappings and functions are written once, as profile.Merge
	// writes them.
	if len(got.Mapping) != len(want.Mapping) || len(got.Function) != len(want.Function) {
		t.Errorf("merged pprof has %d mappings and %d functions; profile.Merge has %d and %d",
			len(got.Mapping), len(got.Function), len(want.Mapping), len(want.Function))
	}
	for i, st := range want.SampleType {
		j := slices.IndexFunc(got.SampleType, func(v *gpprof.ValueType) bool { return v.Type == st.Type && v.Unit == st.Unit })
		if j < 0 {
			t.Fatalf("merged pprof lacks sample type %s/%s", st.Type, st.Unit)
		}
		if diff := cmp.Diff(profiletest.ProfileStacks(want, i), profiletest.ProfileStacks(got, j)); diff != "" {
			t.Errorf("%s: merge differs from profile.Merge (-want +got):\n%s", st.Type, diff)
		}
	}
	fg, err := eng.FlameGraph(context.Background(), request(`cpu{service_name="merge"}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, v := range profiletest.ProfileStacks(want, 1) {
		sum += v
	}
	if fg.Total != sum {
		t.Errorf("flame graph total %d, want %d", fg.Total, sum)
	}
	if !fg.Truncated {
		t.Logf("note: flame graph not truncated at %d nodes (%d in all)", fg.MaxNodes, fg.NumNodes)
	}
	checkTreeSums(t, fg.Root)
}

// checkTreeSums checks that every node's total is its self plus its
// children's totals: truncation must keep the sums whole.
func checkTreeSums(t *testing.T, n *query.Node) {
	t.Helper()
	sum := n.Self
	for _, c := range n.Children {
		sum += c.Total
		checkTreeSums(t, c)
	}
	if sum != n.Total {
		t.Errorf("node %s: total %d, but self + children = %d", n.Name, n.Total, sum)
	}
}
