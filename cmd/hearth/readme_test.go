package main_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hearth-profiler/hearth/internal/testfiles"
)

// A shell example is one command of a ```sh block, with its continuation
// lines, quoted newlines and here-documents.
type example struct {
	doc  string
	line int
	cmd  string
}

// shellExamples reads the commands of every ```sh block of a Markdown file.
func shellExamples(t *testing.T, path string) []example {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []example
	var cur strings.Builder
	inBlock, start, heredoc := false, 0, ""
	var q quoting
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case !inBlock:
			inBlock = strings.TrimSpace(line) == "```sh"
			continue
		case heredoc == "" && cur.Len() == 0 && strings.TrimSpace(line) == "```":
			inBlock = false
			continue
		}
		if cur.Len() == 0 {
			if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			start = n
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		// Quotes count outside here-documents only: a document's text
		// (a YAML comment's apostrophe) is not shell syntax.
		if heredoc != "" {
			if line == heredoc {
				heredoc = ""
			}
		} else {
			q.scan(line)
			if m := heredocStart.FindStringSubmatch(line); m != nil {
				heredoc = m[1]
			}
		}
		if heredoc != "" || strings.HasSuffix(line, `\`) || q.open() {
			continue
		}
		out = append(out, example{filepath.Base(path), start, cur.String()})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if inBlock || cur.Len() > 0 {
		t.Fatalf("%s: a ```sh block or a command is not closed", path)
	}
	return out
}

var heredocStart = regexp.MustCompile(`<<'?(\w+)'?\s*$`)

// quoting follows the shell's quotes from line to line, so that a newline
// inside quotes continues the command and an apostrophe in a comment does
// not open a quote.
type quoting struct{ single, double bool }

func (q *quoting) open() bool { return q.single || q.double }

func (q *quoting) scan(line string) {
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case q.single:
			q.single = c != '\''
		case c == '\\':
			i++
		case q.double:
			q.double = c != '"'
		case c == '\'':
			q.single = true
		case c == '"':
			q.double = true
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return
		}
	}
}

// runnable says whether an example can run in a test: it talks to the
// server over HTTP, writes the files that later examples use, or runs
// `hearth push`, `hearth query` or `hearth events`. Starting servers and agents, signals,
// other programs (java, go) and anything that serves or waits are left
// out.
func runnable(cmd string) bool {
	first := strings.Fields(cmd)
	if len(first) == 0 || strings.Contains(cmd, "-http") {
		return false
	}
	switch first[0] {
	case "curl", "printf", "mkdir", "cat":
		return true
	case "hearth":
		return len(first) > 1 && (first[1] == "push" || first[1] == "query" || first[1] == "events" || first[1] == "--version")
	}
	return false
}

// TestReadmeExamples runs the examples of README.md and docs/api.md that
// talk to a server, as printed and in order, from a directory that holds
// the repository's files: each must succeed, and curl must get a 2xx
// answer. An example that a user cannot paste and run fails here.
func TestReadmeExamples(t *testing.T) {
	root := testfiles.Root(t)
	var examples []example
	for _, doc := range []string{"README.md", "docs/api.md"} {
		for _, e := range shellExamples(t, filepath.Join(root, doc)) {
			if runnable(e.cmd) {
				examples = append(examples, e)
			}
		}
	}
	// A floor, so that a change to the parser cannot quietly skip them all.
	if len(examples) < 25 {
		t.Fatalf("found %d runnable examples, want at least 25", len(examples))
	}
	addr := freeAddr(t)
	srv := startServer(t, t.TempDir(), addr)
	// The examples' files are relative to the repository's root; the
	// files they write go to a directory of their own.
	work := t.TempDir()
	for _, dir := range []string{"bench", "internal"} {
		if err := os.Symlink(filepath.Join(root, dir), filepath.Join(work, dir)); err != nil {
			t.Fatal(err)
		}
	}
	prelude := `set -eo pipefail
curl() { command curl --fail-with-body --silent --show-error "$@"; }
hearth() {
	case $1 in
	push|query|events) "$HEARTH" "$@" --server "$HEARTH_URL" ;;
	*) "$HEARTH" "$@" ;;
	esac
}
`
	for _, e := range examples {
		cmd := strings.ReplaceAll(e.cmd, "localhost:4040", addr)
		c := exec.Command("bash", "-c", prelude+cmd)
		c.Dir = work
		// hearth push and query default to localhost:4040; the test's
		// server is elsewhere.
		c.Env = append(os.Environ(), "HEARTH="+hearthBin, "HEARTH_URL="+srv.url)
		out, err := c.CombinedOutput()
		if err != nil {
			t.Errorf("%s:%d: %v\n%s\n%s", e.doc, e.line, err, strings.TrimSpace(e.cmd), out)
		}
	}
	if t.Failed() {
		t.Logf("server log:\n%s", srv.logs)
	}
}
