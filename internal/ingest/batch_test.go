package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	gpprof "github.com/google/pprof/profile"

	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/profiletest"
	"github.com/hearth-profiler/hearth/internal/storage"
	"github.com/hearth-profiler/hearth/internal/testfiles"
)

func TestEncodeRequestsRoundTrip(t *testing.T) {
	rs := []*ingest.Request{
		{Name: "a.cpu{x=1}", Format: "pprof", From: 1, Until: 2, SampleRate: 100, Profile: []byte("p")},
		{Format: "pprof", From: -5, Profile: []byte{1, 2, 3}, PrevProfile: []byte{4},
			Labels: labels.FromStrings("service_name", "b", "job", "j"), NameKind: "alloc_space", Contention: ingest.ContentionBlock,
			SampleTypes: []string{"contentions", "delay"}, DropFirst: true, ProfileTime: true},
	}
	got, err := ingest.DecodeRequests(ingest.EncodeRequests(rs))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(rs, got, cmp.Comparer(labels.Labels.Equal), cmpopts.EquateEmpty()); d != "" {
		t.Fatalf("round trip (-want +got):\n%s", d)
	}
	// A plain request keeps the first format, which older logs hold.
	one, err := ingest.DecodeRequests(ingest.EncodeRequest(rs[0]))
	if err != nil || len(one) != 1 || one[0].Name != rs[0].Name {
		t.Fatalf("v1 round trip: %v %+v", err, one)
	}
	b := ingest.EncodeRequests(rs)
	for n := range len(b) - 1 {
		if _, err := ingest.DecodeRequests(b[:n]); err == nil {
			t.Fatalf("truncated to %d bytes: no error", n)
		}
	}
}

// seriesTotals sums each series' points, by its labels.
func seriesTotals(t *testing.T, db *storage.DB) map[string]int64 {
	t.Helper()
	sps, err := db.SelectSeries(context.Background(), "anonymous", storage.SelectParams{Start: 0, End: math.MaxInt64})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sp := range sps {
		for _, p := range sp.Points {
			out[sp.Labels.String()] += p.V
		}
	}
	return out
}

func TestIngestBatch(t *testing.T) {
	heapFile := ""
	for _, f := range testfiles.Pprof(t) {
		if bytes.HasSuffix([]byte(f), []byte("gobench.heap")) {
			heapFile = f
		}
	}
	data, err := os.ReadFile(heapFile)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := gpprof.ParseData(data)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := profiletest.OpenStoreIn(t, dir)
	t0 := time.Unix(1_700_000_000, 0)
	job := labels.FromStrings("service_name", "svc", "job", "scrape")
	rs := []*ingest.Request{
		// Only the in-use types, from a profile already parsed.
		{Parsed: parsed, Labels: job, From: t0.UnixNano(), SampleTypes: []string{"inuse_space"}},
		{Format: "pprof", Profile: []byte("not a profile"), Labels: job, From: t0.UnixNano()},
		{Format: "pprof", Profile: data, Labels: labels.FromStrings("job", "nameless"), From: t0.UnixNano()},
		// The first cumulative profile is only a baseline.
		{Format: "pprof", Profile: data, Labels: job, From: t0.UnixNano(), SampleTypes: []string{"alloc_space"}, DropFirst: true},
	}
	refused, err := s.Ing.IngestBatch(context.Background(), "anonymous", rs)
	if err != nil {
		t.Fatal(err)
	}
	if refused[0] != nil || refused[3] != nil || refused[1] == nil || refused[2] == nil {
		t.Fatalf("refused = %v; want only the 2nd and 3rd", refused)
	}
	// The parsed one counts with the bytes of its encoding for the log.
	st := s.Ing.Stats()
	if st.Stored != 2 || st.Refused[ingest.ReasonBadData.String()] != 2 || st.Failed != 0 || st.StoredBytes != uint64(len(rs[0].Profile)+len(data)) {
		t.Errorf("stats %+v: want 2 stored of %d bytes, 2 refused as bad data", st, len(rs[0].Profile)+len(data))
	}
	// A batch that storage cannot take counts as failed, its refusals
	// still as refused.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Ing.IngestBatch(ctx, "anonymous", rs[1:]); err == nil {
		t.Fatal("IngestBatch with an ended context stored")
	}
	if st := s.Ing.Stats(); st.Stored != 2 || st.Refused[ingest.ReasonBadData.String()] != 4 || st.Failed != 1 {
		t.Errorf("stats after a failed batch %+v: want 2 stored, 4 refused, 1 failed", st)
	}
	want := map[string]int64{}
	if parsed.SampleType[3].Type != "inuse_space" {
		t.Fatalf("sample type 3 of %s is %s", heapFile, parsed.SampleType[3].Type)
	}
	var inuse int64
	for _, smp := range parsed.Sample {
		inuse += smp.Value[3]
	}
	want[`{__profile_type__="memory:inuse_space:bytes:space:bytes", job="scrape", service_name="svc"}`] = inuse
	if got := seriesTotals(t, s.DB); !cmp.Equal(got, want) {
		t.Fatalf("series after batch:\n got %v\nwant %v", got, want)
	}
	// A later cumulative profile is a delta against the baseline: the
	// same profile again adds nothing.
	if err := s.Ing.Ingest(context.Background(), "anonymous", &ingest.Request{
		Format: "pprof", Profile: data, Labels: job, From: t0.Add(10 * time.Second).UnixNano(),
		SampleTypes: []string{"alloc_space"}, DropFirst: true,
	}); err != nil {
		t.Fatal(err)
	}
	want[`{__profile_type__="memory:alloc_space:bytes:space:bytes", job="scrape", service_name="svc"}`] = 0
	if got := seriesTotals(t, s.DB); !cmp.Equal(got, want) {
		t.Fatalf("series after second cumulative profile:\n got %v\nwant %v", got, want)
	}
	// Replay of the log rebuilds the same.
	s.DB.Close()
	s = profiletest.OpenStoreIn(t, dir)
	if got := seriesTotals(t, s.DB); !cmp.Equal(got, want) {
		t.Fatalf("series after replay:\n got %v\nwant %v", got, want)
	}
}

