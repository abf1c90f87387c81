package storage

import (
	stdcmp "cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hearth-profiler/hearth/internal/events"
)

// genEvents makes n events of a few services and routes, with a user ID
// per event, a key whose type varies, and span events and links on some.
func genEvents(seed uint64, n int, t0 int64) []events.Event {
	r := rand.New(rand.NewPCG(seed, 1))
	services := []string{"cart", "checkout", "shop"}
	out := make([]events.Event, n)
	for i := range out {
		e := &out[i]
		e.Start = t0 + int64(r.IntN(int(time.Minute)))
		e.Duration = int64(r.ExpFloat64() * float64(50*time.Millisecond))
		for j := range e.TraceID {
			e.TraceID[j] = byte(r.Uint32())
		}
		for j := range e.SpanID {
			e.SpanID[j] = byte(r.Uint32())
		}
		if i%3 != 0 {
			e.TraceID, e.ParentID = out[i-1].TraceID, out[i-1].SpanID
		}
		e.Service = services[r.IntN(len(services))]
		e.Name = fmt.Sprintf("GET /route/%d", r.IntN(20))
		e.Kind = events.Kind(r.IntN(6))
		if r.IntN(10) == 0 {
			e.Status, e.StatusMessage = events.StatusError, "boom"
		}
		e.Attrs = []events.Attr{
			{Key: "resource.host.name", Value: events.String(fmt.Sprintf("web-%d", r.IntN(4)))},
			{Key: "span.http.route", Value: events.String(fmt.Sprintf("/route/%d", r.IntN(20)))},
			{Key: "span.user.id", Value: events.String(fmt.Sprintf("u-%d", r.Uint64()))},
		}
		switch r.IntN(4) {
		case 0:
			e.Attrs = append(e.Attrs, events.Attr{Key: "span.code", Value: events.Int(int64(r.IntN(600)))})
		case 1:
			e.Attrs = append(e.Attrs, events.Attr{Key: "span.code", Value: events.String("E42")})
		case 2:
			e.Attrs = append(e.Attrs, events.Attr{Key: "span.ratio", Value: events.Float(r.Float64())},
				events.Attr{Key: "span.cached", Value: events.Bool(r.IntN(2) == 0)})
		case 3: // mostly distinct: a column without a dictionary
			e.Attrs = append(e.Attrs, events.Attr{Key: "span.bytes", Value: events.Int(r.Int64N(1 << 40))},
				events.Attr{Key: "span.request.id", Value: events.String(fmt.Sprintf("req-%x", r.Uint64()))})
		}
		if r.IntN(20) == 0 {
			e.SpanEvents = []events.SpanEvent{{Time: e.Start + 5, Name: "exception",
				Attrs: []events.Attr{{Key: "exception.message", Value: events.String("boom")}}}}
			e.Links = []events.Link{{TraceID: e.TraceID, SpanID: e.SpanID}}
		}
		e.Normalize()
	}
	return out
}

var allEvents = events.Columns{Intrinsics: events.AllIntrinsics | events.ColDetail, AllAttrs: true}

