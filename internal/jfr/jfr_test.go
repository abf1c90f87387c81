package jfr

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"maps"
	"os"
	"strconv"
	"strings"
	"testing"

	gpprof "github.com/google/pprof/profile"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/hearth-profiler/hearth/internal/ingest"
)

// The recording is regenerated with a JDK by testdata/record.sh; the tests
// only read the committed files.
//go:generate sh -c "cd testdata && sh record.sh"

// demo returns the committed recording of testdata/HearthJfrDemo.java,
// gzipped, and the totals the JDK's own reader found in it.
func demo(t testing.TB) ([]byte, map[string]int64) {
	t.Helper()
	rec, err := os.ReadFile("testdata/demo.jfr.gz")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("testdata/demo.summary.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sum := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil {
			t.Fatalf("summary line %q", sc.Text())
		}
		sum[k] = n
	}
	return rec, sum
}

// stacks returns the stacks of sample type i of p, frames joined by ";"
// from the root.
func stacks(p *gpprof.Profile, i int) map[string]int64 {
	out := map[string]int64{}
	for _, s := range p.Sample {
		var frames []string
		for j := len(s.Location) - 1; j >= 0; j-- {
			for _, l := range s.Location[j].Line {
				frames = append(frames, l.Function.Name)
			}
		}
		out[strings.Join(frames, ";")] += s.Value[i]
	}
	return out
}

// onPath sums the stacks that hold the methods of HearthJfrDemo in
// order, each calling the next.
func onPath(st map[string]int64, methods ...string) int64 {
	path := "HearthJfrDemo." + strings.Join(methods, ";HearthJfrDemo.")
	var n int64
	for k, v := range st {
		if strings.Contains(k+";", path+";") {
			n += v
		}
	}
	return n
}

func totalOf(st map[string]int64) int64 {
	var n int64
	for _, v := range st {
		n += v
	}
	return n
}

func TestDemoRecording(t *testing.T) {
	rec, want := demo(t)
	base := &ingest.Request{
		Name: "demo.app{env=test}", From: 1_700_000_000e9, Until: 1_700_000_010e9,
		SampleRate: 100, SpyName: "javaspy", Units: "samples", AggregationType: "sum",
	}
	rs, err := Requests(base, rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string]*ingest.Request{}
	for _, r := range rs {
		if byKind[r.NameKind] != nil {
			t.Errorf("two profiles of kind %s", r.NameKind)
		}
		byKind[r.NameKind] = r
		if r.Name != base.Name || r.From != base.From || r.Until != base.Until || r.SpyName != "javaspy" || r.Format != "pprof" {
			t.Errorf("%s: request %+v does not carry the upload's fields", r.NameKind, r)
		}
		if r.Labels.Len() != 0 {
			t.Errorf("%s: labels %s, want none (the JDK sets no event setting and no contexts)", r.NameKind, r.Labels)
		}
		if err := r.Parsed.CheckValid(); err != nil {
			t.Errorf("%s: %v", r.NameKind, err)
		}
	}
	const period = int64(1e9 / 100)
	for _, tc := range []struct {
		kind        string
		sampleTypes string
		path        []string
		// totals of the first and second sample type, of the whole
		// profile and of the path
		total, path0 [2]int64
	}{
		{"process_cpu", "cpu/nanoseconds", []string{"cpuMain", "burnOuter", "burnMiddle", "burnLeaf"},
			[2]int64{want["cpu.samples"] * period}, [2]int64{want["cpu.samples.burnLeaf"] * period}},
		{"memory", "alloc_sample_objects/count alloc_sample_bytes/bytes", []string{"allocMain", "allocOuter", "allocLeaf"},
			[2]int64{want["alloc.samples"], want["alloc.weight"]}, [2]int64{want["alloc.samples.allocLeaf"], want["alloc.weight.allocLeaf"]}},
		{"mutex", "contentions/count delay/nanoseconds", []string{"lockMain", "lockedWork"},
			[2]int64{want["monitor.events"], want["monitor.nanos"]}, [2]int64{want["monitor.events.lockedWork"], -1}},
		{"block", "contentions/count delay/nanoseconds", []string{"parkMain", "parkLeaf"},
			[2]int64{want["park.events"], want["park.nanos"]}, [2]int64{want["park.events.parkLeaf"], -1}},
	} {
		r := byKind[tc.kind]
		if r == nil {
			t.Errorf("no %s profile", tc.kind)
			continue
		}
		var sts []string
		for _, st := range r.Parsed.SampleType {
			sts = append(sts, st.Type+"/"+st.Unit)
		}
		if got := strings.Join(sts, " "); got != tc.sampleTypes {
			t.Errorf("%s: sample types %s, want %s", tc.kind, got, tc.sampleTypes)
		}
		for i := range r.Parsed.SampleType {
			st := stacks(r.Parsed, i)
			if got := totalOf(st); got != tc.total[i] {
				t.Errorf("%s %s: total %d, the JDK's reader finds %d", tc.kind, sts[i], got, tc.total[i])
			}
			if tc.path0[i] < 0 {
				continue
			}
			if got := onPath(st, tc.path...); got != tc.path0[i] || got == 0 {
				t.Errorf("%s %s on %v: %d, the JDK's reader finds %d", tc.kind, sts[i], tc.path, got, tc.path0[i])
			}
		}
	}
	if len(rs) != 4 {
		t.Errorf("%d profiles, want cpu, memory, mutex and block", len(rs))
	}
	// Lock profiles count events of the recording, not counters since the
	// process started.
	for _, k := range []string{"mutex", "block"} {
		if r := byKind[k]; r != nil && !bytes.Equal(r.SampleTypeConfig, stcNotCumulative) {
			t.Errorf("%s: sample_type_config %s", k, r.SampleTypeConfig)
		}
	}
}

