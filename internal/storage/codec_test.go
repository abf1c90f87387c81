package storage

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/klauspost/compress/zstd"

	"github.com/hearth-profiler/hearth/internal/labels"
)

// testHead returns a head holding a few synthetic profiles with per-sample
// labels and a cumulative series.
func testHead(t testing.TB) *head {
	t.Helper()
	tn := newTenant(t.TempDir(), "x")
	for i := range 4 {
		raw := encodeProfile(t, synthProfile(i, true))
		for _, typ := range []string{cpuType, allocType} {
			ins, err := decodeTestPayload(mustJSON(t, testPayload{
				Labels: map[string]string{"service_name": "svc"}, Types: []string{"", typ},
				Cumulative: []bool{false, typ == allocType}, Time: t0 + int64(i)*sec, Profile: raw}))
			if err != nil {
				t.Fatal(err)
			}
			tn.apply(tn.head, ins[0])
		}
	}
	return tn.head
}

var symbolsCmp = cmp.Options{
	cmp.AllowUnexported(Symbols{}),
	cmpopts.IgnoreFields(Symbols{}, "stringIdx", "mappingIdx", "functionIdx", "locationIdx", "stackIdx", "keyBuf"),
	cmp.Comparer(func(a, b labels.Labels) bool { return a.Equal(b) }),
	cmpopts.EquateEmpty(),
}

func TestSymbolsRoundTrip(t *testing.T) {
	h := testHead(t)
	raw, err := AppendSymbols(nil, h.syms, h.sampleSets)
	if err != nil {
		t.Fatal(err)
	}
	s, sets, err := DecodeSymbols(raw)
	if err != nil {
		t.Fatalf("DecodeSymbols: %v", err)
	}
	// Label strings were added to the table; the rest is unchanged.
	if len(s.Strings) < len(h.syms.Strings) {
		t.Fatalf("decoded %d strings, want at least %d", len(s.Strings), len(h.syms.Strings))
	}
	want := h.syms.snapshot()
	got := *s
	got.Strings = got.Strings[:len(want.Strings)]
	if d := cmp.Diff(want, &got, symbolsCmp); d != "" {
		t.Errorf("symbols round trip (-want +got):\n%s", d)
	}
	if d := cmp.Diff(h.sampleSets, sets, symbolsCmp); d != "" {
		t.Errorf("label sets round trip (-want +got):\n%s", d)
	}
}

