package storage

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hearth-profiler/hearth/internal/labels"
)

var testTenants = []string{"anonymous", "team.a", "ünïcode/x"}

// loadTestData appends profiles at t0 + i*10s for i in [from, to): per
// tenant two CPU series with span labels, a cumulative allocation series
// and, with real, a series of real corpus profiles.
func loadTestData(t testing.TB, db *DB, from, to int, real [][]byte) {
	t.Helper()
	for i := from; i < to; i++ {
		ts := t0 + int64(i)*10*sec
		for ti, tenant := range testTenants {
			for svc := range 2 {
				p := synthProfile(i+svc+ti, true)
				appendPayload(t, db, tenant, testPayload{
					Labels: map[string]string{"service_name": "svc" + string(rune('1'+svc)), "region": "eu"},
					Types:  []string{"", cpuType}, Time: ts, Profile: encodeProfile(t, p),
				})
			}
			// Cumulative: the values only grow, so stored deltas are the
			// growth since the previous profile.
			p := synthProfile(0, false)
			for k, s := range p.Sample {
				s.Value[1] = int64(1000*(i+1)*(k+1)) + int64(i*i)
			}
			appendPayload(t, db, tenant, testPayload{
				Labels: map[string]string{"service_name": "alloc"},
				Types:  []string{"", allocType}, Cumulative: []bool{false, true}, Time: ts, Profile: encodeProfile(t, p),
			})
			if real != nil && ti == 0 {
				appendPayload(t, db, tenant, testPayload{
					Labels: map[string]string{"service_name": "real"},
					Types:  []string{"", cpuType}, Time: ts, Profile: real[i%len(real)],
				})
			}
		}
	}
}

func testQueries(from, to int) []querySpec {
	all := func(name string, ms ...*labels.Matcher) querySpec {
		return querySpec{name: name, start: t0 - sec, end: t0 + int64(to)*10*sec + sec, matchers: ms}
	}
	mid := t0 + int64(from+to)/2*10*sec
	qs := []querySpec{
		all("all"),
		all("svc1", labels.MustNewMatcher(labels.MatchEqual, "service_name", "svc1")),
		all("cpu", labels.MustNewMatcher(labels.MatchEqual, labels.ProfileType, cpuType)),
		all("alloc", labels.MustNewMatcher(labels.MatchEqual, labels.ProfileType, allocType)),
		all("span", labels.MustNewMatcher(labels.MatchEqual, "span_name", "op1")),
		all("span-re", labels.MustNewMatcher(labels.MatchRegexp, "span_id", "00000000000000(64|65)"), labels.MustNewMatcher(labels.MatchNotEqual, "service_name", "svc2")),
		all("none", labels.MustNewMatcher(labels.MatchEqual, "service_name", "nope")),
		{name: "first-half", start: t0 + int64(from)*10*sec, end: mid},
		{name: "second-half", start: mid, end: t0 + int64(to)*10*sec},
	}
	k := all("keep")
	k.keep = keepFunc("main.encode")
	qs = append(qs, k)
	k = all("keep-span", labels.MustNewMatcher(labels.MatchEqual, "span_name", "op1"))
	k.keep = keepFunc("main.work")
	qs = append(qs, k)
	// A predicate over requests, as a span filter is, and the matcher
	// that selects the same samples.
	k = all("spans-100")
	k.spans = func(r SpanRef) bool { return r.Span == 100 }
	return append(qs, k, all("match-100", labels.MustNewMatcher(labels.MatchEqual, "span_id", "0000000000000064")))
}

func collectAll(t testing.TB, db *DB, qs []querySpec) map[string]map[string]answers {
	out := map[string]map[string]answers{}
	for _, tenant := range testTenants {
		out[tenant] = collect(t, db, tenant, qs)
	}
	return out
}