// TestProfileTime: with ProfileTime a pprof's own time is the profile's
// time, also after replay; without it, From is.
func TestProfileTime(t *testing.T) {
	data, err := os.ReadFile(testfiles.CorpusCPU(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	own := time.Unix(1_700_000_500, 0).UnixNano()
	from := time.Unix(1_700_000_000, 0).UnixNano()
	p, err := gpprof.ParseData(data)
	if err != nil {
		t.Fatal(err)
	}
	p.TimeNanos = own
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := profiletest.OpenStoreIn(t, dir)
	for _, svc := range []string{"own", "from"} {
		r := &ingest.Request{Format: "pprof", Profile: buf.Bytes(), From: from, Labels: labels.FromStrings("service_name", svc), ProfileTime: svc == "own"}
		if err := s.Ing.Ingest(context.Background(), "anonymous", r); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string) {
		sps, err := s.DB.SelectSeries(context.Background(), "anonymous", storage.SelectParams{Start: 0, End: math.MaxInt64})
		if err != nil {
			t.Fatal(err)
		}
		for _, sp := range sps {
			want := from
			if sp.Labels.Get("service_name") == "own" {
				want = own
			}
			if len(sp.Points) != 1 || sp.Points[0].T != want {
				t.Errorf("%s: %v at %v, want one point at %d", when, sp.Labels, sp.Points, want)
			}
		}
	}
	check("stored")
	s.DB.Close()
	s = profiletest.OpenStoreIn(t, dir)
	check("replayed")
}

// replayedTypes replays payload and describes each input by its labels,
// types and flags.
func replayedTypes(t *testing.T, payload []byte) string {
	t.Helper()
	ins, err := ingest.Replay(payload)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, in := range ins {
		fmt.Fprintf(&sb, "%s %v %v %v\n", in.Labels, in.Types, in.Cumulative, in.DropFirst)
	}
	return sb.String()
}

// TestReplayPayloadV2: testdata/payload-v2.bin was logged by Hearth before
// the request's kind was split into NameKind and Contention, from requests
// as push (block), scrape (mutex), JFR (a lock profile, and a CPU kind, each
// under a name whose kind says block_count) and a folded upload with a kind
// would log them; payload-v2.replayed is what that Hearth replayed from it.
// It must replay the same now, and so must the same requests logged as
// today's ways in make them.
func TestReplayPayloadV2(t *testing.T) {
	old, err := os.ReadFile("testdata/payload-v2.bin")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/payload-v2.replayed")
	if err != nil {
		t.Fatal(err)
	}
	if old[0] != 2 {
		t.Fatalf("fixture is version %d, want 2", old[0])
	}
	if got := replayedTypes(t, old); got != string(want) {
		t.Fatalf("v2 payload replays as\n%s\nwant\n%s", got, want)
	}
	rs, err := ingest.DecodeRequests(old)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, r := range rs {
		if r.Contention != ingest.ContentionUnknown {
			t.Errorf("v2 request %s decodes with contention %v, want none", r.Labels, r.Contention)
		}
		kinds = append(kinds, r.NameKind)
	}
	if d := cmp.Diff([]string{"block", "mutex", "mutex", "process_cpu", "alloc_space"}, kinds); d != "" {
		t.Fatalf("v2 kinds as NameKind (-want +got):\n%s", d)
	}
	if got := replayedTypes(t, ingest.EncodeRequests(rs)); got != string(want) {
		t.Fatalf("v2 requests logged again replay as\n%s\nwant\n%s", got, want)
	}
	// The requests as push, scrape and JFR make them now.
	rs[0].NameKind, rs[0].Contention = "", ingest.ContentionBlock
	rs[1].NameKind, rs[1].Contention = "", ingest.ContentionMutex
	rs[2].Contention = ingest.ContentionMutex
	now := ingest.EncodeRequests(rs)
	if now[0] != 3 {
		t.Fatalf("payload version %d, want 3", now[0])
	}
	if got := replayedTypes(t, now); got != string(want) {
		t.Fatalf("today's requests replay as\n%s\nwant\n%s", got, want)
	}
}

func TestDecodeRequestsUnknownContention(t *testing.T) {
	b := ingest.EncodeRequest(&ingest.Request{Format: "pprof", Profile: []byte("p"), Contention: 9})
	if _, err := ingest.DecodeRequests(b); err == nil || !strings.Contains(err.Error(), "contention 9") {
		t.Fatalf("err = %v, want one naming contention 9", err)
	}
}
