package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type rec struct {
	Seg  int
	Data string
}

func replayAll(t *testing.T, w *WAL, first int) []rec {
	t.Helper()
	var out []rec
	if err := w.Replay(first, func(seg int, b []byte) error {
		out = append(out, rec{seg, string(b)})
		return nil
	}); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return out
}

func TestCutTruncateReplay(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var want []rec
	seg := 1
	for i := range 6 {
		if err := w.Log([]byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		want = append(want, rec{seg, fmt.Sprint(i)})
		if i%2 == 1 {
			if seg, err = w.Cut(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if seg != 4 {
		t.Fatalf("Cut returned %d after three cuts, want 4", seg)
	}
	w.Close()
	w, err = Open(dir, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if d := cmp.Diff(want, replayAll(t, w, 0)); d != "" {
		t.Fatalf("replay (-want +got):\n%s", d)
	}
	if err := w.Truncate(3); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want[4:], replayAll(t, w, 0)); d != "" {
		t.Fatalf("replay after Truncate(3) (-want +got):\n%s", d)
	}
}

// TestFirstSegment: a log started afresh numbers its first segment
// FirstSegment; a log that has segments goes on from its last, whatever
// FirstSegment says below it.
func TestFirstSegment(t *testing.T) {
	dir := t.TempDir()
	logAndClose := func(opts Options, data string) {
		t.Helper()
		w, err := Open(dir, nil, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Log([]byte(data)); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	logAndClose(Options{FirstSegment: 7}, "a")
	logAndClose(Options{FirstSegment: 3}, "b")
	logAndClose(Options{FirstSegment: 10}, "c")
	// A directory of a segment's name (damage) is not written into.
	if err := os.Mkdir(filepath.Join(dir, "00000012"), 0o755); err != nil {
		t.Fatal(err)
	}
	logAndClose(Options{}, "d")
	w, err := Open(dir, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if d := cmp.Diff([]rec{{7, "a"}, {8, "b"}, {10, "c"}, {13, "d"}}, replayAll(t, w, 0)); d != "" {
		t.Fatalf("replay (-want +got):\n%s", d)
	}
}

func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"a", "bb", "ccc"} {
		if err := w.Log([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	path := w.segPath(1)
	fi, _ := os.Stat(path)
	if err := os.Truncate(path, fi.Size()-1); err != nil {
		t.Fatal(err)
	}
	w, err = Open(dir, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if d := cmp.Diff([]rec{{1, "a"}, {1, "bb"}}, replayAll(t, w, 0)); d != "" {
		t.Fatalf("replay after a torn tail (-want +got):\n%s", d)
	}
}
