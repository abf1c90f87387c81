package storage

import (
	"context"
	"testing"

	"github.com/hearth-profiler/hearth/internal/labels"
)

// TestAnalyze checks the scope of selections against what the stores
// hold: everything, one service, one profile, and nothing.
func TestAnalyze(t *testing.T) {
	db := openDB(t, t.TempDir(), testOptions())
	defer db.Close()
	ctx := context.Background()
	load := func(from, to int) {
		for i := from; i < to; i++ {
			for _, svc := range []string{"a", "b"} {
				appendPayload(t, db, "anonymous", testPayload{
					Labels: map[string]string{"service_name": svc},
					Types:  []string{"", cpuType}, Time: t0 + int64(i)*10*sec,
					Profile: encodeProfile(t, synthProfile(i, false)),
				})
			}
		}
	}
	load(0, 10)
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	load(10, 30)
	st := db.Stats()
	all := SelectParams{Start: t0, End: t0 + 30*10*sec}
	heads, blocks, err := db.Analyze(ctx, "anonymous", all)
	if err != nil {
		t.Fatal(err)
	}
	if heads.Sources != 1 || heads.Series != 2 || heads.Profiles != 40 || heads.Samples != st.HeadSamples || heads.Bytes != 0 {
		t.Errorf("heads: %+v; want 1 source, 2 series, 40 profiles, %d samples, no bytes", heads, st.HeadSamples)
	}
	if blocks.Sources != 1 || blocks.Series != 2 || blocks.Profiles != 20 || blocks.Samples != st.BlockSamples || blocks.Bytes != st.BlockBytes {
		t.Errorf("blocks: %+v; want 1 source, 2 series, 20 profiles, %d samples, %d bytes", blocks, st.BlockSamples, st.BlockBytes)
	}

	one := all
	one.Matchers = []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "service_name", "a")}
	one.End = t0 + 15*10*sec
	heads, blocks, err = db.Analyze(ctx, "anonymous", one)
	if err != nil {
		t.Fatal(err)
	}
	if heads.Series != 1 || heads.Profiles != 5 || blocks.Series != 1 || blocks.Profiles != 10 || heads.Samples == 0 || blocks.Samples == 0 {
		t.Errorf("service a, first 150 s: heads %+v, blocks %+v; want 5 and 10 profiles of one series", heads, blocks)
	}

	key := ProfileKey{ProfileSeriesID(labels.FromStrings(labels.ProfileType, cpuType, "service_name", "b")), t0 + 12*10*sec}
	byID := all
	byID.Profiles = NewProfileSet(key)
	heads, blocks, err = db.Analyze(ctx, "anonymous", byID)
	if err != nil {
		t.Fatal(err)
	}
	if heads.Sources != 1 || heads.Profiles != 1 || blocks.Sources != 0 || blocks.Profiles != 0 {
		t.Errorf("one profile: heads %+v, blocks %+v; want it in the head alone", heads, blocks)
	}

	none := all
	none.Matchers = []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "service_name", "c")}
	if heads, blocks, err = db.Analyze(ctx, "anonymous", none); err != nil || heads != (Scope{}) || blocks != (Scope{}) {
		t.Errorf("no such service: heads %+v, blocks %+v, %v; want nothing", heads, blocks, err)
	}
}