func TestIndexRoundTrip(t *testing.T) {
	ix := &blockIndex{
		series: []indexSeries{
			{lbls: labels.FromStrings("a", "1", "service_name", "x"), first: 0, n: 3, minT: 5, maxT: 9},
			{lbls: labels.FromStrings("a", "2"), first: 3, n: 0},
			{lbls: labels.FromStrings("b", "1"), first: 3, n: 2, minT: -4, maxT: 1 << 60},
		},
		ts:     []int64{5, 5, 9, -4, 1 << 60},
		rowEnd: []int64{10, 10, 25, 26, 40},
		totals: []int64{100, 0, -3, 7, 1 << 50},
	}
	raw, err := appendIndex(nil, ix)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeIndex(raw)
	if err != nil {
		t.Fatalf("decodeIndex: %v", err)
	}
	if d := cmp.Diff(ix, got, cmp.AllowUnexported(blockIndex{}, indexSeries{}), symbolsCmp); d != "" {
		t.Errorf("index round trip (-want +got):\n%s", d)
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	cp := &checkpoint{walSegment: 42, delta: map[uint64]*deltaState{
		1:       {last: map[uint64]int64{3: 4, 1 << 63: -1}, total: 3},
		1 << 40: {last: map[uint64]int64{}, total: 0},
	}}
	raw, err := appendCheckpoint(nil, cp)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeCheckpoint(raw)
	if err != nil {
		t.Fatalf("decodeCheckpoint: %v", err)
	}
	if d := cmp.Diff(cp, got, cmp.AllowUnexported(checkpoint{}, deltaState{})); d != "" {
		t.Errorf("checkpoint round trip (-want +got):\n%s", d)
	}
}

// TestStableHashes pins the content hashes that persisted delta state is
// keyed by: changing them breaks cumulative series across restarts.
func TestStableHashes(t *testing.T) {
	if got, want := labelsKey(labels.FromStrings("service_name", "api", "__profile_type__", allocType)), uint64(0x14826975019d1201); got != want {
		t.Errorf("labelsKey = %#x, want %#x", got, want)
	}
	h := testHead(t)
	var leaf uint32
	for i := 1; i < h.syms.NumStacks(); i++ {
		if len(stackKey(h.syms, uint32(i))) > len(stackKey(h.syms, leaf)) {
			leaf = uint32(i)
		}
	}
	if got, want := h.syms.StackHash(leaf), uint64(0x9dd53f4a4134a286); got != want {
		t.Errorf("StackHash(%s) = %#x, want %#x", stackKey(h.syms, leaf), got, want)
	}
}

// writeTestSamples writes a small samples.parquet and returns its bytes.
func writeTestSamples(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := newSamplesWriter(&buf)
	for s := range 3 {
		for k := range 4 {
			mp := memProfile{ts: t0 + int64(k)*sec, stacks: []uint32{1, 2, 5, 9}, values: []int64{10, 20, 10, int64(k)}}
			if s == 1 {
				mp.sets = []uint32{0, 1, 0, 2}
			}
			if err := w.add(int32(s), &mp); err != nil {
				t.Fatal(err)
			}
		}
	}
	n, err := w.close()
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("samples writer counted %d bytes, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

// readAllSamples opens and scans all rows of a samples file.
func readAllSamples(raw []byte) (int64, error) {
	sr, err := openSamples(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		return 0, err
	}
	sc := sr.newScanner(true, true, true)
	defer sc.close()
	var sum int64
	err = sc.scan(0, sr.numRows(), func(bt *sampleBatch) error {
		for i := range bt.stacks {
			sum += bt.values[i] + int64(bt.stacks[i]) + int64(bt.sets[i]) + bt.times[i]
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	// Seek into the middle, as selections do.
	if n := sr.numRows(); n > 2 {
		err = sc.scan(n/2, n, func(*sampleBatch) error { return nil })
	}
	return sum, err
}

func TestSamplesRoundTrip(t *testing.T) {
	raw := writeTestSamples(t)
	sr, err := openSamples(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if sr.numRows() != 48 {
		t.Fatalf("%d rows, want 48", sr.numRows())
	}
	sc := sr.newScanner(true, true, true)
	defer sc.close()
	var stacks, sets []int32
	var values, times []int64
	if err := sc.scan(17, 22, func(bt *sampleBatch) error {
		stacks = append(stacks, bt.stacks...)
		values = append(values, bt.values...)
		sets = append(sets, bt.sets...)
		times = append(times, bt.times...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Rows 16..19 are series 1's first profile... row 17 is its second row.
	if d := cmp.Diff([]int32{2, 5, 9, 1, 2}, stacks); d != "" {
		t.Errorf("stacks (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]int64{20, 10, 0, 10, 20}, values); d != "" {
		t.Errorf("values (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]int32{1, 0, 2, 0, 1}, sets); d != "" {
		t.Errorf("sets (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]int64{t0, t0, t0, t0 + sec, t0 + sec}, times); d != "" {
		t.Errorf("times (-want +got):\n%s", d)
	}
}

// TestEnvelopeEncoderShared checks that the process-wide encoder writes,
// whatever it compressed before and from several goroutines at once, the
// bytes that a fresh encoder writes: files stay identical to those of
// earlier versions.
func TestEnvelopeEncoderShared(t *testing.T) {
	var bodies [][]byte
	for _, n := range []int{0, 1, 100, 70 << 10, 3 << 20} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*i>>7) ^ byte(n)
		}
		bodies = append(bodies, b)
	}
	fresh := func(body []byte) []byte {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		defer enc.Close()
		out := append([]byte(nil), "TEST"...)
		out = append(out, 1, compressionZstd)
		out = binary.AppendUvarint(out, uint64(len(body)))
		out = enc.EncodeAll(body, out)
		return binary.LittleEndian.AppendUint32(out, crc32.Checksum(out, castagnoli))
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for k := range 3 * len(bodies) {
				body := bodies[(k+g)%len(bodies)]
				got, err := appendEnvelope(nil, "TEST", 1, body)
				if err != nil {
					t.Error(err)
					return
				}
				if want := fresh(body); !bytes.Equal(got, want) {
					t.Errorf("envelope of %d bytes: %d bytes from the shared encoder, %d from a fresh one, not equal", len(body), len(got), len(want))
				}
			}
		})
	}
	wg.Wait()
}
