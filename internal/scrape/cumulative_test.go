package scrape

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gpprof "github.com/google/pprof/profile"

	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/profile"
	"github.com/hearth-profiler/hearth/internal/profiletest"
	"github.com/hearth-profiler/hearth/internal/query"
	"github.com/hearth-profiler/hearth/internal/storage"
)

func storageParams(start, end time.Time, ms []*labels.Matcher) storage.SelectParams {
	return storage.SelectParams{Start: start.UnixNano(), End: end.UnixNano(), Matchers: ms}
}

// contentionProfile builds a Go contention profile (as /debug/pprof/mutex
// and /debug/pprof/block serve) whose stacks main;NAME hold the given
// counts since process start, each contention having waited 1000 ns.
func contentionProfile(counts map[string]int64) *gpprof.Profile {
	p := &gpprof.Profile{
		SampleType: []*gpprof.ValueType{{Type: "contentions", Unit: "count"}, {Type: "delay", Unit: "nanoseconds"}},
		PeriodType: &gpprof.ValueType{Type: "contentions", Unit: "count"},
		Period:     1,
	}
	mainFn := &gpprof.Function{ID: 1, Name: "main.main"}
	mainLoc := &gpprof.Location{ID: 1, Line: []gpprof.Line{{Function: mainFn}}}
	p.Function = append(p.Function, mainFn)
	p.Location = append(p.Location, mainLoc)
	for _, name := range slices.Sorted(maps.Keys(counts)) {
		fn := &gpprof.Function{ID: uint64(len(p.Function) + 1), Name: name}
		loc := &gpprof.Location{ID: uint64(len(p.Location) + 1), Line: []gpprof.Line{{Function: fn}}}
		p.Function = append(p.Function, fn)
		p.Location = append(p.Location, loc)
		p.Sample = append(p.Sample, &gpprof.Sample{Location: []*gpprof.Location{loc, mainLoc}, Value: []int64{counts[name], counts[name] * 1000}})
	}
	return p
}

// sequenceHandler serves the i-th profile to the i-th request and 503
// once they run out, so that the test knows exactly what was scraped.
func sequenceHandler(t *testing.T, seq []map[string]int64) http.HandlerFunc {
	var mu sync.Mutex
	next := 0
	bodies := make([][]byte, len(seq))
	for i, counts := range seq {
		bodies[i] = encodeProfile(t, contentionProfile(counts))
	}
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		i := next
		next++
		mu.Unlock()
		if i >= len(bodies) {
			http.Error(w, "sequence over", http.StatusServiceUnavailable)
			return
		}
		w.Write(bodies[i])
	}
}

// expectedDeltas is what storage should keep of a cumulative sequence, by
// the rule it documents: the first profile is only the baseline; after it,
// each stack's growth (stacks that did not grow are left out); a total
// below the last one means the process restarted, and the profile is kept
// whole as the new baseline.
func expectedDeltas(seq []map[string]int64) []map[string]int64 {
	var out []map[string]int64
	total := func(m map[string]int64) (s int64) {
		for _, v := range m {
			s += v
		}
		return s
	}
	for i := 1; i < len(seq); i++ {
		prev, cur := seq[i-1], seq[i]
		d := map[string]int64{}
		if total(cur) < total(prev) {
			maps.Copy(d, cur)
		} else {
			for k, v := range cur {
				if v > prev[k] {
					d[k] = v - prev[k]
				}
			}
		}
		out = append(out, d)
	}
	return out
}

// TestCumulativeContention scrapes mutex and block endpoints whose counts
// grow, fall (the target restarted) and grow again, and checks that what is
// stored is the deltas: nothing for the first scrape, the fall as a new
// baseline, nothing negative.
func TestCumulativeContention(t *testing.T) {
	seq := []map[string]int64{
		{"main.lockA": 10, "main.lockB": 5},
		{"main.lockA": 15, "main.lockB": 5},
		{"main.lockA": 30, "main.lockB": 9},
		{"main.lockA": 2, "main.lockB": 1}, // restart
		{"main.lockA": 6, "main.lockB": 1},
		{"main.lockA": 6, "main.lockB": 4, "main.lockC": 3},
	}
	ft := newFakeTarget(t, map[string]http.HandlerFunc{
		"/debug/pprof/mutex": sequenceHandler(t, seq),
		"/debug/pprof/block": sequenceHandler(t, seq),
	})
	st := profiletest.OpenStore(t)
	start := time.Now()
	m := startManager(t, st.Ing, fmt.Sprintf(`
scrape_configs:
  - job_name: locks
    scrape_interval: 100ms
    static_configs: [{targets: [%q]}]
    profiling_config: %s
`, ft.addr(), onlyEndpoints("mutex", "block")), Options{})
	waitFor(t, 20*time.Second, "the whole sequence to be stored", func() bool {
		return stored(m, ft.addr(), "mutex") == uint64(len(seq)) && stored(m, ft.addr(), "block") == uint64(len(seq))
	})
	m.Stop()

	want := expectedDeltas(seq)
	ctx := context.Background()
	end := time.Now().Add(time.Second)
	eng := query.NewEngine(st.DB)
	for _, kind := range []string{"mutex", "block"} {
		for _, sampleType := range []string{"contentions", "delay"} {
			typ, err := profile.ParseType(kind + "_" + sampleType)
			if err != nil {
				t.Fatal(err)
			}
			scale := int64(1)
			if sampleType == "delay" {
				scale = 1000
			}
			ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, labels.ProfileType, typ.String())}
			sps, err := st.DB.SelectSeries(ctx, "anonymous", storageParams(start, end, ms))
			if err != nil {
				t.Fatal(err)
			}
			if len(sps) != 1 {
				t.Fatalf("%s: %d series; want 1", typ, len(sps))
			}
			points := sps[0].Points
			if len(points) != len(want) {
				t.Fatalf("%s: %d profiles stored; want %d (the first of %d scrapes is only the baseline)", typ, len(points), len(want), len(seq))
			}
			for i, p := range points {
				var total int64
				for _, v := range want[i] {
					total += v * scale
				}
				if p.V != total {
					t.Errorf("%s: profile %d total = %d; want %d (deltas %v)", typ, i+1, p.V, total, want[i])
				}
				// Per stack, from the stored profile alone.
				top, err := eng.Top(ctx, query.Request{
					Tenant: "anonymous", Query: typ.String() + `{job="locks"}`,
					Start: time.Unix(0, p.T), End: time.Unix(0, p.T+1),
				}, "name", 0)
				if err != nil {
					t.Fatal(err)
				}
				got := map[string]int64{}
				for _, e := range top.Entries {
					if e.Self < 0 {
						t.Errorf("%s: profile %d: %s is negative: %d", typ, i+1, e.Name, e.Self)
					}
					if strings.HasPrefix(e.Name, "main.lock") && e.Self != 0 {
						got[e.Name] = e.Self / scale
					}
				}
				if !maps.Equal(got, want[i]) {
					t.Errorf("%s: profile %d by stack = %v; want %v", typ, i+1, got, want[i])
				}
			}
		}
	}
}