// appendSnapshot encodes a LabelsSnapshot message by hand, field by field.
func appendSnapshot(b []byte, contexts map[int64]map[int64]int64, strs map[int64]string) []byte {
	for id, ls := range contexts {
		var ctx []byte
		for k, v := range ls {
			var entry []byte
			entry = protowire.AppendTag(entry, 1, protowire.VarintType)
			entry = protowire.AppendVarint(entry, uint64(k))
			entry = protowire.AppendTag(entry, 2, protowire.VarintType)
			entry = protowire.AppendVarint(entry, uint64(v))
			ctx = protowire.AppendTag(ctx, 1, protowire.BytesType)
			ctx = protowire.AppendBytes(ctx, entry)
		}
		var entry []byte
		entry = protowire.AppendTag(entry, 1, protowire.VarintType)
		entry = protowire.AppendVarint(entry, uint64(id))
		entry = protowire.AppendTag(entry, 2, protowire.BytesType)
		entry = protowire.AppendBytes(entry, ctx)
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, entry)
	}
	for id, s := range strs {
		var entry []byte
		entry = protowire.AppendTag(entry, 1, protowire.VarintType)
		entry = protowire.AppendVarint(entry, uint64(id))
		entry = protowire.AppendTag(entry, 2, protowire.BytesType)
		entry = protowire.AppendString(entry, s)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, entry)
	}
	return b
}

func TestParseLabelsSnapshot(t *testing.T) {
	contexts := map[int64]map[int64]int64{1: {10: 11, 12: 13}, 2: {10: 14}, -5: {}}
	strs := map[int64]string{10: "controller", 11: "/cart", 12: "region", 13: "eu", 14: "/pay"}
	b := appendSnapshot(nil, contexts, strs)
	// An unknown field, which decoders skip.
	b = protowire.AppendTag(b, 9, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, 42)
	s, err := parseLabelsSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.contexts) != 3 || len(s.strings) != 5 {
		t.Fatalf("snapshot %+v", s)
	}
	for id, ls := range contexts {
		for k, v := range ls {
			if s.contexts[id][k] != v {
				t.Errorf("context %d label %d = %d, want %d", id, k, s.contexts[id][k], v)
			}
		}
	}
	for id, str := range strs {
		if s.strings[id] != str {
			t.Errorf("string %d = %q, want %q", id, s.strings[id], str)
		}
	}
	for name, bad := range map[string][]byte{
		"truncated":          b[:len(b)-3],
		"contexts as varint": protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 1),
		"string id as bytes": protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte("x"))),
	} {
		if _, err := parseLabelsSnapshot(bad); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestRequestsRefusesMalformedInput(t *testing.T) {
	rec, _ := demo(t)
	plain := gunzipTest(t, rec)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain[:len(plain)/2])
	zw.Close()
	// The last constant pool points back to the one before; make that one
	// point forward to the last: the parser would follow the two forever.
	loop := bytes.Clone(plain)
	last := int(beUint64(loop[16:]))
	d, _, _ := cpDelta(t, loop, last)
	if d >= 0 {
		t.Fatalf("the recording's last constant pool has delta %d; want one before it", d)
	}
	prev := last + int(d)
	_, at, n := cpDelta(t, loop, prev)
	setVarLong(t, loop[at:], n, uint64(-d))
	for name, in := range map[string][2][]byte{
		"empty":             {nil, nil},
		"not jfr":           {[]byte("definitely not a recording"), nil},
		"truncated":         {gz.Bytes(), nil},
		"bad gzip":          {[]byte{0x1f, 0x8b, 1, 2, 3}, nil},
		"bad labels":        {rec, []byte{0x0a, 0xff}},
		"looping constants": {loop, nil},
	} {
		_, err := Requests(&ingest.Request{Name: "x"}, in[0], in[1])
		var ie *ingest.InputError
		if !errors.As(err, &ie) || ie.Reason != ingest.ReasonBadData {
			t.Errorf("%s: err = %v, want %v", name, err, ingest.ReasonBadData)
		}
	}
}

