package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/hearth-profiler/hearth/bench/spans"
)

// spanInfo is what the test knows of a span from the workload itself.
type spanInfo struct {
	service, pod string
	root         string // the server span's ID
	trace        string
	route        string // of the server span
	start, end   int64
	server       bool
}

func testModel(t *testing.T) *model {
	t.Helper()
	corpus, err := loadCorpusStacks("../corpus")
	if err != nil {
		t.Fatal(err)
	}
	cfg := spans.DefaultConfig(12_000, time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC), 30*time.Second)
	cfg.BatchSpans = 500
	cfg.Services = []string{"devices", "tax", "reports"}
	w, err := spans.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &model{w: w, services: cfg.Services, target: "devices", route: "/api/v1/devices/{id}", minDur: 11 * time.Millisecond, seed: 1, corpus: corpus}
}

func makeProfiles(t *testing.T, m *model) (truth, []profileOut, [][]byte) {
	t.Helper()
	var outs []profileOut
	var bodies [][]byte
	g, err := newGenerator(m, func(p profileOut) error {
		var b bytes.Buffer
		if err := p.prof.Write(&b); err != nil {
			return err
		}
		outs = append(outs, p)
		bodies = append(bodies, b.Bytes())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := g.run(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	return tr, outs, bodies
}

// TestProfiles reads the profiles back as the server would, and checks
// that they join the workload's spans and that what the generator says
// it sent is what they hold.
func TestProfiles(t *testing.T) {
	m := testModel(t)
	tr, outs, bodies := makeProfiles(t, m)

	idx := map[string]spanInfo{}
	for i := range m.w.Batches() {
		td, _, _ := m.w.Traces(i)
		rss := td.ResourceSpans()
		for r := range rss.Len() {
			attrs := rss.At(r).Resource().Attributes()
			svc, pod := str(attrs, "service.name"), str(attrs, "k8s.pod.name")
			sss := rss.At(r).ScopeSpans()
			for s := range sss.Len() {
				sps := sss.At(s).Spans()
				for k := range sps.Len() {
					sp := sps.At(k)
					si := spanInfo{service: svc, pod: pod, trace: sp.TraceID().String(), start: int64(sp.StartTimestamp()), end: int64(sp.EndTimestamp()),
						server: sp.Kind() == ptrace.SpanKindServer, route: str(sp.Attributes(), "http.route")}
					if si.server {
						si.root = sp.SpanID().String()
					} else {
						si.root = sp.ParentSpanID().String()
					}
					idx[sp.SpanID().String()] = si
				}
			}
		}
	}

	windows := int(m.w.Config().Window / profileWindow)
	if want := len(m.services) * 6 * windows; len(outs) != want || tr.Profiles != int64(want) {
		t.Fatalf("%d profiles (truth %d), want %d: 6 pods of %d services, %d windows", len(outs), tr.Profiles, want, len(m.services), windows)
	}
	samples := map[string]int64{}
	var selected int64
	runTarget, runAll := map[string]runGroup{}, map[string]runGroup{}
	runSpans := map[string]int64{}
	start := m.w.Config().End.Add(-m.w.Config().Window).UnixNano()
	for i, body := range bodies {
		p, err := profile.ParseData(body)
		if err != nil {
			t.Fatalf("profile %d: %v", i, err)
		}
		if err := p.CheckValid(); err != nil {
			t.Fatalf("profile %d: %v", i, err)
		}
		out := outs[i]
		if p.Period != int64(samplePeriod) || p.TimeNanos != out.from*1e9 || (p.TimeNanos-start)%int64(profileWindow) != 0 {
			t.Fatalf("profile %d: period %d, time %d, from %d", i, p.Period, p.TimeNanos, out.from)
		}
		for _, s := range p.Sample {
			if s.Value[1] != s.Value[0]*int64(samplePeriod) {
				t.Fatalf("sample values %v", s.Value)
			}
			samples[out.service] += s.Value[0]
			id := s.Label["span_id"]
			if id == nil {
				continue
			}
			si, ok := idx[id[0]]
			if !ok {
				t.Fatalf("sample of span %s, which the workload does not have", id[0])
			}
			if si.service != out.service || si.pod != out.pod {
				t.Fatalf("sample of span %s of %s/%s in the profile of %s/%s", id[0], si.service, si.pod, out.service, out.pod)
			}
			if s.Label["local_root_span_id"][0] != si.root || s.Label["trace_id"][0] != si.trace || len(si.trace) != 32 {
				t.Fatalf("sample of span %s: labels %v, want root %s trace %s", id[0], s.Label, si.root, si.trace)
			}
			if si.end < p.TimeNanos || si.start >= p.TimeNanos+p.DurationNanos {
				t.Fatalf("sample of span %s (%d to %d) in the window from %d", id[0], si.start, si.end, p.TimeNanos)
			}
			root := idx[si.root]
			if root.service == m.target && root.route == m.route && root.end-root.start > int64(m.minDur) {
				selected += s.Value[0]
			}
			var names []string
			for _, l := range s.Location {
				for _, ln := range l.Line {
					names = append(names, ln.Function.Name)
				}
			}
			if slices.Contains(names, module(out.service)+"/"+knownFunction) {
				if !si.server {
					t.Fatalf("client span %s ran %s", id[0], knownFunction)
				}
				runSpans[id[0]] += s.Value[0]
			}
			if !strings.HasPrefix(names[len(names)-1], "net/http.") {
				t.Fatalf("stack of a request's sample rooted at %s", names[len(names)-1])
			}
		}
	}
	for id, n := range runSpans {
		si := idx[id]
		g := runAll[si.route]
		g.Count++
		g.CPUNs += n * int64(samplePeriod)
		runAll[si.route] = g
		if si.service == m.target {
			g := runTarget[si.route]
			g.Count++
			g.CPUNs += n * int64(samplePeriod)
			runTarget[si.route] = g
		}
	}
	for _, svc := range m.services {
		if samples[svc] != tr.Samples[svc] || samples[svc] == 0 {
			t.Errorf("%s: %d samples in the profiles, the generator says %d", svc, samples[svc], tr.Samples[svc])
		}
	}
	if selected != tr.SelectedSamples || selected == 0 {
		t.Errorf("%d samples of the selected spans, the generator says %d", selected, tr.SelectedSamples)
	}
	if !mapsEqual(runTarget, tr.RunTarget) || !mapsEqual(runAll, tr.RunAll) || len(runAll) <= len(runTarget) || len(runTarget) == 0 {
		t.Errorf("spans running the function: target %v, all %v; the generator says %v and %v", runTarget, runAll, tr.RunTarget, tr.RunAll)
	}
	var wantSel int64
	for _, si := range idx {
		if si.server && si.service == m.target && si.route == m.route && si.end-si.start > int64(m.minDur) {
			wantSel++
		}
	}
	if wantSel != tr.SelectedSpans || wantSel == 0 {
		t.Errorf("%d spans the filter selects, the generator says %d", wantSel, tr.SelectedSpans)
	}
	if tr.Late != 0 {
		t.Errorf("%d late samples", tr.Late)
	}

	// The same model makes the same bytes.
	_, _, again := makeProfiles(t, testModel(t))
	for i := range bodies {
		if !bytes.Equal(bodies[i], again[i]) {
			t.Fatalf("profile %d differs between two makings", i)
		}
	}
}

func mapsEqual(a, b map[string]runGroup) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestHandlerName(t *testing.T) {
	for in, want := range map[[2]string]string{
		{"PUT", "/api/v1/devices/{id}"}:        "m/internal/api.(*Server).putDevicesByID",
		{"GET", "/api/v1/pushes/{id}/events"}:  "m/internal/api.(*Server).getPushesByIDEvents",
		{"POST", "/api/v1/exemptions"}:         "m/internal/api.(*Server).postExemptions",
		{"DELETE", "/api/v1/dashboards/{id}/"}: "m/internal/api.(*Server).deleteDashboardsByID",
	} {
		if got := handlerName("m", in[0], in[1]); got != want {
			t.Errorf("handlerName(%q, %q) = %q, want %q", in[0], in[1], got, want)
		}
	}
}

func TestChecks(t *testing.T) {
	want := map[string]runGroup{"/a": {Count: 3, CPUNs: 50_000_000}, "/b": {Count: 9, CPUNs: 20_000_000}}
	check := runningCheck(want)
	good := `{"groups":[{"by":{"span.http.route":"/a"},"values":{"count":3,"sum(cpu)":50000000}},
		{"by":{"span.http.route":"/b"},"values":{"count":9,"sum(cpu)":20000000}}],"matched":12}`
	if msg, err := check([]byte(good)); err != nil || !strings.Contains(msg, "first /a") {
		t.Errorf("the right answer: %q, %v", msg, err)
	}
	for name, bad := range map[string]string{
		"wrong order": `{"groups":[{"by":{"span.http.route":"/b"},"values":{"count":9,"sum(cpu)":20000000}},
			{"by":{"span.http.route":"/a"},"values":{"count":3,"sum(cpu)":50000000}}],"matched":12}`,
		"a count off": `{"groups":[{"by":{"span.http.route":"/a"},"values":{"count":2,"sum(cpu)":50000000}},
			{"by":{"span.http.route":"/b"},"values":{"count":9,"sum(cpu)":20000000}}],"matched":11}`,
		"a route missing": `{"groups":[{"by":{"span.http.route":"/a"},"values":{"count":3,"sum(cpu)":50000000}}],"matched":3}`,
		"empty":           `{"groups":[],"matched":0}`,
	} {
		if _, err := check([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	fc := flameCheck(30_000_000, 7, true)
	if _, err := fc([]byte(`{"total":30000000,"spans":{"spans":7}}`)); err != nil {
		t.Errorf("the right flame graph: %v", err)
	}
	for _, bad := range []string{`{"total":30000000,"spans":{"spans":6}}`, `{"total":20000000,"spans":{"spans":7}}`, `{"total":30000000}`} {
		if _, err := fc([]byte(bad)); err == nil {
			t.Errorf("flame graph %s: accepted", bad)
		}
	}
	if _, err := flameCheck(0, 0, false)([]byte(`{"total":0}`)); err == nil {
		t.Error("an empty flame graph of nothing sent: accepted")
	}
}
