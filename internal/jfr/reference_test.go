package jfr

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	gpprof "github.com/google/pprof/profile"

	"github.com/hearth-profiler/hearth/internal/ingest"
)

// jfrParserTestdata returns jfr-parser's test recordings in the module
// cache. Building this package downloads the module, so a missing
// directory is a failure, not a reason to skip.
func jfrParserTestdata(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/grafana/jfr-parser").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		t.Fatalf("module github.com/grafana/jfr-parser is not in the module cache (go mod download): %v", err)
	}
	return filepath.Join(dir, "parser", "testdata")
}

func readGzip(t *testing.T, name string) []byte {
	t.Helper()
	f, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(f))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

// collapsed renders profiles as "frame:line;frame:line [values]" lines,
// root first, summed per stack and sorted, leaving out all-zero stacks:
// the form of jfr-parser's expected outputs.
func collapsed(ps []*gpprof.Profile) map[string][]int64 {
	out := map[string][]int64{}
	for _, p := range ps {
		for _, s := range p.Sample {
			var frames []string
			for i := len(s.Location) - 1; i >= 0; i-- {
				for _, l := range s.Location[i].Line {
					frames = append(frames, l.Function.Name+":"+strconv.FormatInt(l.Line, 10))
				}
			}
			k := strings.Join(frames, ";")
			v := out[k]
			if v == nil {
				v = make([]int64, len(s.Value))
				out[k] = v
			}
			for i, x := range s.Value {
				v[i] += x
			}
		}
	}
	for k, v := range out {
		if !slices.ContainsFunc(v, func(x int64) bool { return x != 0 }) {
			delete(out, k)
		}
	}
	return out
}

// parseCollapsed reads an expected output, with JFR's "no line number",
// 2^32-1, written as pprof's 0.
func parseCollapsed(t *testing.T, b []byte) map[string][]int64 {
	t.Helper()
	out := map[string][]int64{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		i := strings.LastIndex(line, " [")
		if i < 0 || !strings.HasSuffix(line, "]") {
			t.Fatalf("expected output line %q", line)
		}
		var vals []int64
		for _, f := range strings.Fields(line[i+2 : len(line)-1]) {
			v, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			vals = append(vals, v)
		}
		out[strings.ReplaceAll(line[:i], ":4294967295", ":0")] = vals
	}
	return out
}

// TestMatchesJFRParser converts jfr-parser's own test recordings (async-
// profiler, the JDK, dd-trace-java; with and without labels snapshots) and
// compares the stacks and values with the outputs its converter, which
// Pyroscope uses, is tested against. One difference is deliberate: lock
// delays here are nanoseconds, converted from the recording's ticks, where
// jfr-parser keeps the ticks.
func TestMatchesJFRParser(t *testing.T) {
	dir := jfrParserTestdata(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.jfr.gz"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no recordings in %s: %v", dir, err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".jfr.gz")
		if name == "goland" {
			// 4.6 MB that take 5 s and cover nothing that
			// goland-multichunk, the same session cut in chunks, does not.
			continue
		}
		t.Run(name, func(t *testing.T) {
			rec := readGzip(t, file)
			var snap []byte
			for _, l := range []string{name + ".labels.pb.gz", name + ".labels.gz"} {
				if _, err := os.Stat(filepath.Join(dir, l)); err == nil {
					snap = readGzip(t, filepath.Join(dir, l))
				}
			}
			rs, err := Requests(&ingest.Request{Name: "app", From: 1706241880e9, Until: 1706241890e9, SampleRate: 100}, rec, snap)
			if err != nil {
				t.Fatal(err)
			}
			// jfr-parser makes one profile per kind, with the context
			// labels on its samples; Hearth one per kind and label set.
			byType := map[string][]*gpprof.Profile{}
			for _, r := range rs {
				var sts []string
				for _, st := range r.Parsed.SampleType {
					sts = append(sts, st.Type+"__"+st.Unit)
				}
				key := r.NameKind + "_" + strings.Join(sts, " ")
				byType[key] = append(byType[key], r.Parsed)
			}
			expected, _ := filepath.Glob(filepath.Join(dir, name+"_[0-9]*_expected_collapsed.txt.gz"))
			expected = slices.DeleteFunc(expected, func(f string) bool { return strings.Contains(f, "truncated_frame") })
			// The key of an expected output: its name without the
			// recording's name and the index.
			keyOf := func(exp string) string {
				base := strings.TrimSuffix(filepath.Base(exp), "_expected_collapsed.txt.gz")
				return base[strings.Index(base[len(name)+1:], "_")+len(name)+2:]
			}
			expKeys := map[string]bool{}
			for _, exp := range expected {
				expKeys[keyOf(exp)] = true
			}
			if len(expKeys) != len(byType) {
				t.Errorf("profile types %v; jfr-parser's are %v", keys(byType), keys(expKeys))
			}
			tps := binary.BigEndian.Uint64(rec[56:])
			for _, exp := range expected {
				key := keyOf(exp)
				ps, ok := byType[key]
				if !ok {
					t.Errorf("no profile of type %s", key)
					continue
				}
				want := parseCollapsed(t, readGzip(t, exp))
				got := collapsed(ps)
				lock := strings.HasPrefix(key, "mutex_") || strings.HasPrefix(key, "block_")
				compare(t, key, want, got, lock, tps)
			}
		})
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// compare reports stacks whose values differ; lock delays are compared
// after turning jfr-parser's ticks into nanoseconds, within the rounding of
// one nanosecond per event.
func compare(t *testing.T, typ string, want, got map[string][]int64, lock bool, tps uint64) {
	t.Helper()
	var diffs []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("missing %s %v", k, w))
		case lock && tps != 1e9 && len(w) == 2 && len(g) == 2:
			ns := int64(float64(w[1]) * 1e9 / float64(tps))
			if g[0] != w[0] || g[1] < ns-w[0]-1 || g[1] > ns+w[0]+1 {
				diffs = append(diffs, fmt.Sprintf("%s: got %v, want %v (%d ns)", k, g, w, ns))
			}
		case !slices.Equal(g, w):
			diffs = append(diffs, fmt.Sprintf("%s: got %v, want %v", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("extra %s %v", k, g))
		}
	}
	if len(diffs) > 0 {
		slices.Sort(diffs)
		t.Errorf("%s: %d of %d stacks differ, e.g.:\n%s", typ, len(diffs), len(want), strings.Join(diffs[:min(5, len(diffs))], "\n"))
	}
}