func TestBlockAnswersEqualHead(t *testing.T) {
	real := corpus(t)
	dir := t.TempDir()
	db := openDB(t, dir, testOptions())
	loadTestData(t, db, 0, 30, real)
	qs := testQueries(0, 30)
	want := collectAll(t, db, qs)
	if len(want["anonymous"]["all"].Stacks) == 0 || len(want["anonymous"]["span"].Stacks) == 0 {
		t.Fatalf("test data selects nothing: %+v", want["anonymous"]["span"])
	}
	// The samples and totals agree; names and values list what the
	// matchers allow, which a predicate over samples does not narrow.
	if s, m := want["anonymous"]["spans-100"], want["anonymous"]["match-100"]; len(s.Stacks) == 0 ||
		!cmp.Equal(s.Stacks, m.Stacks) || !cmp.Equal(s.Series, m.Series) {
		t.Fatalf("a span predicate and the matcher it stands for select different samples:\n%s%s",
			cmp.Diff(m.Stacks, s.Stacks), cmp.Diff(m.Series, s.Series))
	}
	if err := db.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	for _, tenant := range testTenants {
		tn := db.lookupTenant(tenant)
		if len(tn.blocks) != 1 || len(tn.head.all) != 0 || len(tn.frozen) != 0 {
			t.Fatalf("tenant %s after Flush: %d blocks, %d head series, %d frozen; want 1, 0, 0", tenant, len(tn.blocks), len(tn.head.all), len(tn.frozen))
		}
	}
	got := collectAll(t, db, qs)
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("answers from blocks differ from the head (-head +block):\n%s", d)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, dir, testOptions())
	defer db.Close()
	got = collectAll(t, db, qs)
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("answers after reopen differ (-head +reopened):\n%s", d)
	}
	segs, _ := db.wal.Segments()
	if len(segs) > 2 {
		t.Errorf("wal segments after flush and reopen: %v; want the log truncated", segs)
	}
}

// TestHeadPlusBlocks queries data spread over blocks, a head and the
// overlap of both, with the same series in several sources.
func TestHeadPlusBlocks(t *testing.T) {
	dir := t.TempDir()
	ref := openDB(t, t.TempDir(), testOptions())
	defer ref.Close()
	loadTestData(t, ref, 0, 40, nil)
	qs := testQueries(0, 40)
	want := collectAll(t, ref, qs)

	db := openDB(t, dir, testOptions())
	defer db.Close()
	loadTestData(t, db, 0, 10, nil)
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	loadTestData(t, db, 10, 25, nil)
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	loadTestData(t, db, 25, 40, nil)
	got := collectAll(t, db, qs)
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("answers over blocks and head differ from one head (-one head +blocks):\n%s", d)
	}
}

func TestTenantDirNames(t *testing.T) {
	for _, id := range []string{"", "anonymous", ".", "..", "a.b", "ünï/x", "%41", "a b"} {
		name := tenantDirName(id)
		if name == "." || name == ".." || filepath.Base(name) != name {
			t.Errorf("tenantDirName(%q) = %q: not one safe path element", id, name)
		}
		back, err := parseTenantDirName(name)
		if err != nil || back != id {
			t.Errorf("parseTenantDirName(%q) = %q, %v; want %q", name, back, err, id)
		}
	}
	if _, err := parseTenantDirName("a%4"); err == nil {
		t.Error("parseTenantDirName(a%4): want an error")
	}
}

func TestBlockIDs(t *testing.T) {
	var g idGenerator
	now := timeAt(t0)
	prev := ""
	for i := range 1000 {
		id := g.next(now)
		if id <= prev {
			t.Fatalf("id %d: %s not after %s", i, id, prev)
		}
		ts, err := parseID(id)
		if err != nil || !ts.Equal(now.Truncate(1e6)) {
			t.Fatalf("parseID(%s) = %v, %v; want %v", id, ts, err, now)
		}
		prev = id
	}
	for _, bad := range []string{"", "01ARZ3NDEKTSV4RRFFQ69G5FA", "81ARZ3NDEKTSV4RRFFQ69G5FAV", "01ARZ3NDEKTSV4RRFFQ69G5FAU"} {
		if _, err := parseID(bad); err == nil {
			t.Errorf("parseID(%q): want an error", bad)
		}
	}
}
