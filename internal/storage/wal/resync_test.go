package wal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// logRecords logs payloads into a new log in dir, calling Cut after the
// indexes in cuts, and closes it. It returns each record's segment and
// offset.
func logRecords(t *testing.T, dir string, payloads []string, cuts ...int) []recPos {
	t.Helper()
	w, err := Open(dir, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var pos []recPos
	var off int64
	for i, p := range payloads {
		if err := w.Log([]byte(p)); err != nil {
			t.Fatal(err)
		}
		pos = append(pos, recPos{w.segNum, off, int64(headerBytes + len(p))})
		off += int64(headerBytes + len(p))
		for _, c := range cuts {
			if c == i {
				if _, err := w.Cut(); err != nil {
					t.Fatal(err)
				}
				off = 0
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return pos
}

type recPos struct {
	seg       int
	off, size int64
}

func segFile(dir string, n int) string { return filepath.Join(dir, fmt.Sprintf("%08d", n)) }

func editFile(t *testing.T, path string, edit func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, edit(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

// openLogged opens dir with a logger writing to the returned buffer.
func openLogged(t *testing.T, dir string) (*WAL, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	w, err := Open(dir, slog.New(slog.NewTextHandler(&buf, nil)), Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return w, &buf
}

func payloads(recs []rec) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Data)
	}
	return out
}

func names(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("record %d %s", i, strings.Repeat("x", 40+i)))
	}
	return out
}

func corruptFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(dir, "corrupt"))
	out := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, "corrupt", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

// TestResyncFlippedBytes flips 16 bytes inside one record of an earlier
// segment and one of the last: Open succeeds, only those two records are
// lost, the segments keep their bytes, and the damage is copied aside and
// named in the log.
func TestResyncFlippedBytes(t *testing.T) {
	dir := t.TempDir()
	all := names(10)
	pos := logRecords(t, dir, all, 4)
	for _, i := range []int{2, 7} {
		p := pos[i]
		editFile(t, segFile(dir, p.seg), func(b []byte) []byte {
			for j := p.off + 20; j < p.off+36; j++ {
				b[j] ^= 0xa5
			}
			return b
		})
	}
	before1, _ := os.ReadFile(segFile(dir, 1))
	before2, _ := os.ReadFile(segFile(dir, 2))
	w, logs := openLogged(t, dir)
	got := payloads(replayAll(t, w, 0))
	want := append(append(append([]string{}, all[:2]...), all[3:7]...), all[8:]...)
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("replay (-want +got):\n%s", d)
	}
	after1, _ := os.ReadFile(segFile(dir, 1))
	after2, _ := os.ReadFile(segFile(dir, 2))
	if !bytes.Equal(before1, after1) || !bytes.Equal(before2, after2) {
		t.Fatal("a segment with damage followed by whole records was changed")
	}
	corrupt := corruptFiles(t, dir)
	for _, i := range []int{2, 7} {
		p := pos[i]
		name := fmt.Sprintf("%08d-%d", p.seg, p.off)
		seg, _ := os.ReadFile(segFile(dir, p.seg))
		if !bytes.Equal(corrupt[name], seg[p.off:p.off+p.size]) {
			t.Errorf("corrupt/%s holds %q, want the damaged record's bytes", name, corrupt[name])
		}
		want := fmt.Sprintf("segment=%d offset=%d bytes=%d", p.seg, p.off, p.size)
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log does not name the damage %q:\n%s", want, logs)
		}
	}
	if len(corrupt) != 2 {
		t.Errorf("corrupt holds %d files, want 2", len(corrupt))
	}
}

// TestResyncPartialRecord is the trace of a failed write that was not undone
// (as before this version): part of a record, then whole records appended
// after it. Every whole record replays.
func TestResyncPartialRecord(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(b []byte, p recPos) []byte
	}{
		{"cut mid-record", func(b []byte, p recPos) []byte {
			return append(b[:p.off+p.size/2:p.off+p.size/2], b[p.off+p.size:]...)
		}},
		{"garbage inserted", func(b []byte, p recPos) []byte {
			g := append([]byte("garbage HWL1 \xff\xff\x00\x00"), b[p.off:]...)
			return append(b[:p.off:p.off], g...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			all := names(6)
			pos := logRecords(t, dir, all)
			editFile(t, segFile(dir, 1), func(b []byte) []byte { return tc.edit(b, pos[3]) })
			w, logs := openLogged(t, dir)
			want := all
			if tc.name == "cut mid-record" {
				want = append(append([]string{}, all[:3]...), all[4:]...)
			}
			if d := cmp.Diff(want, payloads(replayAll(t, w, 0))); d != "" {
				t.Fatalf("replay (-want +got):\n%s", d)
			}
			if len(corruptFiles(t, dir)) != 1 || !strings.Contains(logs.String(), "skipping damaged wal records") {
				t.Fatalf("damage not copied aside and logged: %v\n%s", corruptFiles(t, dir), logs)
			}
		})
	}
}