// selectAll returns every event of tenant in [start, end), sorted by
// service, start and span ID.
func selectAll(t testing.TB, db *DB, tenant string, start, end int64) []events.Event {
	t.Helper()
	var out []events.Event
	err := db.SelectEvents(context.Background(), tenant, EventQuery{Columns: allEvents, Start: start, End: end}, func(b *events.Batch) error {
		for i := range b.Len {
			out = append(out, b.Event(i))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("SelectEvents: %v", err)
	}
	sortEvents(out)
	return out
}

func sortEvents(evs []events.Event) {
	slices.SortFunc(evs, func(a, b events.Event) int {
		if c := strings.Compare(a.Service, b.Service); c != 0 {
			return c
		}
		if a.Start != b.Start {
			return stdcmp.Compare(a.Start, b.Start)
		}
		return slices.Compare(a.SpanID[:], b.SpanID[:])
	})
}

func TestEventsThroughHeadBlockAndRestart(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir, testOptions())
	ctx := context.Background()
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC).UnixNano()
	want := genEvents(1, 3000, t0)
	for i := 0; i < len(want); i += 500 {
		if err := db.AppendEvents(ctx, "team-a", slices.Clone(want[i:i+500])); err != nil {
			t.Fatal(err)
		}
	}
	sortEvents(want)
	all := func() []events.Event { return selectAll(t, db, "team-a", t0, t0+int64(time.Hour)) }
	if d := cmp.Diff(want, all()); d != "" {
		t.Fatalf("from the head (-sent +read):\n%s", d)
	}
	checkTrace(t, db, want, t0)
	if got := selectAll(t, db, "team-b", t0, t0+int64(time.Hour)); len(got) != 0 {
		t.Fatalf("another tenant reads %d events", len(got))
	}
	// Replay after a crash: the log holds every event.
	db.Close()
	db = openDB(t, dir, testOptions())
	if d := cmp.Diff(want, all()); d != "" {
		t.Fatalf("after replay (-sent +read):\n%s", d)
	}
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, all()); d != "" {
		t.Fatalf("from the block (-sent +read):\n%s", d)
	}
	db.Close()
	db = openDB(t, dir, testOptions())
	defer db.Close()
	if d := cmp.Diff(want, all()); d != "" {
		t.Fatalf("from the block after a restart (-sent +read):\n%s", d)
	}
	checkTrace(t, db, want, t0)
	// A time range cuts rows inside a row group.
	mid := t0 + int64(30*time.Second)
	var inRange []events.Event
	for _, e := range want {
		if e.Start >= mid && e.Start < mid+int64(10*time.Second) {
			inRange = append(inRange, e)
		}
	}
	if d := cmp.Diff(inRange, selectAll(t, db, "team-a", mid, mid+int64(10*time.Second))); d != "" {
		t.Fatalf("time range from the block (-want +read):\n%s", d)
	}
	// The block lists its events in meta.json.
	blocks := db.tenant("team-a").blocks
	if len(blocks) != 1 || blocks[0].meta.Events == nil || blocks[0].meta.Events.Rows != int64(len(want)) {
		t.Fatalf("blocks: %d, events meta %+v", len(blocks), blocks[0].meta.Events)
	}
	attrs, err := db.EventAttributes(ctx, "team-a", t0, t0+int64(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range attrs {
		names = append(names, a.Key+":"+a.Type.String())
	}
	wantNames := []string{"resource.host.name:string", "span.bytes:int", "span.cached:bool", "span.code:string", "span.code:int",
		"span.http.route:string", "span.ratio:float", "span.request.id:string", "span.user.id:string"}
	slices.Sort(wantNames)
	slices.Sort(names)
	if d := cmp.Diff(wantNames, names); d != "" {
		t.Errorf("attributes (-want +got):\n%s", d)
	}
}

// TestEventsColumnsAsked: a select reads the columns it names and leaves
// the others nil, from the head and from blocks alike.
func TestEventsColumnsAsked(t *testing.T) {
	db := openDB(t, t.TempDir(), testOptions())
	defer db.Close()
	ctx := context.Background()
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC).UnixNano()
	if err := db.AppendEvents(ctx, "", genEvents(2, 200, t0)); err != nil {
		t.Fatal(err)
	}
	check := func(where string) {
		q := EventQuery{Columns: events.Columns{Intrinsics: events.ColDuration, Attrs: []string{"span.http.route", "span.none"}},
			Start: t0, End: t0 + int64(time.Hour)}
		rows := 0
		err := db.SelectEvents(ctx, "", q, func(b *events.Batch) error {
			rows += b.Len
			if b.Duration == nil || b.Start != nil || b.Service != nil || b.TraceID != nil {
				t.Errorf("%s: columns filled beyond duration", where)
			}
			if len(b.Attrs) != 1 || b.Attrs["span.http.route"] == nil {
				t.Errorf("%s: attribute columns %v", where, slices.Collect(mapsKeys(b.Attrs)))
			}
			return nil
		})
		if err != nil || rows != 200 {
			t.Errorf("%s: %d rows, %v", where, rows, err)
		}
	}
	check("head")
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	check("block")
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestEventsCompaction: blocks of events and profiles compact into one
// that holds them all once, in order.
func TestEventsCompaction(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.CompactionRanges = []time.Duration{time.Hour}
	db := openDB(t, dir, opts)
	defer db.Close()
	ctx := context.Background()
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC).UnixNano()
	var want []events.Event
	for i := range 4 {
		evs := genEvents(uint64(10+i), 700, t0+int64(i)*int64(5*time.Minute))
		want = append(want, evs...)
		if err := db.AppendEvents(ctx, "t", slices.Clone(evs)); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			appendPayload(t, db, "t", testPayload{Labels: map[string]string{"service_name": "shop"},
				Types: []string{"", cpuType}, Time: t0 + 1, Profile: encodeProfile(t, synthProfile(1, false))})
		}
		if err := db.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A later block ends the first hour's window.
	late := genEvents(99, 10, t0+int64(2*time.Hour))
	want = append(want, late...)
	if err := db.AppendEvents(ctx, "t", slices.Clone(late)); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	blocks := db.tenant("t").blocks
	for _, b := range blocks {
		t.Logf("block %s level %d events %+v profiles %d", b.meta.ID, b.meta.Compaction.Level, b.meta.Events, b.meta.Stats.Profiles)
	}
	if len(blocks) != 2 {
		t.Fatalf("%d blocks after compaction, want 2", len(blocks))
	}
	if got := blocks[0].meta.Events.Rows; got != 2800 {
		t.Errorf("compacted block holds %d events, want 2800", got)
	}
	if blocks[0].meta.Stats.Profiles == 0 {
		t.Errorf("compacted block lost its profile")
	}
	sortEvents(want)
	if d := cmp.Diff(want, selectAll(t, db, "t", t0, t0+int64(3*time.Hour))); d != "" {
		t.Fatalf("after compaction (-sent +read):\n%s", d)
	}
}

