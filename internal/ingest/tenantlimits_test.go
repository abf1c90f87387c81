package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	gpprof "github.com/google/pprof/profile"

	"github.com/hearth-profiler/hearth/internal/limits"
	"github.com/hearth-profiler/hearth/internal/storage"
)

func openIngester(t *testing.T, dir string, tab limits.Table) (*Ingester, *limits.Refusals, *storage.DB) {
	t.Helper()
	db, err := storage.Open(dir, nil, storage.Options{Decode: Replay})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ig := New(db, ProfileLimits{MaxDecompressedBytes: DefaultMaxDecompressedBytes}, nil)
	o := limits.NewOverrides(limits.Limits{})
	o.Set(tab)
	r := &limits.Refusals{}
	ig.UseLimits(o, r)
	return ig, r, db
}

func folded(app string, stacks int) *Request {
	var b strings.Builder
	for i := range stacks {
		fmt.Fprintf(&b, "main;f%d 1\n", i)
	}
	return &Request{Name: app + ".cpu", Format: "folded", From: time.Unix(1700000000, 0).UnixNano(), Profile: []byte(b.String())}
}

func services(t *testing.T, db *storage.DB, tenant string) string {
	t.Helper()
	vs, err := db.LabelValues(context.Background(), tenant, "service_name", 0, 1<<62, nil)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(vs, ",")
}

// TestTenantProfileLimits: each tenant's profile limits are its own, and a
// refusal by one is counted under the tenant and the limit's name.
func TestTenantProfileLimits(t *testing.T) {
	def := limits.Defaults()
	small := def
	small.MaxSamples = 3
	ig, refusals, _ := openIngester(t, t.TempDir(), limits.Table{Defaults: def, Tenants: map[string]limits.Limits{"small": small}})
	err := ig.Ingest(context.Background(), "small", folded("app", 5))
	ie, ok := errors.AsType[*InputError](err)
	if !ok || ie.Reason != ReasonTooLarge || ie.Limit != limits.MaxSamples || !strings.Contains(err.Error(), "max_samples, --limits.max-samples") {
		t.Fatalf("tenant small: %v; want too large by max_samples, naming it", err)
	}
	if err := ig.Ingest(context.Background(), "other", folded("app", 5)); err != nil {
		t.Fatalf("tenant other, under the defaults: %v", err)
	}
	if n := refusals.Count("small", limits.MaxSamples); n != 1 {
		t.Errorf("refusals of small by max_samples = %d, want 1", n)
	}
}

// TestIngestSeriesLimit: past the tenant's series limit a profile that
// would add a series is refused as series_limit, in Ingest and per profile
// in IngestBatch, while profiles of the series it holds and other tenants'
// are stored; replay finds what was stored and nothing else.
func TestIngestSeriesLimit(t *testing.T) {
	dir := t.TempDir()
	l := limits.Defaults()
	l.MaxSeriesPerTenant = 2 // a folded CPU profile is one series
	ig, refusals, db := openIngester(t, dir, limits.Table{Defaults: l})
	ctx := context.Background()
	for _, app := range []string{"a", "b"} {
		if err := ig.Ingest(ctx, "t", folded(app, 2)); err != nil {
			t.Fatalf("%s: %v", app, err)
		}
	}
	err := ig.Ingest(ctx, "t", folded("c", 2))
	ie, ok := errors.AsType[*InputError](err)
	if !ok || ie.Reason != ReasonSeriesLimit || !strings.Contains(err.Error(), "holds 2 series, and this profile would add 1, past the limit of 2 (max_series_per_tenant, --limits.max-series-per-tenant)") {
		t.Fatalf("c: %v; want a series_limit refusal naming the limit", err)
	}
	if err := ig.Ingest(ctx, "t", folded("a", 3)); err != nil {
		t.Fatalf("a again, at the limit: %v", err)
	}
	refused, err := ig.IngestBatch(ctx, "t", []*Request{folded("d", 1), folded("b", 1), folded("e", 1)})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false, true} {
		_, limited := errors.AsType[*InputError](refused[i])
		if limited != want {
			t.Errorf("batch profile %d: refused %v, want refused %v", i, refused[i], want)
		}
	}
	if err := ig.Ingest(ctx, "u", folded("c", 2)); err != nil {
		t.Fatalf("another tenant: %v", err)
	}
	if got := services(t, db, "t"); got != "a,b" {
		t.Errorf("services = %s, want a,b", got)
	}
	if n := refusals.Count("t", limits.MaxSeriesPerTenant); n != 3 {
		t.Errorf("series refusals = %d, want 3", n)
	}
	if n := ig.Stats().Refused["series_limit"]; n != 3 {
		t.Errorf("Stats().Refused[series_limit] = %d, want 3", n)
	}
	db.Close()
	db, err = storage.Open(dir, nil, storage.Options{Decode: Replay})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := services(t, db, "t"); got != "a,b" {
		t.Errorf("after replay, services = %s, want a,b", got)
	}
}

