package main_test

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// layers says which of Hearth's packages a package may never depend on,
// directly or through others. Each side names a package and everything
// under it. The agent runs on every host and must stay small; storage sits
// under every way in and every query, so it knows none of them.
var layers = []struct {
	pkg       string
	forbidden []string
}{
	{"internal/agent", []string{"internal/storage", "internal/query", "internal/api", "internal/server", "internal/ingest"}},
	{"internal/storage", []string{"internal/api", "internal/query", "internal/server", "internal/ingest", "internal/scrape", "internal/agent"}},
	{"internal/query", []string{"internal/api", "internal/server", "internal/ingest"}},
	// Every layer reads the tenants' limits; they read none of it.
	{"internal/limits", []string{"internal/storage", "internal/query", "internal/api", "internal/server", "internal/ingest", "internal/scrape"}},
	{"internal/labels", []string{""}},
	{"internal/profile", []string{""}},
	{"internal/priority", []string{""}},
}

const module = "github.com/hearth-profiler/hearth/"

// under reports whether the package path (relative to the module) is dir
// or below it; "" stands for every package of Hearth.
func under(path, dir string) bool {
	return dir == "" || path == dir || strings.HasPrefix(path, dir+"/")
}

// TestLayers fails when a package depends on one its layer forbids.
func TestLayers(t *testing.T) {
	cmd := exec.Command("go", "list", "-json=ImportPath,Deps", "../../...")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := make([]int, len(layers))
	for {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		path, ok := strings.CutPrefix(p.ImportPath, module)
		if !ok {
			continue
		}
		for i, l := range layers {
			if !under(path, l.pkg) {
				continue
			}
			seen[i]++
			for _, d := range p.Deps {
				dep, ok := strings.CutPrefix(d, module)
				if !ok || under(dep, l.pkg) {
					continue
				}
				for _, f := range l.forbidden {
					if under(dep, f) {
						t.Errorf("%s depends on %s, which %s may not use", path, dep, l.pkg)
					}
				}
			}
		}
	}
	for i, l := range layers {
		if seen[i] == 0 {
			t.Errorf("no package %s: the rule for it checks nothing", l.pkg)
		}
	}
}