// TestEventsManyKeys: past the column cap, the rarest keys go to
// other_attributes and still read back.
func TestEventsManyKeys(t *testing.T) {
	db := openDB(t, t.TempDir(), testOptions())
	defer db.Close()
	ctx := context.Background()
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC).UnixNano()
	evs := genEvents(3, maxEventAttrColumns+50, t0)
	for i := range evs {
		// A key of its own per event: more keys than columns.
		evs[i].Attrs = append(evs[i].Attrs, events.Attr{Key: fmt.Sprintf("span.k%05d", i), Value: events.Int(int64(i))})
		evs[i].Normalize()
	}
	want := slices.Clone(evs)
	sortEvents(want)
	if err := db.AppendEvents(ctx, "", evs); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	m := db.tenant("").blocks[0].meta.Events
	if len(m.Columns) != maxEventAttrColumns || m.Other == 0 {
		t.Fatalf("%d columns, %d other values", len(m.Columns), m.Other)
	}
	if d := cmp.Diff(want, selectAll(t, db, "", t0, t0+int64(time.Hour))); d != "" {
		t.Fatalf("(-sent +read):\n%s", d)
	}
	// A key asked by name that lives in other_attributes.
	key := "span.k00007"
	found := 0
	err := db.SelectEvents(ctx, "", EventQuery{Columns: events.Columns{Attrs: []string{key}}, Start: t0, End: t0 + int64(time.Hour)},
		func(b *events.Batch) error {
			if c := b.Attrs[key]; c != nil {
				for i := range b.Len {
					if v := c.Value(i); v.Type == events.TypeInt && v.Int() == 7 {
						found++
					}
				}
			}
			return nil
		})
	if err != nil || found != 1 {
		t.Fatalf("found %s %d times, %v", key, found, err)
	}
}

