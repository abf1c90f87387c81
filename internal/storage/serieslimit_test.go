package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/hearth-profiler/hearth/internal/labels"
)

// decodeTestBatch is Options.Decode for a JSON array of testPayloads, one
// group of AppendLimited each.
func decodeTestBatch(b []byte) ([]*Input, error) {
	var tps []json.RawMessage
	if err := json.Unmarshal(b, &tps); err != nil {
		return nil, err
	}
	var out []*Input
	for _, raw := range tps {
		in, err := decodeTestPayload(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, in...)
	}
	return out, nil
}

// seriesBatch makes one group per service: a CPU profile with two sample
// types (two series each), and the payload of the groups that admitted
// says (nil: all).
func seriesBatch(t *testing.T, services ...string) ([][]*Input, func([]bool) []byte) {
	t.Helper()
	var raws []json.RawMessage
	var groups [][]*Input
	for i, svc := range services {
		raw := mustJSON(t, testPayload{
			Labels: map[string]string{"service_name": svc},
			Types:  []string{"process_cpu:samples:count:cpu:nanoseconds", cpuType},
			Time:   int64(1000 + i), Profile: encodeProfile(t, synthProfile(i, false)),
		})
		in, err := decodeTestPayload(raw)
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, raw)
		groups = append(groups, in)
	}
	encode := func(admitted []bool) []byte {
		var kept []json.RawMessage
		for i, r := range raws {
			if admitted == nil || admitted[i] {
				kept = append(kept, r)
			}
		}
		return mustJSON(t, kept)
	}
	return groups, encode
}

func serviceNames(t *testing.T, db *DB, tenant string) []string {
	t.Helper()
	vals, err := db.LabelValues(context.Background(), tenant, "service_name", 0, 1<<62, nil)
	if err != nil {
		t.Fatal(err)
	}
	return vals
}

// TestSeriesLimit: groups that would take the head past its series limit
// are refused whole with a *SeriesLimitError and are not logged, while the
// groups before and after them that fit, and profiles of series the head
// holds, are stored; a restart replays only what was stored, and a cut
// starts the count again.
func TestSeriesLimit(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.Decode = decodeTestBatch
	db := openDB(t, dir, opts)
	ctx := context.Background()

	// 3 groups of 2 series under a limit of 5: the third is refused.
	groups, encode := seriesBatch(t, "a", "b", "c")
	refused, err := db.AppendLimited(ctx, "t", encode(nil), groups, 5, encode)
	if err != nil {
		t.Fatal(err)
	}
	var se *SeriesLimitError
	if refused == nil || refused[0] != nil || refused[1] != nil || !errors.As(refused[2], &se) {
		t.Fatalf("refused = %v, want only the third group refused", refused)
	}
	if *se != (SeriesLimitError{Limit: 5, Series: 4, New: 2}) {
		t.Errorf("refusal = %+v, want limit 5, 4 series held, 2 new", *se)
	}
	if n := db.HeadSeries("t"); n != 4 {
		t.Errorf("HeadSeries = %d, want 4", n)
	}

	// At the limit: series the head holds are still taken, new ones not,
	// and a group that adds one series fits in the last place.
	groups, encode = seriesBatch(t, "a", "d")
	refused, err = db.AppendLimited(ctx, "t", encode(nil), groups, 4, encode)
	if err != nil {
		t.Fatal(err)
	}
	if refused == nil || refused[0] != nil || refused[1] == nil {
		t.Fatalf("at the limit: refused = %v, want only the new service refused", refused)
	}
	one, encodeOne := seriesBatch(t, "e")
	one[0][0].Types = one[0][0].Types[1:2] // one series
	one[0][0].Profile.SampleType = one[0][0].Profile.SampleType[1:2]
	for _, s := range one[0][0].Profile.Sample {
		s.Value = s.Value[1:2]
	}
	if refused, err := db.AppendLimited(ctx, "t", encodeOne(nil), one, 5, encodeOne); err != nil || refused != nil {
		t.Fatalf("a group that fits exactly: refused %v, %v", refused, err)
	}
	// Every group refused: nothing logged.
	groups, encode = seriesBatch(t, "f")
	refused, err = db.AppendLimited(ctx, "t", encode(nil), groups, 5, func([]bool) []byte {
		t.Error("encode called with no group admitted")
		return nil
	})
	if err != nil || refused == nil || refused[0] == nil {
		t.Fatalf("over the limit alone: refused %v, %v", refused, err)
	}
	want := []string{"a", "b", "e"}
	if got := serviceNames(t, db, "t"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("services = %v, want %v", got, want)
	}
	// Another tenant has its own head and count.
	groups, encode = seriesBatch(t, "x", "y")
	if refused, err := db.AppendLimited(ctx, "u", encode(nil), groups, 4, encode); err != nil || refused != nil {
		t.Fatalf("tenant u: refused %v, %v", refused, err)
	}
	db.Close()

	db = openDB(t, dir, opts)
	defer db.Close()
	if got := serviceNames(t, db, "t"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after a restart, services = %v, want %v: the log holds what was refused", got, want)
	}
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := db.HeadSeries("t"); n != 0 {
		t.Errorf("HeadSeries after a cut = %d, want 0", n)
	}
	groups, encode = seriesBatch(t, "f", "g")
	if refused, err := db.AppendLimited(ctx, "t", encode(nil), groups, 4, encode); err != nil || refused != nil {
		t.Fatalf("after a cut: refused %v, %v", refused, err)
	}
}

