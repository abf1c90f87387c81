package calc

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/events"
	"github.com/hearth-profiler/hearth/internal/storage"
)

// TestOverStorage runs queries over Hearth's storage, from the head and
// from a block, and checks they answer as over the same events handed
// out by the fake scan: storage fills the columns asked for and no
// others, hands out dictionary strings, and cuts batches its own way.
func TestOverStorage(t *testing.T) {
	opts := storage.DefaultOptions()
	opts.Retention = 0
	opts.Decode = func([]byte) ([]*storage.Input, error) { return nil, errors.New("no profiles in this test") }
	db, err := storage.Open(t.TempDir(), nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	evs := slowRegionEvents(20000, 1000)
	for i := 0; i < len(evs); i += 5000 {
		if err := db.AppendEvents(ctx, "team", slices.Clone(evs[i:i+5000])); err != nil {
			t.Fatal(err)
		}
	}
	from, until := t0, t0.Add(24*time.Hour)
	stored := func(ctx context.Context, cols events.Columns, fn func(*events.Batch) error) error {
		return db.SelectEvents(ctx, "team", storage.EventQuery{Columns: cols, Start: from.UnixNano(), End: until.UnixNano()}, fn)
	}
	fake, _ := fakeScan(evs, 777)
	q := mustSpec(t, Spec{
		By:       "resource.cloud.region,status",
		Calc:     "count,p50(duration),p99(duration),max(duration),sum(span.http.status_code),count_distinct(span.customer.id),heatmap(duration)",
		Step:     10 * time.Minute,
		Having:   "count > 100",
		Examples: 2,
	})
	slow := slowFilter{800 * time.Millisecond}
	check := func(where string) {
		want, err := Run(ctx, fake, slow, q, from, until)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Run(ctx, stored, slow, q, from, until)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		wj, _ := json.Marshal(want)
		gj, _ := json.Marshal(got)
		if string(wj) != string(gj) {
			t.Errorf("%s: run over storage\n%s\nover the same events\n%s", where, gj, wj)
		}
		if got.Matched != 1000 || len(got.Groups) == 0 || got.Groups[0].By["resource.cloud.region"] != "eu-west-3" {
			t.Errorf("%s: matched %d, groups %v", where, got.Matched, got.Groups)
		}
		cmpRes, err := Compare(ctx, stored, nil, CompareQuery{Selection: slow}, from, until)
		if err != nil {
			t.Fatalf("%s: compare: %v", where, err)
		}
		if top := names(cmpRes.Attributes); len(top) < 2 || top[0] != "resource.cloud.region" || top[1] != "span.customer.id" {
			t.Errorf("%s: compare ranks %v", where, top)
		}
		if cmpRes.SelectionCount != 1000 || cmpRes.BaselineCount != 19000 {
			t.Errorf("%s: compare selection %d, baseline %d", where, cmpRes.SelectionCount, cmpRes.BaselineCount)
		}
	}
	check("head")
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	check("block")
}