// TestEventsDamagedBlock: a damaged events.parquet fails its block at
// Open, which quarantines it and starts.
func TestEventsDamagedBlock(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir, testOptions())
	ctx := context.Background()
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC).UnixNano()
	if err := db.AppendEvents(ctx, "", genEvents(4, 500, t0)); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	b := db.tenant("").blocks[0]
	db.Close()
	path := filepath.Join(dir, "tenants", "%", "blocks", b.meta.ID, eventsFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(raw) / 3; i < len(raw)/2; i++ {
		raw[i] ^= 0x5a
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir, nil, testOptions())
	if err != nil {
		t.Fatalf("Open with a damaged events file: %v", err)
	}
	defer db.Close()
	if got := selectAll(t, db, "", t0, t0+int64(time.Hour)); len(got) != 0 {
		t.Errorf("read %d events of a damaged block", len(got))
	}
}

// checkTrace looks up a few traces of want by ID, and one that is not
// there.
func checkTrace(t *testing.T, db *DB, want []events.Event, t0 int64) {
	t.Helper()
	for _, k := range []int{0, 1000, 2999} {
		id := want[k].TraceID
		var exp []events.Event
		for _, e := range want {
			if e.TraceID == id {
				exp = append(exp, e)
			}
		}
		sortEvents(exp)
		got, err := db.Trace(context.Background(), "team-a", id, t0, t0+int64(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		sortEvents(got)
		if len(exp) < 1 || !cmp.Equal(exp, got) {
			t.Fatalf("trace %s: got %d events, want %d:\n%s", id, len(got), len(exp), cmp.Diff(exp, got))
		}
	}
	got, err := db.Trace(context.Background(), "team-a", events.TraceID{1, 2, 3}, t0, t0+int64(time.Hour))
	if err != nil || len(got) != 0 {
		t.Fatalf("absent trace: %d events, %v", len(got), err)
	}
}

// TestEventsBehind: a tenant whose head reaches twice the limit, because
// nothing cuts it, is refused with ErrBehind (and ErrUnavailable) until a
// cut empties it; another tenant still writes.
func TestEventsBehind(t *testing.T) {
	opts := testOptions()
	opts.MaxHeadBytes = 1 << 20
	db := openDB(t, t.TempDir(), opts) // no Run: nothing cuts on its own
	defer db.Close()
	ctx := context.Background()
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC).UnixNano()
	var err error
	appended := 0
	for i := 0; i < 1000 && err == nil; i++ {
		if err = db.AppendEvents(ctx, "busy", genEvents(uint64(i), 100, t0)); err == nil {
			appended += 100
		}
	}
	if !errors.Is(err, ErrBehind) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("after %d events: %v, want ErrBehind and ErrUnavailable", appended, err)
	}
	if h := db.tenant("busy").head.memBytes(); h > 2*opts.MaxHeadBytes+(1<<20) {
		t.Errorf("head holds %d bytes, past twice the limit of %d by more than a batch", h, opts.MaxHeadBytes)
	}
	if got := len(selectAll(t, db, "busy", t0, t0+int64(time.Hour))); got != appended {
		t.Errorf("%d events stored, %d acknowledged", got, appended)
	}
	if err := db.AppendEvents(ctx, "idle", genEvents(1, 10, t0)); err != nil {
		t.Errorf("another tenant: %v", err)
	}
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.AppendEvents(ctx, "busy", genEvents(7, 10, t0)); err != nil {
		t.Errorf("after the cut: %v", err)
	}
	if db.Stats().Behind == 0 {
		t.Error("refusals not counted")
	}
}

