package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Every decoder of block and checkpoint files gets arbitrary bytes: it
// must return an error, never panic; and what it accepts must survive a
// round trip. The envelope's checksum would turn away nearly every mutated
// input, so the targets of Hearth's own codecs also decode the fuzz input
// as a body wrapped in a valid envelope.

// envelope wraps body as a file of Hearth's own codecs.
func envelope(t testing.TB, magic string, version byte, body []byte) []byte {
	raw, err := appendEnvelope(nil, magic, version, body)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// bodyOf unwraps a valid file.
func bodyOf(t testing.TB, raw []byte, magic string) []byte {
	body, _, err := openEnvelope(raw, magic)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func FuzzDecodeSymbols(f *testing.F) {
	h := testHead(f)
	raw, err := AppendSymbols(nil, h.syms, h.sampleSets)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add(bodyOf(f, raw, symbolsMagic))
	empty, _ := AppendSymbols(nil, NewSymbols(), nil)
	f.Add(bodyOf(f, empty, symbolsMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = DecodeSymbols(b)
		s, sets, err := DecodeSymbols(envelope(t, symbolsMagic, symbolsVersion, b))
		if err != nil {
			return
		}
		// Everything a query touches must be in range.
		for i := range s.Locations {
			_ = s.LocationLines(uint32(i))
		}
		for i := 1; i < s.NumStacks(); i++ {
			_ = stackKey(s, uint32(i))
		}
		again, err := AppendSymbols(nil, s, sets)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		s2, sets2, err := DecodeSymbols(again)
		if err != nil {
			t.Fatalf("decode re-encoded: %v", err)
		}
		if d := cmp.Diff(s.snapshot(), s2.snapshot(), symbolsCmp); d != "" && len(s2.Strings) == len(s.Strings) {
			t.Fatalf("round trip (-first +second):\n%s", d)
		}
		if d := cmp.Diff(sets, sets2, symbolsCmp); d != "" {
			t.Fatalf("label sets round trip (-first +second):\n%s", d)
		}
	})
}

func FuzzDecodeIndex(f *testing.F) {
	dir := f.TempDir()
	db := openDB(f, dir, testOptions())
	loadTestData(f, db, 0, 3, nil)
	h := db.lookupTenant("anonymous").head
	w := newBlockWriter(context.Background(), db.bkt, "anonymous/blocks/", "01ARZ3NDEKTSV4RRFFQ69G5FAV")
	for _, s := range h.all {
		if len(w.ix.series) > 0 && !(w.ix.series[len(w.ix.series)-1].lbls.String() < s.lbls.String()) {
			continue
		}
		if err := w.addSeries(s.lbls, s.profiles); err != nil {
			f.Fatal(err)
		}
	}
	raw, err := appendIndex(nil, &w.ix)
	if err != nil {
		f.Fatal(err)
	}
	if err := w.abort(); err != nil {
		f.Fatal(err)
	}
	db.Close()
	f.Add(raw)
	f.Add(bodyOf(f, raw, indexMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeIndex(b)
		ix, err := decodeIndex(envelope(t, indexMagic, indexVersion, b))
		if err != nil {
			return
		}
		for i := range ix.series {
			s := &ix.series[i]
			a, e := ix.profileRange(s, -1<<63, 1<<63-1)
			ix.rows(a, e)
		}
		again, err := appendIndex(nil, ix)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		ix2, err := decodeIndex(again)
		if err != nil {
			t.Fatalf("decode re-encoded: %v", err)
		}
		if d := cmp.Diff(ix, ix2, cmp.AllowUnexported(blockIndex{}, indexSeries{}), symbolsCmp); d != "" {
			t.Fatalf("round trip (-first +second):\n%s", d)
		}
	})
}

func FuzzDecodeCheckpoint(f *testing.F) {
	raw, _ := appendCheckpoint(nil, &checkpoint{walSegment: 7, delta: map[uint64]*deltaState{
		9: {last: map[uint64]int64{1: 2, 3: 4}, total: 6}}})
	f.Add(raw)
	f.Add(bodyOf(f, raw, checkpointMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeCheckpoint(b)
		cp, err := decodeCheckpoint(envelope(t, checkpointMagic, checkpointVersion, b))
		if err != nil {
			return
		}
		again, err := appendCheckpoint(nil, cp)
		if err != nil {
			t.Fatal(err)
		}
		cp2, err := decodeCheckpoint(again)
		if err != nil {
			t.Fatalf("decode re-encoded: %v", err)
		}
		if d := cmp.Diff(cp, cp2, cmp.AllowUnexported(checkpoint{}, deltaState{})); d != "" {
			t.Fatalf("round trip (-first +second):\n%s", d)
		}
	})
}

func FuzzDecodeMeta(f *testing.F) {
	m := blockMeta{ID: "01ARZ3NDEKTSV4RRFFQ69G5FAV", Version: blockVersion, MinT: 1, MaxT: 2,
		Compaction: blockCompaction{Level: 2, Sources: []string{"01ARZ3NDEKTSV4RRFFQ69G5FAW"}}}
	raw, _ := json.Marshal(m)
	f.Add(raw)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		again, _ := json.Marshal(m)
		if _, err := decodeMeta(again); err != nil {
			t.Fatalf("decode re-encoded: %v", err)
		}
	})
}

func FuzzOpenSamples(f *testing.F) {
	f.Add(writeTestSamples(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = readAllSamples(b)
	})
}

// FuzzDecodeRecord: a write-ahead log record that decodes, old framing or
// new, frames again as the same type, tenant and payload.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(recordProfiles, "anonymous", []byte("payload")))
	f.Add(encodeRecord(recordEvents, "", nil))
	f.Add(oldRecord("team.a", []byte{0xff, 0x00, 1}))
	f.Add([]byte{0xff, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, tenantID, payload, err := decodeRecord(b)
		if err != nil {
			return
		}
		typ2, tenantID2, payload2, err := decodeRecord(encodeRecord(typ, tenantID, payload))
		if err != nil || typ2 != typ || tenantID2 != tenantID || !bytes.Equal(payload2, payload) {
			t.Fatalf("re-framed record decodes as %v, %q, % x, %v; want %v, %q, % x", typ2, tenantID2, payload2, err, typ, tenantID, payload)
		}
	})
}