// TestSampleLabelLimits: per-sample labels are held to the label name and
// value limits too, refused as too large naming the label; replay, with
// no limits, takes them.
func TestSampleLabelLimits(t *testing.T) {
	lim := DefaultProfileLimits()
	lim.MaxLabelNameLength, lim.MaxLabelValueLength = 12, 16 // service_name is 12 bytes
	pprofWith := func(str map[string][]string, num map[string][]int64) *Request {
		fn := &gpprof.Function{ID: 1, Name: "main"}
		loc := &gpprof.Location{ID: 1, Line: []gpprof.Line{{Function: fn}}}
		p := &gpprof.Profile{SampleType: []*gpprof.ValueType{{Type: "cpu", Unit: "nanoseconds"}}, Function: []*gpprof.Function{fn},
			Location: []*gpprof.Location{loc}, Sample: []*gpprof.Sample{{Location: []*gpprof.Location{loc}, Value: []int64{1}, Label: str, NumLabel: num}}}
		return &Request{Name: "app.cpu", Parsed: p}
	}
	for _, c := range []struct {
		name string
		r    *Request
		want string
	}{
		{"at the limits", pprofWith(map[string][]string{"span_name_12": {strings.Repeat("v", 16)}}, map[string][]int64{"thread_id_12": {1}}), ""},
		{"value over", pprofWith(map[string][]string{"span": {"short", strings.Repeat("v", 17)}}, nil),
			`sample label "span": a value of 17 bytes is over the limit of 16 (max_label_value_length, --limits.max-label-value-length)`},
		{"name over", pprofWith(map[string][]string{"span_name_xyz": {"x"}}, nil),
			`sample label name "span_name_xyz"...: 13 bytes is over the limit of 12 (max_label_name_length, --limits.max-label-name-length)`},
		{"numeric name over", pprofWith(nil, map[string][]int64{"thread_id_xyz": {7}}), `sample label name "thread_id_xyz"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := encodeParsed(c.r); err != nil {
				t.Fatal(err)
			}
			c.r.Parsed = nil // decode the bytes, as the log does
			_, err := Decode(c.r, lim, time.Unix(1700000000, 0))
			if c.want == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				return
			}
			ie, ok := errors.AsType[*InputError](err)
			if !ok || ie.Reason != ReasonTooLarge || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Decode: %v; want too large: %q", err, c.want)
			}
			if _, err := Decode(c.r, ProfileLimits{}, time.Unix(1700000000, 0)); err != nil {
				t.Errorf("with no limits (replay): %v", err)
			}
		})
	}
}

// TestAdmitBytes: a tenant's token bucket starts full, refuses a request
// it cannot pay with the time it needs (taking nothing), lets a request
// larger than the burst through only when full, and follows a change of
// limits; tenants have their own buckets.
func TestAdmitBytes(t *testing.T) {
	l := limits.Defaults()
	l.IngestRateBytes, l.IngestBurstBytes = 1000, 4000
	ig, refusals, _ := openIngester(t, t.TempDir(), limits.Table{Defaults: l})
	now := time.Unix(1700000000, 0)
	ig.now = func() time.Time { return now }

	if err := ig.AdmitBytes("t", 3000); err != nil {
		t.Fatalf("3000 of a full 4000: %v", err)
	}
	err := ig.AdmitBytes("t", 2000)
	rl, ok := errors.AsType[*RateLimitedError](err)
	if !ok || rl.RetryAfter != time.Second || rl.Bytes != 2000 || rl.Rate != 1000 || rl.Burst != 4000 {
		t.Fatalf("2000 of 1000 left: %v; want a refusal to retry in 1s", err)
	}
	if !strings.Contains(err.Error(), "ingest_rate_bytes, --limits.ingest-rate-bytes") {
		t.Errorf("refusal %q does not name the limit", err)
	}
	if err := ig.AdmitBytes("other", 4000); err != nil {
		t.Fatalf("another tenant: %v", err)
	}
	now = now.Add(time.Second)
	if err := ig.AdmitBytes("t", 2000); err != nil {
		t.Fatalf("after the wait it was told: %v", err)
	}
	// Larger than the burst: refused until the bucket is full, then let
	// through, emptying it.
	if err := ig.AdmitBytes("t", 10_000); err == nil {
		t.Fatal("10000 with an empty bucket: admitted")
	} else if rl, _ := errors.AsType[*RateLimitedError](err); rl.RetryAfter != 4*time.Second {
		t.Errorf("10000 with an empty bucket: retry after %s, want 4s (until it is full)", rl.RetryAfter)
	}
	now = now.Add(4 * time.Second)
	if err := ig.AdmitBytes("t", 10_000); err != nil {
		t.Fatalf("10000 with a full bucket: %v", err)
	}
	if err := ig.AdmitBytes("t", 1); err == nil {
		t.Fatal("1 byte after the bucket was emptied: admitted")
	}
	if n := refusals.Count("t", limits.IngestRateBytes); n != 3 {
		t.Errorf("refusals = %d, want 3", n)
	}
	// A reload that lifts the limit applies at once.
	l.IngestRateBytes = 0
	ig.tenants.Set(limits.Table{Defaults: l})
	if err := ig.AdmitBytes("t", 1<<30); err != nil {
		t.Fatalf("with no rate limit: %v", err)
	}
}