// TestRequestsDecompressionLimit: a recording or a labels snapshot that
// decompresses past the limit is refused as too large, naming the limit
// and the flag, and the two together count against one limit.
func TestRequestsDecompressionLimit(t *testing.T) {
	const limit = 1 << 20
	bomb := gzipOf(t, make([]byte, limit+1))
	rec, _ := demo(t)
	plain := gunzipTest(t, rec)
	for name, in := range map[string][2][]byte{
		"recording":             {bomb, nil},
		"labels":                {rec, bomb},
		"recording with labels": {rec, gzipOf(t, make([]byte, limit-len(plain)+1))},
	} {
		_, err := RequestsWithin(context.Background(), &ingest.Request{Name: "x"}, in[0], in[1], limit)
		ie, ok := errors.AsType[*ingest.InputError](err)
		if !ok || ie.Reason != ingest.ReasonTooLarge || !strings.Contains(err.Error(), ingest.FlagMaxDecompressedBytes) {
			t.Errorf("%s: err = %v, want too large naming %s", name, err, ingest.FlagMaxDecompressedBytes)
		}
	}
	if len(plain) >= limit {
		t.Fatalf("demo recording is %d bytes, over the test's limit", len(plain))
	}
	if _, err := RequestsWithin(context.Background(), &ingest.Request{Name: "x"}, rec, nil, limit); err != nil {
		t.Errorf("recording within the limit: %v", err)
	}
}

func gzipOf(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gunzipTest(t *testing.T, b []byte) []byte {
	t.Helper()
	out, err := ingest.Gunzip(b, ingest.DefaultMaxDecompressedBytes, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func beUint64(b []byte) uint64 {
	var v uint64
	for _, c := range b[:8] {
		v = v<<8 | uint64(c)
	}
	return v
}

// cpDelta returns the delta of the constant pool event at pos, and where
// its varint is.
func cpDelta(t *testing.T, rec []byte, pos int) (delta int64, at, n int) {
	t.Helper()
	at = pos
	for range 4 {
		_, m := varLong(rec[at:])
		at += m
	}
	d, n := varLong(rec[at:])
	if n == 0 {
		t.Fatal("no delta")
	}
	return int64(d), at, n
}

// setVarLong writes v as a varint of exactly n bytes, padding with
// continuation bytes as the encoding allows.
func setVarLong(t *testing.T, b []byte, n int, v uint64) {
	t.Helper()
	for i := range n - 1 {
		b[i] = byte(v&0x7f) | 0x80
		v >>= 7
	}
	b[n-1] = byte(v)
	if v > 0x7f {
		t.Fatalf("%d does not fit %d bytes", v, n)
	}
}

func TestContextLabels(t *testing.T) {
	strs := map[int64]string{
		1: "controller", 2: "/cart", 3: "http.route", 4: "/pay", 5: "thread_name", 6: "worker-1",
		7: "__reserved", 8: "x", 9: "region", 10: "", 11: "empty",
	}
	snap := &labelsSnapshot{strings: strs, contexts: map[int64]map[int64]int64{
		1: {1: 2, 3: 4, 5: 6, 7: 8, 11: 10},
		2: {1: 2},
		3: {9: 99}, // a string ID the snapshot lacks: no label
	}}
	c := newConverter(nil, snap, 1)
	for _, tc := range []struct {
		id     uint64
		series string
		sample map[string]string
	}{
		{1, `{controller="/cart"}`, map[string]string{"http.route": "/pay", "thread_name": "worker-1", "__reserved": "x"}},
		{2, `{controller="/cart"}`, map[string]string{}},
		{3, `{}`, map[string]string{}},
		{4, `{}`, map[string]string{}}, // not in the snapshot
		{0, `{}`, map[string]string{}},
	} {
		ctx := c.context(tc.id)
		got := map[string]string{}
		for _, l := range ctx.sample {
			got[l.Name] = l.Value
		}
		if ctx.series.String() != tc.series || ctx.key != tc.series || !maps.Equal(got, tc.sample) {
			t.Errorf("context %d: series %s (key %q) sample %v; want %s %v", tc.id, ctx.series, ctx.key, got, tc.series, tc.sample)
		}
	}
	// Context 1 and 2 name the same series: their samples share a profile.
	if c.builder(kindCPU, c.context(1)) != c.builder(kindCPU, c.context(2)) {
		t.Error("contexts with the same series labels make two profiles")
	}
	if c.builder(kindCPU, c.context(1)) == c.builder(kindCPU, c.context(3)) {
		t.Error("contexts with different series labels share a profile")
	}
}
