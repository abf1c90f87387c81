package wal

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
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
	old, err := os.ReadFile("testdata/old-framing/00000001")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)-3])
	f.Add(old)
	f.Add(append(bytes.Clone(old[:40]), old[100:]...))
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
			total += oldHeaderBytes + len(p)
			return nil
		})
		if err == nil && total > len(data) {
			t.Fatalf("replayed %d bytes of records from %d bytes", total, len(data))
		}
	})
}

// FuzzResync builds a segment of valid records (in the current framing or
// the old one), damages it (bytes flipped, garbage inserted, or bytes cut
// out) and replays it, as the last segment or an earlier one. Open must
// succeed, what replays must be a subsequence of the records written, the
// records wholly before the damage must all replay, and so must every record
// of the segment after. (A damage that itself forms a valid record, which
// takes a CRC32C collision, would break the subsequence check.)
func FuzzResync(f *testing.F) {
	f.Add([]byte("alpha;bravo;charlie;delta;echo"), []byte{0xff, 0xff}, uint16(20), uint8(0), false, true)
	f.Add([]byte("alpha;bravo;charlie;delta;echo"), []byte("garbageHWL1"), uint16(30), uint8(1), true, false)
	f.Add([]byte("alpha;bravo;charlie;delta;echo"), []byte{}, uint16(25), uint8(2), false, false)
	f.Add([]byte("alpha;bravo;charlie;delta;echo"), []byte{1, 2, 3}, uint16(60), uint8(2), true, true)
	f.Fuzz(func(t *testing.T, spec, damageBytes []byte, at uint16, mode uint8, oldFraming, last bool) {
		var recs [][]byte
		for _, p := range bytes.Split(spec, []byte(";")) {
			if len(p) > 0 {
				recs = append(recs, p)
			}
		}
		if len(recs) == 0 {
			return
		}
		var seg []byte
		var ends []int
		for _, p := range recs {
			if oldFraming {
				seg = binary.LittleEndian.AppendUint32(seg, uint32(len(p)))
				seg = binary.LittleEndian.AppendUint32(seg, crc32.Checksum(p, castagnoli))
				seg = append(seg, p...)
			} else {
				seg = appendRecord(seg, p)
			}
			ends = append(ends, len(seg))
		}
		pos := int(at) % len(seg)
		switch mode % 3 {
		case 0: // flip
			for i, b := range damageBytes {
				if pos+i < len(seg) {
					seg[pos+i] ^= b | 1
				}
			}
		case 1: // insert
			seg = append(seg[:pos:pos], append(bytes.Clone(damageBytes), seg[pos:]...)...)
		case 2: // cut out
			n := min(len(damageBytes)+1, len(seg)-pos)
			seg = append(seg[:pos:pos], seg[pos+n:]...)
		}
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, "00000001"), seg, 0o644); err != nil {
			t.Fatal(err)
		}
		var after []byte
		if !last {
			after = []byte("the next segment")
			if err := os.WriteFile(filepath.Join(d, "00000002"), appendRecord(nil, after), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		w, err := Open(d, nil, Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer w.Close()
		var got [][]byte
		if err := w.Replay(0, func(s int, p []byte) error {
			if s == 1 {
				got = append(got, bytes.Clone(p))
			} else if !bytes.Equal(p, after) {
				t.Fatalf("segment %d replayed %q", s, p)
			}
			return nil
		}); err != nil {
			t.Fatalf("Replay: %v", err)
		}
		// Greedy subsequence match.
		j := 0
		for _, g := range got {
			for j < len(recs) && !bytes.Equal(recs[j], g) {
				j++
			}
			if j == len(recs) {
				t.Fatalf("replayed %q, which is not a subsequence of the records written %q", got, recs)
			}
			j++
		}
		intact := 0
		for intact < len(ends) && ends[intact] <= pos {
			intact++
		}
		if mode%3 == 0 && len(damageBytes) == 0 {
			intact = len(recs)
		}
		if len(got) < intact {
			t.Fatalf("replayed %d records, want at least the %d before the damage at %d", len(got), intact, pos)
		}
		for i := range intact {
			if !bytes.Equal(got[i], recs[i]) {
				t.Fatalf("record %d replayed as %q, want %q", i, got[i], recs[i])
			}
		}
	})
}
