package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/hearth-profiler/hearth/internal/events"
	"github.com/hearth-profiler/hearth/internal/storage"
)

// TestEventsOpenInDuckDB writes a block of events through storage and
// queries its events.parquet with DuckDB: row count, the typed columns,
// a group by on an attribute column and a lookup by trace ID.
func TestEventsOpenInDuckDB(t *testing.T) {
	dir := t.TempDir()
	opts := storage.DefaultOptions()
	opts.Decode = func([]byte) ([]*storage.Input, error) { return nil, nil }
	db, err := storage.Open(dir, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	var evs []events.Event
	routes := []string{"/cart", "/checkout", "/search"}
	for i := range 3000 {
		e := events.Event{
			Start:    t0.Add(time.Duration(i) * time.Millisecond).UnixNano(),
			Duration: int64((i%100 + 1)) * int64(time.Millisecond),
			Service:  []string{"shop", "cart"}[i%2],
			Name:     "GET " + routes[i%3],
			Kind:     events.KindServer,
			Attrs: []events.Attr{
				{Key: "span.http.route", Value: events.String(routes[i%3])},
				{Key: "span.http.response.status_code", Value: events.Int(int64(200 + 300*(i%7/6)))},
				{Key: "span.user.id", Value: events.String(fmt.Sprintf("u-%d", i))},
				{Key: "span.ratio", Value: events.Float(float64(i) / 3000)},
			},
		}
		e.TraceID[15], e.TraceID[14] = byte(i), byte(i>>8)
		e.SpanID[7] = byte(i)
		if i%10 == 0 {
			e.Status, e.StatusMessage = events.StatusError, "card declined"
		}
		evs = append(evs, e)
	}
	ctx := context.Background()
	if err := db.AppendEvents(ctx, "team-a", evs); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "tenants", "team-a", "blocks", "*", "events.parquet"))
	if err != nil || len(files) != 1 {
		t.Fatalf("events files: %v, %v", files, err)
	}
	duck, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer duck.Close()
	q := func(query string, dest ...any) {
		t.Helper()
		query = fmt.Sprintf(query, "'"+files[0]+"'")
		if err := duck.QueryRow(query).Scan(dest...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	var n, errs int64
	q(`select count(*), count(*) filter (where status = 2) from read_parquet(%s)`, &n, &errs)
	if n != 3000 || errs != 300 {
		t.Errorf("DuckDB counts %d events, %d errors; want 3000, 300", n, errs)
	}
	var route string
	var p99 float64
	var calls int64
	q(`select "span.http.route", count(*), quantile_cont(duration_ns, 0.99)
	   from read_parquet(%s) group by 1 order by 1 limit 1`, &route, &calls, &p99)
	if route != "/cart" || calls != 1000 || p99 < 95e6 || p99 > 100e6 {
		t.Errorf("group by route: %s %d calls p99 %.0f ns", route, calls, p99)
	}
	var first int64
	var typ, service string
	q(`select epoch_ns(start_time), typeof(start_time), service from read_parquet(%s) order by start_time limit 1`, &first, &typ, &service)
	if first != t0.UnixNano() || typ != "TIMESTAMPTZ_NS" || service != "shop" {
		t.Errorf("first event at %d (%s) of %s, want %d (TIMESTAMPTZ_NS) of shop", first, typ, service, t0.UnixNano())
	}
	var status int64
	var msg sql.NullString
	q(`select "span.http.response.status_code", status_message from read_parquet(%s)
	   where trace_id = from_hex('00000000000000000000000000000a0a')`, &status, &msg)
	if status != 200 || !msg.Valid || msg.String != "card declined" {
		t.Errorf("trace 0a0a: status code %d, message %v", status, msg)
	}
}
