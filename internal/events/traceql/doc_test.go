package traceql

import (
	"os"
	"strings"
	"testing"

	"github.com/hearth-profiler/hearth/internal/testfiles"
)

// TestDocExamples parses every filter the user documentation shows, so that
// the page and the parser cannot drift apart: each line of a text block that
// starts with "{" must parse, and the error message the page quotes must be
// the one Parse gives.
func TestDocExamples(t *testing.T) {
	b, err := os.ReadFile(testfiles.Path(t, "docs/events-filters.md"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	inBlock := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "```"):
			inBlock = line == "```text"
		case inBlock && strings.HasPrefix(line, "{"):
			n++
			f, err := Parse(line)
			if err != nil {
				t.Errorf("docs example %s: %v", line, err)
				continue
			}
			if again, err := Parse(f.String()); err != nil || again.String() != f.String() {
				t.Errorf("docs example %s: canonical text %s does not read back", line, f)
			}
		}
	}
	if n < 10 {
		t.Errorf("found %d filters in docs/events-filters.md, want at least 10", n)
	}
	// The error the page shows.
	const shown = "1:14: duration is compared with a duration like 500ms (or a number of nanoseconds), not a string"
	if !strings.Contains(string(b), shown) {
		t.Fatalf("docs/events-filters.md no longer shows %q", shown)
	}
	if _, err := Parse(`{ duration = "abc" }`); err == nil || err.Error() != shown {
		t.Errorf(`Parse({ duration = "abc" }) = %v, the docs show %q`, err, shown)
	}
}
