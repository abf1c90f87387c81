package storage

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hearth-profiler/hearth/internal/storage/wal"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, tenantID := range []string{"", "anonymous", strings.Repeat("t", 127), strings.Repeat("ü", 75), strings.Repeat("x", 300)} {
		for _, typ := range []recordType{recordProfiles, recordEvents, 200} {
			for _, payload := range [][]byte{nil, {0xff, 0x00}, []byte("payload")} {
				rec := encodeRecord(typ, tenantID, payload)
				if !bytes.HasPrefix(rec, recordMarker[:]) {
					t.Fatalf("record % x does not start with the marker", rec[:2])
				}
				gt, gid, gp, err := decodeRecord(rec)
				if err != nil || gt != typ || gid != tenantID || !bytes.Equal(gp, payload) {
					t.Fatalf("decode(encode(%v, %q, %q)) = %v, %q, %q, %v", typ, tenantID, payload, gt, gid, gp, err)
				}
			}
		}
	}
}

// oldRecord frames a record as Hearth did before record types.
func oldRecord(tenantID string, payload []byte) []byte {
	b := binary.AppendUvarint(nil, uint64(len(tenantID)))
	return append(append(b, tenantID...), payload...)
}

// TestOldRecordsNeverStartWithMarker checks the claim that tells old
// records from new ones, for tenant IDs of any length the old framing
// could hold, and that old records decode as profiles.
func TestOldRecordsNeverStartWithMarker(t *testing.T) {
	for n := range 1 << 16 {
		l := binary.AppendUvarint(nil, uint64(n))
		if len(l) >= 2 && l[0] == recordMarker[0] && l[1] == recordMarker[1] {
			t.Fatalf("an old record of a %d-byte tenant ID starts with the marker", n)
		}
	}
	for _, tenantID := range []string{"", "anonymous", strings.Repeat("a", 150), strings.Repeat("b", 255), strings.Repeat("c", 383)} {
		typ, gid, gp, err := decodeRecord(oldRecord(tenantID, []byte{0xff, 0x00, 9}))
		if err != nil || typ != recordProfiles || gid != tenantID || !bytes.Equal(gp, []byte{0xff, 0x00, 9}) {
			t.Fatalf("old record of %q decodes as %v, %q, % x, %v", tenantID, typ, gid, gp, err)
		}
	}
}

func TestDecodeRecordMalformed(t *testing.T) {
	for _, rec := range [][]byte{nil, {0xff, 0x00}, {0xff, 0x00, 1}, {0xff, 0x00, 1, 5, 'a'}, {5, 'a'}, {0x80}} {
		if _, _, _, err := decodeRecord(rec); err == nil {
			t.Errorf("decodeRecord(% x): no error", rec)
		}
	}
}

// rewriteOld copies every record of the log in src to a log in dst, framed
// as before record types.
func rewriteOld(t *testing.T, src, dst string) {
	t.Helper()
	from, err := wal.Open(src, nil, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer from.Close()
	to, err := wal.Open(dst, nil, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = from.Replay(0, func(_ int, rec []byte) error {
		typ, tenantID, payload, err := decodeRecord(rec)
		if err != nil || typ != recordProfiles {
			t.Fatalf("record %d: type %v, err %v", n, typ, err)
		}
		n++
		return to.Log(oldRecord(tenantID, payload))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := to.Close(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no records to rewrite")
	}
}

// firstBytes returns the first two bytes of every record in the log in
// dir, by segment.
func firstBytes(t *testing.T, dir string) map[int][][2]byte {
	t.Helper()
	w, err := wal.Open(dir, nil, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	out := map[int][][2]byte{}
	if err := w.Replay(0, func(seg int, rec []byte) error {
		out[seg] = append(out[seg], [2]byte{rec[0], rec[1]})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReplayOldAndNewRecords: a log written before record types replays as
// it did, and so does the log after an upgrade, old segments first, then
// records with types.
func TestReplayOldAndNewRecords(t *testing.T) {
	ref := openDB(t, t.TempDir(), testOptions())
	defer ref.Close()
	loadTestData(t, ref, 0, 20, nil)
	qs := testQueries(0, 20)
	want := collectAll(t, ref, qs)

	// The same records, logged by this version, then framed the old way
	// in the log of a new store.
	newer := t.TempDir()
	db := openDB(t, newer, testOptions())
	loadTestData(t, db, 0, 10, nil)
	db.Close()
	dir := t.TempDir()
	rewriteOld(t, filepath.Join(newer, "wal"), filepath.Join(dir, "wal"))
	for seg, fbs := range firstBytes(t, filepath.Join(dir, "wal")) {
		for i, fb := range fbs {
			if fb == recordMarker {
				t.Fatalf("segment %d record %d is not in the old framing", seg, i)
			}
		}
	}

	db = openDB(t, newer, testOptions())
	wantOld := collectAll(t, db, testQueries(0, 10))
	db.Close()
	db = openDB(t, dir, testOptions())
	if d := cmp.Diff(wantOld, collectAll(t, db, testQueries(0, 10))); d != "" {
		t.Fatalf("old log (-as logged +old framing):\n%s", d)
	}
	loadTestData(t, db, 10, 20, nil)
	db.Close()
	segs := firstBytes(t, filepath.Join(dir, "wal"))
	old, typed := 0, 0
	for _, fbs := range segs {
		for _, fb := range fbs {
			if fb == recordMarker {
				typed++
			} else {
				old++
			}
		}
	}
	if old == 0 || typed == 0 {
		t.Fatalf("log holds %d old and %d typed records, want both", old, typed)
	}
	db = openDB(t, dir, testOptions())
	defer db.Close()
	if d := cmp.Diff(want, collectAll(t, db, qs)); d != "" {
		t.Fatalf("old then new records (-want +got):\n%s", d)
	}
}

// TestReplayUnknownRecordType: a record of a type this version does not
// read fails Open, naming the type, rather than being lost.
func TestReplayUnknownRecordType(t *testing.T) {
	for _, typ := range []recordType{3, 0, 77} {
		dir := t.TempDir()
		db := openDB(t, dir, testOptions())
		loadTestData(t, db, 0, 1, nil)
		db.Close()
		w, err := wal.Open(filepath.Join(dir, "wal"), nil, wal.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Log(encodeRecord(typ, "anonymous", []byte("x"))); err != nil {
			t.Fatal(err)
		}
		w.Close()
		db, err = Open(dir, nil, testOptions())
		if err == nil {
			db.Close()
			t.Fatalf("type %v: Open succeeded", typ)
		}
		if !strings.Contains(err.Error(), "type "+typ.String()) {
			t.Errorf("type %v: error %q does not name the type", typ, err)
		}
	}
}
