package storage_test

import (
	"context"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/query"
	"github.com/hearth-profiler/hearth/internal/storage"
	"github.com/hearth-profiler/hearth/internal/testfiles"
)

// TestEngineOverBlocks drives the store the way the server does: pushes
// through ingest, answers through the query engine, before and after the
// heads become blocks and the store is reopened.
func TestEngineOverBlocks(t *testing.T) {
	files := testfiles.CorpusCPU(t)
	dir := t.TempDir()
	opts := storage.DefaultOptions()
	opts.Decode = ingest.Replay
	opts.Retention = 0
	db, err := storage.Open(dir, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	ig := ingest.New(db, ingest.DefaultProfileLimits(), nil)
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for i := range 40 {
		raw, err := os.ReadFile(files[i%len(files)])
		if err != nil {
			t.Fatal(err)
		}
		svc := []string{"api", "worker"}[i%2]
		err = ig.Ingest(context.Background(), "anonymous", &ingest.Request{
			Name: "app.cpu{service_name=" + svc + ",env=bench}", Format: "pprof", SpyName: "gospy", SampleRate: 100,
			From: start.Add(time.Duration(i) * 10 * time.Second).UnixNano(), Profile: raw,
		})
		if err != nil {
			t.Fatalf("Ingest %d: %v", i, err)
		}
	}
	answer := func(db *storage.DB) []any {
		e := query.NewEngine(db)
		ctx := context.Background()
		r := query.Request{Tenant: "anonymous", Query: `cpu{service_name="api"}`, Start: start, End: start.Add(time.Hour)}
		fg, err := e.FlameGraph(ctx, r, 0)
		if err != nil {
			t.Fatal(err)
		}
		top, err := e.Top(ctx, r, "", 20)
		if err != nil {
			t.Fatal(err)
		}
		r.Query = `cpu{}`
		ser, err := e.Series(ctx, r, time.Minute, []string{"service_name"})
		if err != nil {
			t.Fatal(err)
		}
		names, err := e.LabelNames(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		return []any{fg, top, ser, names}
	}
	want := answer(db)
	// reflect.DeepEqual first: cmp.Diff of two flame graphs of a
	// thousand nodes takes half a minute, and is only worth it to say
	// what differs.
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := answer(db); !reflect.DeepEqual(want, got) {
		t.Fatalf("engine answers over blocks (-head +blocks):\n%s", cmp.Diff(want, got))
	}
	db.Close()
	if db, err = storage.Open(dir, nil, opts); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := answer(db); !reflect.DeepEqual(want, got) {
		t.Fatalf("engine answers after reopen (-head +reopened):\n%s", cmp.Diff(want, got))
	}
}
