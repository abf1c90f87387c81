// Package testfiles finds the test data committed with Hearth: the real
// profiles of testdata/pprof, written by other profilers, and the Go CPU
// and heap profiles of the benchmark corpus in bench/corpus.
//
// It is the one place tests locate files outside their own package. It
// finds the repository from the test's working directory (go test runs a
// package's tests in its directory), so it works wherever the repository is
// cloned and whatever the build flags. A test whose data is missing fails:
// a skip would make a broken checkout look green.
package testfiles

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// module is the line of go.mod that marks Hearth's repository root.
const module = "module github.com/hearth-profiler/hearth"

// Root returns the repository's root directory.
func Root(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatalf("test data: working directory: %v", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), module+"\n") {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatalf("test data: no go.mod of Hearth above the working directory")
		}
		dir = parent
	}
}

// Path returns the file or directory at the slash-separated path rel under
// the repository root, failing the test if it does not exist.
func Path(tb testing.TB, rel string) string {
	tb.Helper()
	p := filepath.Join(Root(tb), filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("test data missing: %v", err)
	}
	return p
}

// Glob returns the files matching the slash-separated pattern under the
// repository root, sorted, failing the test if none match.
func Glob(tb testing.TB, pattern string) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(Root(tb), filepath.FromSlash(pattern)))
	if err != nil {
		tb.Fatalf("test data %s: %v", pattern, err)
	}
	if len(files) == 0 {
		tb.Fatalf("test data missing: nothing matches %s in the repository", pattern)
	}
	return files
}

// Pprof lists the real profiles of testdata/pprof (see its README for
// where they come from): legacy gperftools, Go and Java encodings.
func Pprof(tb testing.TB) []string {
	tb.Helper()
	var out []string
	for _, f := range Glob(tb, "testdata/pprof/*") {
		if !strings.HasSuffix(f, ".md") {
			out = append(out, f)
		}
	}
	return out
}

// CorpusCPU lists the 20 real Go CPU profiles of the benchmark corpus,
// bench/corpus/cpu-NN.pb.gz, in order.
func CorpusCPU(tb testing.TB) []string {
	tb.Helper()
	return Glob(tb, "bench/corpus/cpu-*.pb.gz")
}