// TestEventsConcurrent appends, selects, looks traces up and cuts at once;
// under -race it checks that a query's view of the head shares nothing
// an append changes.
func TestEventsConcurrent(t *testing.T) {
	db := openDB(t, t.TempDir(), testOptions())
	defer db.Close()
	ctx := context.Background()
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC).UnixNano()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for i := range 40 {
			if err := db.AppendEvents(ctx, "t", genEvents(uint64(i), 200, t0)); err != nil {
				t.Error(err)
				return
			}
			if i%10 == 9 {
				if err := db.Flush(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				n := 0
				err := db.SelectEvents(ctx, "t", EventQuery{Columns: allEvents, Start: t0, End: t0 + int64(time.Hour)}, func(b *events.Batch) error {
					for i := range b.Len {
						if e := b.Event(i); e.Service == "" || len(e.Attrs) < 3 {
							t.Errorf("event %d read half-written: %+v", i, e)
						}
					}
					n += b.Len
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := db.Trace(ctx, "t", events.TraceID{1}, t0, t0+int64(time.Hour)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := len(selectAll(t, db, "t", t0, t0+int64(time.Hour))); got != 40*200 {
		t.Errorf("%d events, want %d", got, 40*200)
	}
}

// TestEventsCutFreesHead checks that once a head is written into a block,
// nothing keeps it or its strings in memory: not the tenant's list of
// frozen heads, not the block's meta (which once pointed into the
// writer that held the last batch's values), so that a server ingesting
// for hours holds one head's worth of events, not every block's.
func TestEventsCutFreesHead(t *testing.T) {
	db := openDB(t, t.TempDir(), testOptions())
	defer db.Close()
	ctx := context.Background()
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC).UnixNano()
	var freed atomic.Int64
	var want int64
	for round := range 3 {
		for i := range 20 {
			if err := db.AppendEvents(ctx, "t", genEvents(uint64(round*100+i), 500, t0)); err != nil {
				t.Fatal(err)
			}
		}
		tn := db.tenant("t")
		tn.mu.RLock()
		h := tn.head
		runtime.AddCleanup(h, func(*atomic.Int64) { freed.Add(1) }, &freed)
		want++
		for _, c := range h.ev.arena {
			runtime.AddCleanup(&c[:1][0], func(*atomic.Int64) { freed.Add(1) }, &freed)
			want++
		}
		tn.mu.RUnlock()
		h = nil
		if err := db.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 20 && freed.Load() < want; i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // cleanups run in their own goroutine
	}
	if got := freed.Load(); got != want {
		t.Errorf("%d of %d heads and arena chunks freed after their blocks were written", got, want)
	}
}

// TestCutsDuringCompaction checks that heads are cut while a compaction
// runs: a compaction of a day of blocks takes minutes, and a head that
// waited for it would grow until writes were refused as behind.
func TestCutsDuringCompaction(t *testing.T) {
	opts := testOptions()
	opts.MaxHeadBytes = 1 << 20
	opts.CheckInterval = 10 * time.Millisecond
	db := openDB(t, t.TempDir(), opts)
	defer db.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- db.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	db.compactMu.Lock() // a compaction in progress
	defer db.compactMu.Unlock()
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC).UnixNano()
	for i := range 40 {
		if err := db.AppendEvents(ctx, "t", genEvents(uint64(i), 100, t0)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for db.Stats().Blocks == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no head cut in 10 s while a compaction held its lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEventsPick checks reads in two steps against whole reads: the rows
// a pick keeps, from the head and from a block of several row groups and
// pages, with a time range that cuts groups, come back with every column
// and nothing else.
func TestEventsPick(t *testing.T) {
	db := openDB(t, t.TempDir(), testOptions())
	defer db.Close()
	ctx := context.Background()
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC).UnixNano()
	for i := range 15 {
		if err := db.AppendEvents(ctx, "t", genEvents(uint64(i), 10_000, t0)); err != nil {
			t.Fatal(err)
		}
	}
	picks := map[string]func(id events.SpanID) bool{
		"none":   func(events.SpanID) bool { return false },
		"sparse": func(id events.SpanID) bool { return id[0] == 7 },
		"dense":  func(id events.SpanID) bool { return id[0]%2 == 0 },
		"all":    func(events.SpanID) bool { return true },
	}
	start, end := t0+int64(10*time.Second), t0+int64(50*time.Second)
	check := func(where string) {
		all := selectAll(t, db, "t", start, end)
		for name, want := range picks {
			var got []events.Event
			// The first span of each pick, in order, and of each batch:
			// batches come in the order of their picks.
			var pickedFirst, gotFirst []events.SpanID
			q := EventQuery{Columns: events.Columns{Intrinsics: events.ColSpanID}, Start: start, End: end,
				Then: allEvents,
				Pick: func(b *events.Batch) []int {
					var rows []int
					for i := range b.Len {
						if want(b.SpanID[i]) {
							rows = append(rows, i)
						}
					}
					if len(rows) > 0 {
						pickedFirst = append(pickedFirst, b.SpanID[rows[0]])
					}
					return rows
				}}
			err := db.SelectEvents(ctx, "t", q, func(b *events.Batch) error {
				gotFirst = append(gotFirst, b.SpanID[0])
				for i := range b.Len {
					got = append(got, b.Event(i))
				}
				return nil
			})
			if !slices.Equal(pickedFirst, gotFirst) {
				t.Errorf("%s, %s: batches do not come in the order of their picks", where, name)
			}
			if err != nil {
				t.Fatalf("%s, %s: %v", where, name, err)
			}
			sortEvents(got)
			wanted := slices.DeleteFunc(slices.Clone(all), func(e events.Event) bool { return !want(e.SpanID) })
			if len(got) != len(wanted) {
				t.Errorf("%s, %s: %d events, want %d", where, name, len(got), len(wanted))
				continue
			}
			for i := range got {
				if !reflect.DeepEqual(got[i], wanted[i]) {
					t.Errorf("%s, %s: event %d is\n%+v\nwant\n%+v", where, name, i, got[i], wanted[i])
					break
				}
			}
		}
	}
	check("head")
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	check("block")
}

// TestEventsLongValues writes events whose values are long (a stack trace
// in an attribute, a status message, a span event): a column page's header
// repeats its smallest and largest value, so its header outgrows any small
// window. The block must be written, opened and read back whole.
func TestEventsLongValues(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir, testOptions())
	ctx := context.Background()
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC).UnixNano()
	want := genEvents(7, 50, t0)
	long := strings.Repeat("goroutine 1 [running]:\nmain.main()\n\t/src/main.go:12 +0x1d\n", 200) // 11 KB
	for i := range want {
		e := &want[i]
		e.Attrs = append(e.Attrs, events.Attr{Key: "span.exception.stacktrace", Value: events.String(fmt.Sprint(i, long))})
		e.StatusMessage = fmt.Sprint(long, i)
		e.SpanEvents = append(e.SpanEvents, events.SpanEvent{Time: e.Start, Name: "exception",
			Attrs: []events.Attr{{Key: "exception.message", Value: events.String(long)}}})
	}
	if err := db.AppendEvents(ctx, "team-a", slices.Clone(want)); err != nil {
		t.Fatal(err)
	}
	sortEvents(want)
	if err := db.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	db.Close()
	db = openDB(t, dir, testOptions())
	defer db.Close()
	if st := db.Stats(); st.Blocks != 1 || st.Quarantined != 0 {
		t.Fatalf("after reopen: %d blocks, %d quarantined; want the block open", st.Blocks, st.Quarantined)
	}
	if d := cmp.Diff(want, selectAll(t, db, "team-a", t0, t0+int64(time.Hour))); d != "" {
		t.Fatalf("from the block (-sent +read):\n%s", d)
	}
}
