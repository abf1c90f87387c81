package agent

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// addProcSeeds adds the named file of every process of the fake /proc
// tree as a seed.
func addProcSeeds(f *testing.F, name string) {
	files, err := filepath.Glob(filepath.Join(testProcRoot, "*", name))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds for %s: %v", name, err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// FuzzStat parses arbitrary stat files: never a panic, a comm found
// between the parentheses, and values that survive being written back.
func FuzzStat(f *testing.F) {
	addProcSeeds(f, "stat")
	f.Add([]byte("1 () R 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"))
	f.Add([]byte("1 (a)b) R"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := parseStat(data)
		if err != nil {
			return
		}
		if !bytes.Contains(data, []byte("("+st.Comm+")")) {
			t.Fatalf("comm %q is not between parentheses in %q", st.Comm, data)
		}
		again := fmt.Sprintf("7 (%s) %s 1 7 7 0 -1 %d 0 0 0 0 0 0 0 0 20 0 1 0 %d 0 0", st.Comm, []byte{st.State}, st.Flags, st.StartTime)
		st2, err := parseStat([]byte(again))
		if err != nil || st2 != st {
			t.Fatalf("written back as %q: %+v, %v; want %+v", again, st2, err, st)
		}
	})
}

// FuzzCgroup parses arbitrary cgroup files: the path is one of the
// file's, and a container ID is 64 lower-case hex digits taken from it.
func FuzzCgroup(f *testing.F) {
	addProcSeeds(f, "cgroup")
	f.Add([]byte("0::/docker/" + strings.Repeat("a", 64) + "/x-" + strings.Repeat("b", 64) + ".scope"))
	f.Add([]byte("1:cpu:/crio-conmon-" + strings.Repeat("0", 64) + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path, id := parseCgroup(data)
		if path != "" {
			found := false
			for line := range strings.SplitSeq(string(data), "\n") {
				if strings.HasSuffix(line, ":"+path) {
					found = true
				}
			}
			if !found {
				t.Fatalf("path %q is on no line of %q", path, data)
			}
		}
		if id != "" && (!isContainerID(id) || !bytes.Contains(data, []byte(id))) {
			t.Fatalf("container ID %q of %q", id, data)
		}
		if pathID := containerIDFromPath(path); pathID != "" && pathID != id {
			t.Fatalf("container ID %q, but the chosen path %q holds %q", id, path, pathID)
		}
	})
}

// FuzzEnviron parses arbitrary environments: only the names asked for,
// each with the value of its first setting.
func FuzzEnviron(f *testing.F) {
	addProcSeeds(f, "environ")
	f.Add([]byte("OTEL_SERVICE_NAME=a\x00OTEL_SERVICE_NAME=b\x00"))
	f.Add([]byte("PYROSCOPE_APPLICATION_NAME"))
	f.Fuzz(func(t *testing.T, data []byte) {
		env := parseEnviron(data, DefaultServiceNameEnv)
		for k, v := range env {
			if !slices.Contains(DefaultServiceNameEnv, k) {
				t.Fatalf("variable %q was not asked for", k)
			}
			// The first entry that sets k, read the simple way.
			var first []byte
			for e := range bytes.SplitSeq(data, []byte{0}) {
				if name, value, ok := bytes.Cut(e, []byte{'='}); ok && string(name) == k {
					first = value
					break
				}
			}
			if string(first) != v {
				t.Fatalf("%s = %q, want the first setting %q in %q", k, v, first, data)
			}
		}
	})
}
