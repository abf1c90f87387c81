package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hearth-profiler/hearth/internal/agent/symbolize"
)

// TestCollector checks that the metrics say what Stats says: samples lost
// by reason (known reasons at 0 before any loss), unnamed frames by reason,
// and the symbolizer's cache when it tells of it.
func TestCollector(t *testing.T) {
	sampler := &fakeSampler{}
	sym := newFakeSymbolizer()
	sym.unnamed[0x2fff] = "no symbols"
	a, err := New(testConfig(t, "http://127.0.0.1:1", copyProc(t, "100")), sampler, sym, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(a.Collector()); err != nil {
		t.Fatal(err)
	}
	a.interval, a.start = 1, time.Now()

	lost := `
# HELP hearth_agent_samples_lost_total Samples the kernel sampler could not record, by reason (stack_collision, stack_error, count_map_full).
# TYPE hearth_agent_samples_lost_total counter
hearth_agent_samples_lost_total{reason="count_map_full"} 0
hearth_agent_samples_lost_total{reason="stack_collision"} %d
hearth_agent_samples_lost_total{reason="stack_error"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(strings.ReplaceAll(lost, "%d", "0")), "hearth_agent_samples_lost_total"); err != nil {
		t.Errorf("before any drain: %v", err)
	}

	sampler.add([]Sample{
		{TGID: 100, PID: 100, User: []uint64{0x1000, 0x2000, 0x3000}, Count: 4},
		{TGID: selfPID, PID: selfPID, User: []uint64{0x1000}, Count: 2},
	}, map[string]uint64{"stack_collision": 3})
	a.drain()
	a.endInterval(time.Now())

	if err := testutil.GatherAndCompare(reg, strings.NewReader(strings.ReplaceAll(lost, "%d", "3")), "hearth_agent_samples_lost_total"); err != nil {
		t.Error(err)
	}
	want := `
# HELP hearth_agent_frames_total Stack frames of the profiles built, each counted once per sample it holds.
# TYPE hearth_agent_frames_total counter
hearth_agent_frames_total 12
# HELP hearth_agent_frames_unnamed_total Stack frames of the profiles built that have no function name, by reason, each counted once per sample it holds.
# TYPE hearth_agent_frames_unnamed_total counter
hearth_agent_frames_unnamed_total{reason="no symbols"} 4
# HELP hearth_agent_samples_filtered_total Samples of processes left out by the filters or of the agent itself.
# TYPE hearth_agent_samples_filtered_total counter
hearth_agent_samples_filtered_total 2
# HELP hearth_agent_samples_total Samples read from the kernel sampler, including those filtered or dropped later.
# TYPE hearth_agent_samples_total counter
hearth_agent_samples_total 6
# HELP hearth_agent_profiles_total Profiles built, one per process per interval.
# TYPE hearth_agent_profiles_total counter
hearth_agent_profiles_total 1
# HELP hearth_agent_queue_profiles Profiles waiting to be pushed.
# TYPE hearth_agent_queue_profiles gauge
hearth_agent_queue_profiles 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"hearth_agent_frames_total", "hearth_agent_frames_unnamed_total", "hearth_agent_samples_filtered_total",
		"hearth_agent_samples_total", "hearth_agent_profiles_total", "hearth_agent_queue_profiles"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "hearth_agent_symbol_cache_bytes"); err != nil || n != 0 {
		t.Errorf("a symbolizer without Stats gave %d cache metrics (%v), want none", n, err)
	}

	// The real symbolizer tells of its cache.
	b, err := New(testConfig(t, "http://127.0.0.1:1", copyProc(t, "100")), sampler, symbolize.New(symbolize.Options{}), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	reg = prometheus.NewPedanticRegistry()
	if err := reg.Register(b.Collector()); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "hearth_agent_symbol_cache_bytes", "hearth_agent_symbol_loads_total"); err != nil || n != 2 {
		t.Errorf("symbolizer metrics: %d (%v), want 2", n, err)
	}
}