// TestTornTailKept checks that a torn tail of the last segment is cut off
// the segment, but copied aside first.
func TestTornTailKept(t *testing.T) {
	dir := t.TempDir()
	all := names(3)
	pos := logRecords(t, dir, all)
	editFile(t, segFile(dir, 1), func(b []byte) []byte { return b[:len(b)-5] })
	w, logs := openLogged(t, dir)
	if d := cmp.Diff(all[:2], payloads(replayAll(t, w, 0))); d != "" {
		t.Fatalf("replay (-want +got):\n%s", d)
	}
	fi, _ := os.Stat(segFile(dir, 1))
	if fi.Size() != pos[2].off {
		t.Fatalf("segment is %d bytes after Open, want the torn tail cut at %d", fi.Size(), pos[2].off)
	}
	if c := corruptFiles(t, dir)[fmt.Sprintf("%08d-%d", 1, pos[2].off)]; int64(len(c)) != pos[2].size-5 {
		t.Fatalf("torn tail copy holds %d bytes, want %d", len(c), pos[2].size-5)
	}
	if !strings.Contains(logs.String(), "cutting torn wal tail") {
		t.Fatalf("no warning:\n%s", logs)
	}
}

// TestOldFraming replays a segment written by the version before the magic
// (testdata/old-framing, made by its Log), alone, damaged, and followed by
// segments of the current framing.
func TestOldFraming(t *testing.T) {
	old, err := os.ReadFile("testdata/old-framing/00000001")
	if err != nil {
		t.Fatal(err)
	}
	all := []string{"alpha", strings.Repeat("\x07", 300), "charlie", "delta", "echo"}

	dir := t.TempDir()
	if err := os.WriteFile(segFile(dir, 1), old, 0o644); err != nil {
		t.Fatal(err)
	}
	w, _ := openLogged(t, dir)
	if err := w.Log([]byte("foxtrot")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w, _ = openLogged(t, dir)
	if d := cmp.Diff(append(all, "foxtrot"), payloads(replayAll(t, w, 0))); d != "" {
		t.Fatalf("replay (-want +got):\n%s", d)
	}

	// Damage inside "charlie", whose record starts after alpha's 13 bytes
	// and the 308 of the second.
	dir = t.TempDir()
	b := bytes.Clone(old)
	for i := 13 + 308 + 9; i < 13+308+13; i++ {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(segFile(dir, 1), b, 0o644); err != nil {
		t.Fatal(err)
	}
	w, logs := openLogged(t, dir)
	want := []string{all[0], all[1], all[3], all[4]}
	if d := cmp.Diff(want, payloads(replayAll(t, w, 0))); d != "" {
		t.Fatalf("replay of a damaged old segment (-want +got):\n%s", d)
	}
	if !strings.Contains(logs.String(), "offset=321 bytes=15") {
		t.Fatalf("damage not named:\n%s", logs)
	}
}

// TestResyncOldFramingPartialRecord is the damage the failed writes of
// earlier versions left in users' logs: the unfinished record of a write
// that ran out of space (profile bytes, random-looking), then whole records
// appended after it, in a large segment of the old framing. Every whole
// record replays, and finding the next one does not checksum the rest of
// the segment at each offset of the damage.
func TestResyncOldFramingPartialRecord(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	record := func(n int) ([]byte, []byte) {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		r := binary.LittleEndian.AppendUint32(nil, uint32(n))
		r = binary.LittleEndian.AppendUint32(r, crc32.Checksum(p, castagnoli))
		return p, append(r, p...)
	}
	var seg []byte
	var want []string
	for i := range 400 {
		p, r := record(64 << 10)
		if i == 1 {
			seg = append(seg, r[:40<<10]...) // the failed write
			continue
		}
		seg = append(seg, r...)
		want = append(want, string(p))
	}
	dir := t.TempDir()
	if err := os.WriteFile(segFile(dir, 1), seg, 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	w, logs := openLogged(t, dir)
	got := payloads(replayAll(t, w, 0))
	t.Logf("open and replay of a %d MiB segment: %v", len(seg)>>20, time.Since(start))
	if len(got) != len(want) || !slices.Equal(got, want) {
		t.Fatalf("replayed %d records, want the %d whole ones", len(got), len(want))
	}
	if !strings.Contains(logs.String(), fmt.Sprintf("offset=%d bytes=%d", 8+64<<10, 40<<10)) {
		t.Fatalf("damage not named:\n%s", logs)
	}
}

// TestPruneDamaged checks that copies of damaged bytes are removed once
// older than KeepDamaged, when the log opens and when it is truncated,
// and that younger ones stay.
func TestPruneDamaged(t *testing.T) {
	dir := t.TempDir()
	cdir := filepath.Join(dir, "corrupt")
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		t.Fatal(err)
	}
	old, young := filepath.Join(cdir, "00000001-10"), filepath.Join(cdir, "00000002-20")
	for _, p := range []string{old, young} {
		if err := os.WriteFile(p, []byte("damaged"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	aged := time.Now().Add(-DefaultKeepDamaged - time.Hour)
	if err := os.Chtimes(old, aged, aged); err != nil {
		t.Fatal(err)
	}
	w, err := Open(dir, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("copy older than KeepDamaged still there after Open (stat: %v)", err)
	}
	if _, err := os.Stat(young); err != nil {
		t.Errorf("young copy removed: %v", err)
	}
	if err := os.Chtimes(young, aged, aged); err != nil {
		t.Fatal(err)
	}
	if err := w.Truncate(1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(young); !os.IsNotExist(err) {
		t.Errorf("copy older than KeepDamaged still there after Truncate (stat: %v)", err)
	}
}
