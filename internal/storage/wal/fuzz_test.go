package wal

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpenReplay writes arbitrary bytes as the last segment of a log: Open
// must repair or refuse it, and replay must deliver only whole records,
// without panicking.
func FuzzOpenReplay(f *testing.F) {
	dir := f.TempDir()
	w, err := Open(filepath.Join(dir, "seed"), nil, Options{})
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range [][]byte{[]byte("first"), bytes.Repeat([]byte{7}, 300), {}} {
		if err := w.Log(p); err != nil {
			f.Fatal(err)
		}
	}
	w.Close()
	seed, err := os.ReadFile(filepath.Join(dir, "seed", "00000001"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)-3])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, "00000001"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		w, err := Open(d, nil, Options{})
		if err != nil {
			return
		}
		defer w.Close()
		var total int
		err = w.Replay(0, func(_ int, p []byte) error {
			total += 8 + len(p)
			return nil
		})
		if err == nil && total > len(data) {
			t.Fatalf("replayed %d bytes of records from %d bytes", total, len(data))
		}
	})
}