// TestSeriesLimitBaseline: the first profile of a cumulative series whose
// input only sets the baseline (DropFirst) adds no series, so it is not
// refused at the limit; the next one of that series adds one.
func TestSeriesLimitBaseline(t *testing.T) {
	db := openDB(t, t.TempDir(), testOptions())
	defer db.Close()
	appendPayload(t, db, "t", testPayload{Labels: map[string]string{"service_name": "a"}, Types: []string{"", cpuType},
		Time: 1, Profile: encodeProfile(t, synthProfile(0, false))})
	alloc := func(ts int64) []*Input {
		in, err := decodeTestPayload(mustJSON(t, testPayload{Labels: map[string]string{"service_name": "a"}, Types: []string{"", allocType},
			Cumulative: []bool{false, true}, Time: ts, Profile: encodeProfile(t, synthProfile(int(ts), false))}))
		if err != nil {
			t.Fatal(err)
		}
		in[0].DropFirst = true
		return in
	}
	raw := mustJSON(t, []int{})
	keep := func([]bool) []byte { return raw }
	if refused, err := db.AppendLimited(context.Background(), "t", raw, [][]*Input{alloc(2)}, 1, keep); err != nil || refused != nil {
		t.Fatalf("a baseline at the limit: refused %v, %v", refused, err)
	}
	refused, err := db.AppendLimited(context.Background(), "t", raw, [][]*Input{alloc(3)}, 1, keep)
	if err != nil || refused == nil || refused[0] == nil {
		t.Fatalf("the profile after the baseline: refused %v, %v; want a refusal", refused, err)
	}
}

// TestScanHook: a select tells SelectParams.Scan of every series it reads,
// in the head and in blocks, with the rows it reads, and stops at its
// first error.
func TestScanHook(t *testing.T) {
	db := openDB(t, t.TempDir(), testOptions())
	defer db.Close()
	for i, svc := range []string{"a", "b", "c"} {
		appendPayload(t, db, "t", testPayload{Labels: map[string]string{"service_name": svc}, Types: []string{"", cpuType},
			Time: int64(10 + i), Profile: encodeProfile(t, synthProfile(i, false))})
	}
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, labels.ProfileType, cpuType)}
	count := func() (series int, rows int64) {
		p := SelectParams{Start: 0, End: 1 << 62, Matchers: ms, Scan: func(_ labels.Labels, n int64) error {
			series++
			rows += n
			return nil
		}}
		if _, err := db.SelectStacks(context.Background(), "t", p); err != nil {
			t.Fatal(err)
		}
		return series, rows
	}
	headSeries, headRows := count()
	if headSeries != 3 || headRows != 3*7 { // synthProfile has 7 stacks
		t.Errorf("head: %d series, %d rows; want 3, 21", headSeries, headRows)
	}
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s, r := count(); s != headSeries || r != headRows {
		t.Errorf("block: %d series, %d rows; want %d, %d as in the head", s, r, headSeries, headRows)
	}
	stop := errors.New("stop")
	calls := 0
	for _, sel := range []func(SelectParams) error{
		func(p SelectParams) error { _, err := db.SelectStacks(context.Background(), "t", p); return err },
		func(p SelectParams) error { _, err := db.SelectSeries(context.Background(), "t", p); return err },
	} {
		calls = 0
		err := sel(SelectParams{Start: 0, End: 1 << 62, Matchers: ms, Scan: func(labels.Labels, int64) error {
			calls++
			return stop
		}})
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("select: %v after %d calls; want the hook's error after 1", err, calls)
		}
	}
	var profiles int64
	if _, err := db.SelectSeries(context.Background(), "t", SelectParams{Start: 0, End: 1 << 62, Matchers: ms, Scan: func(_ labels.Labels, n int64) error {
		profiles += n
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	if profiles != 3 {
		t.Errorf("SelectSeries without filters read %d rows, want 3: one total per profile", profiles)
	}
}
