package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	gpprof "github.com/google/pprof/profile"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"

	"github.com/hearth-profiler/hearth/internal/labels"
)

// fakeSampler returns queued drains in order, then nothing.
type fakeSampler struct {
	mu     sync.Mutex
	drains []fakeDrain
	calls  int
	err    error // returned by every Drain when set
}

type fakeDrain struct {
	samples []Sample
	stats   SamplerStats
}

func (f *fakeSampler) add(samples []Sample, lost map[string]uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n uint64
	for _, s := range samples {
		n += s.Count
	}
	f.drains = append(f.drains, fakeDrain{samples, SamplerStats{Samples: n, Lost: lost}})
}

func (f *fakeSampler) Drain() ([]Sample, SamplerStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, SamplerStats{}, f.err
	}
	if len(f.drains) == 0 {
		return nil, SamplerStats{}, nil
	}
	d := f.drains[0]
	f.drains = f.drains[1:]
	return d.samples, d.stats, nil
}

func (f *fakeSampler) pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.drains)
}

func (f *fakeSampler) Close() error { return nil }

// fakeSymbolizer names every address after the address it looks up,
// following the Symbolizer contract: the leaf as is, return addresses at
// addr-1. Addresses in unnamed get no name. LeafFrameless answers true for
// the (leaf, return address) pairs in frameless.
type fakeSymbolizer struct {
	mu         sync.Mutex
	unnamed    map[uint64]string // looked-up address → reason
	userCalls  map[uint32]int
	forgotten  []uint32
	frameless  map[[2]uint64]bool
	leafChecks int
}

func newFakeSymbolizer() *fakeSymbolizer {
	return &fakeSymbolizer{unnamed: map[uint64]string{}, userCalls: map[uint32]int{}, frameless: map[[2]uint64]bool{}}
}

func (f *fakeSymbolizer) LeafFrameless(pid uint32, pc, ret uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leafChecks++
	return f.frameless[[2]uint64{pc, ret}]
}

func (f *fakeSymbolizer) frames(prefix, module string, stack []uint64) [][]Frame {
	out := make([][]Frame, len(stack))
	for i, a := range stack {
		at := a
		if i > 0 {
			at--
		}
		fr := Frame{Function: fmt.Sprintf("%s_%x", prefix, at), Module: module, Addr: a}
		if r, ok := f.unnamed[at]; ok {
			fr = Frame{Function: fmt.Sprintf("%s+0x%x", filepath.Base(module), at), Module: module, Addr: a, Reason: r}
		}
		out[i] = []Frame{fr}
	}
	return out
}

func (f *fakeSymbolizer) User(pid uint32, stack []uint64) [][]Frame {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.userCalls[pid]++
	return f.frames("fn", "/bin/app", stack)
}

func (f *fakeSymbolizer) Kernel(stack []uint64) [][]Frame {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.frames("k", "[kernel.kallsyms]", stack)
}

func (f *fakeSymbolizer) Forget(pid uint32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgotten = append(f.forgotten, pid)
}

func (f *fakeSymbolizer) forgot() []uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.forgotten)
}

const selfPID = 4242

func testConfig(t *testing.T, serverURL, procRoot string) Config {
	cfg := DefaultConfig()
	cfg.Server = serverURL
	cfg.Interval = 200 * time.Millisecond
	cfg.DrainInterval = 40 * time.Millisecond
	cfg.ProcRoot = procRoot
	cfg.SelfPID = selfPID
	cfg.Hostname = "node-1"
	cfg.RetryMin, cfg.RetryMax = 10*time.Millisecond, 50*time.Millisecond
	cfg.ShutdownTimeout = 2 * time.Second
	cfg.StatsInterval = 100 * time.Millisecond
	return cfg
}

// pushed decodes every profile a capture server received, by pid label.
type pushedProfile struct {
	labels  map[string]string
	profile *gpprof.Profile
}

func decodeSeries(t *testing.T, series []*pushv1.RawProfileSeries) map[string][]pushedProfile {
	t.Helper()
	out := map[string][]pushedProfile{}
	for _, s := range series {
		ls := labelMap(s)
		for _, raw := range s.Samples {
			p, err := gpprof.ParseData(raw.RawProfile)
			if err != nil {
				t.Fatalf("pushed profile of %v: %v", ls, err)
			}
			out[ls["pid"]] = append(out[ls["pid"]], pushedProfile{ls, p})
		}
	}
	return out
}

// folded sums a process's profiles by stack, "root;...;leaf" → value.
func folded(ps []pushedProfile) map[string]int64 {
	out := map[string]int64{}
	for _, p := range ps {
		for _, s := range p.profile.Sample {
			var names []string
			for _, l := range s.Location {
				for _, ln := range l.Line {
					names = append(names, ln.Function.Name)
				}
			}
			slices.Reverse(names)
			out[strings.Join(names, ";")] += s.Value[0]
		}
	}
	return out
}

func TestRun(t *testing.T) {
	c := &captureServer{}
	ts := startCapture(t, c)
	root := copyProc(t, "100", "200", "400", "500")
	cfg := testConfig(t, ts.URL, root)
	cfg.Exclude.Comm = regexp.MustCompile("^sshd$")
	sampler := &fakeSampler{}
	sym := newFakeSymbolizer()
	sym.unnamed[0x2fff] = "no symbols"
	user := []uint64{0x1000, 0x2000, 0x3000}
	sampler.add([]Sample{
		{TGID: 100, PID: 101, Comm: "worker", User: user, Count: 3},
		{TGID: 200, PID: 200, Comm: "cart", Kernel: []uint64{0xffff0010, 0xffff0020}, User: []uint64{0x1000, 0x2000}, Count: 2},
		{TGID: 500, PID: 500, Comm: "kworker/3:1", Kernel: []uint64{0xffff0010}, Count: 4},
		{TGID: selfPID, PID: selfPID, Comm: "hearth", User: user, Count: 9},
		{TGID: 400, PID: 400, Comm: "sshd", User: user, Count: 1},
		{TGID: 999, PID: 1000, Comm: "short", User: []uint64{0x5000}, Count: 1},
	}, map[string]uint64{"stack_collision": 2})
	sampler.add([]Sample{
		{TGID: 100, PID: 100, Comm: "checkout-server", User: user, Count: 2},
		{TGID: 100, PID: 102, Comm: "worker", User: []uint64{0x4000, 0x2000, 0x3000}, Count: 1},
	}, nil)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := New(cfg, sampler, sym, testLogger(t).With("component", "agent"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	period := int64(time.Second) / 19
	want := map[string]map[string]int64{
		"100": {
			"app+0x2fff (no symbols);fn_1fff;fn_1000": 5 * period,
			"app+0x2fff (no symbols);fn_1fff;fn_4000": 1 * period,
		},
		"200": {"fn_1fff;fn_1000;k_ffff001f;k_ffff0010": 2 * period},
		"500": {"k_ffff0010": 4 * period},
		"999": {"fn_5000": 1 * period},
	}
	var got map[string]map[string]int64
	var byPID map[string][]pushedProfile
	waitFor(t, 10*time.Second, "every sample pushed", func() bool {
		byPID = decodeSeries(t, c.series())
		got = map[string]map[string]int64{}
		for pid, ps := range byPID {
			got[pid] = folded(ps)
		}
		return cmp.Equal(want, got)
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("pushed stacks by pid (-want +got):\n%s", d)
	}

	labelsOf := func(pid string) map[string]string { return byPID[pid][0].labels }
	for pid, wantLabels := range map[string]map[string]string{
		"100": {"service_name": "checkout", "comm": "checkout-server", "exe": "/usr/local/bin/checkout-server", "container_id": checkoutID, "host": "node-1", "job": "hearth-agent", "__name__": "process_cpu"},
		"200": {"service_name": "cart", "comm": "cart", "container_id": cartID},
		"500": {"service_name": "kernel", "comm": "kworker/3:1-events", "cgroup": "/"},
		"999": {"service_name": "short", "comm": "short"},
	} {
		ls := labelsOf(pid)
		for k, v := range wantLabels {
			if ls[k] != v {
				t.Errorf("pid %s: label %s = %q, want %q (all: %v)", pid, k, ls[k], v, ls)
			}
		}
	}
	for _, ps := range byPID {
		for _, p := range ps {
			if p.profile.Period != period || p.profile.TimeNanos == 0 || p.profile.DurationNanos <= 0 {
				t.Errorf("profile of %v: period %d, time %d, duration %d", p.labels, p.profile.Period, p.profile.TimeNanos, p.profile.DurationNanos)
			}
		}
	}

	st := a.Stats()
	if st.Samples != 23 || st.Filtered != 10 || st.Lost["stack_collision"] != 2 || st.DrainErrors != 0 {
		t.Errorf("stats %+v: want 23 samples, 10 filtered (self and sshd), 2 lost", st)
	}
	if lost := st.LostShare(); lost != 2.0/25 {
		t.Errorf("lost share %v, want 2/25", lost)
	}
	if st.Profiles == 0 || st.Pushed != st.Profiles || st.DroppedProfiles != 0 || st.Rejected != 0 || st.Queued != 0 {
		t.Errorf("stats %+v: want every profile built pushed", st)
	}
	if st.Frames != 6*3+2*4+4+1 || st.Unnamed["no symbols"] != 6 {
		t.Errorf("frames %d, unnamed %v; want 31 frames, 6 without symbols", st.Frames, st.Unnamed)
	}
}

// TestPIDReuseAndExit drives the agent by hand through intervals: a PID
// that names a new process mid-interval gives two profiles with their
// own labels, and exited or idle processes are forgotten, in the agent
// and in the symbolizer.
func TestPIDReuseAndExit(t *testing.T) {
	root := copyProc(t, "400", "700")
	sampler := &fakeSampler{}
	sym := newFakeSymbolizer()
	a, err := New(testConfig(t, "http://127.0.0.1:1", root), sampler, sym, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	a.interval, a.start = 1, time.Now()
	stackX := []uint64{0x1000, 0x2000}
	sampler.add([]Sample{
		{TGID: 400, PID: 400, Comm: "sshd", User: stackX, Count: 1},
		{TGID: 700, PID: 700, Comm: "nginx", User: stackX, Count: 1},
	}, nil)
	a.drain()
	reusePID(t, root, "400", "bash", "/usr/bin/bash", 999999)
	sampler.add([]Sample{{TGID: 400, PID: 400, Comm: "bash", User: stackX, Count: 2}}, nil)
	a.drain()
	if got := sym.forgot(); !slices.Equal(got, []uint32{400}) {
		t.Errorf("forgotten after the reuse: %v, want [400]", got)
	}
	if err := os.RemoveAll(filepath.Join(root, "700")); err != nil {
		t.Fatal(err)
	}
	a.endInterval(time.Now())

	type profileOf struct {
		comm, exe string
		value     int64
	}
	var got []profileOf
	for _, it := range a.pusher.queue {
		ls := map[string]string{}
		for _, l := range it.labels {
			ls[l.Name] = l.Value
		}
		p, err := gpprof.ParseData(it.data)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, profileOf{ls["comm"], ls["exe"], p.Sample[0].Value[0] / a.period})
	}
	want := []profileOf{{"sshd", "/usr/sbin/sshd", 1}, {"bash", "/usr/bin/bash", 2}, {"nginx", "/usr/sbin/nginx", 1}}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(profileOf{})); d != "" {
		t.Errorf("profiles of the interval (-want +got):\n%s", d)
	}
	if _, ok := a.tracked[700]; ok || a.tracked[400] == nil || a.tracked[400].info.Comm != "bash" {
		t.Errorf("tracked after the interval: %v; want 400 (bash) only", slices.Sorted(maps.Keys(a.tracked)))
	}
	if got := sym.forgot(); !slices.Equal(got, []uint32{400, 700}) {
		t.Errorf("forgotten after the interval: %v, want [400 700]", got)
	}

	// Idle: bash takes no CPU for idleIntervals and is forgotten too.
	for range idleIntervals {
		a.drain()
		a.endInterval(time.Now())
	}
	if len(a.tracked) != 0 {
		t.Errorf("tracked after %d idle intervals: %v, want none", idleIntervals, slices.Sorted(maps.Keys(a.tracked)))
	}
	if got := sym.forgot(); !slices.Equal(got, []uint32{400, 700, 400}) {
		t.Errorf("forgotten after idling: %v, want [400 700 400]", got)
	}
}

// TestCaps checks the caps on processes and stacks, and their counters.
func TestCaps(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1", copyProc(t, "100", "200", "400"))
	cfg.MaxProcesses, cfg.MaxStacks = 2, 3
	sampler := &fakeSampler{}
	sym := newFakeSymbolizer()
	a, err := New(cfg, sampler, sym, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	a.interval, a.start = 1, time.Now()
	sampler.add([]Sample{
		{TGID: 100, User: []uint64{1}, Count: 1},
		{TGID: 100, User: []uint64{2}, Count: 1},
		{TGID: 200, User: []uint64{1}, Count: 1},
		{TGID: 400, User: []uint64{1}, Count: 5}, // a third process
		{TGID: 100, User: []uint64{3}, Count: 7}, // a fourth stack
		{TGID: 100, User: []uint64{1}, Count: 1}, // a stack already there
	}, nil)
	a.drain()
	st := a.Stats()
	if d := cmp.Diff(map[string]uint64{"processes": 5, "stacks": 7}, st.Dropped); d != "" {
		t.Errorf("dropped samples (-want +got):\n%s", d)
	}
	a.endInterval(time.Now())
	if n := len(a.pusher.queue); n != 2 {
		t.Errorf("%d profiles, want 2", n)
	}
	// The next interval has room again.
	sampler.add([]Sample{{TGID: 100, User: []uint64{3}, Count: 7}}, nil)
	a.drain()
	if st := a.Stats(); st.Dropped["stacks"] != 7 {
		t.Errorf("dropped %v after a new interval, want no more", st.Dropped)
	}
}

// TestLeafReturn checks that a sample's LeafReturn becomes the leaf's
// caller exactly when the symbolizer says the leaf has no frame, and is
// not put in twice when the unwinder found the caller itself.
func TestLeafReturn(t *testing.T) {
	sampler := &fakeSampler{}
	sym := newFakeSymbolizer()
	sym.frameless[[2]uint64{0x1000, 0x2000}] = true
	a, err := New(testConfig(t, "http://127.0.0.1:1", copyProc(t, "100")), sampler, sym, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	a.interval, a.start = 1, time.Now()
	sampler.add([]Sample{
		// A frameless leaf: the caller 0x2000 is missing; two threads.
		{TGID: 100, PID: 100, User: []uint64{0x1000, 0x3000}, LeafReturn: 0x2000, Count: 2},
		{TGID: 100, PID: 101, User: []uint64{0x1000, 0x3000}, LeafReturn: 0x2000, Count: 3},
		// The same leaf with no caller at all after it.
		{TGID: 100, PID: 100, User: []uint64{0x1000}, LeafReturn: 0x2000, Count: 1},
		// A leaf with a frame: the word at the stack pointer is a local.
		{TGID: 100, PID: 100, User: []uint64{0x4000, 0x3000}, LeafReturn: 0x2000, Count: 4},
		// The unwinder found the caller already.
		{TGID: 100, PID: 100, User: []uint64{0x1000, 0x2000, 0x3000}, LeafReturn: 0x2000, Count: 5},
		// Nothing recorded at the stack pointer.
		{TGID: 100, PID: 100, User: []uint64{0x5000, 0x3000}, Count: 6},
	}, nil)
	a.drain()
	a.endInterval(time.Now())
	if len(a.pusher.queue) != 1 {
		t.Fatalf("%d profiles, want 1", len(a.pusher.queue))
	}
	p, err := gpprof.ParseData(a.pusher.queue[0].data)
	if err != nil {
		t.Fatal(err)
	}
	got := folded([]pushedProfile{{profile: p}})
	for k, v := range got {
		got[k] = v / a.period
	}
	want := map[string]int64{
		"fn_2fff;fn_1fff;fn_1000": 2 + 3 + 5,
		"fn_1fff;fn_1000":         1,
		"fn_2fff;fn_4000":         4,
		"fn_2fff;fn_5000":         6,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("stacks (-want +got):\n%s", d)
	}
	// One question per distinct (leaf, return address) of the drain:
	// (0x1000, 0x2000) and (0x4000, 0x2000).
	if sym.leafChecks != 2 {
		t.Errorf("LeafFrameless called %d times, want 2", sym.leafChecks)
	}
}

// TestRunShutdown checks that the last, partial interval is pushed when
// Run's context ends, and that an unreachable server delays the end by
// at most ShutdownTimeout, counting what could not be sent.
func TestRunShutdown(t *testing.T) {
	run := func(t *testing.T, serverURL string, timeout time.Duration) (*Agent, time.Duration) {
		cfg := testConfig(t, serverURL, copyProc(t, "100"))
		cfg.Interval = time.Hour
		cfg.DrainInterval = 10 * time.Millisecond
		cfg.ShutdownTimeout = timeout
		sampler := &fakeSampler{}
		sampler.add([]Sample{{TGID: 100, User: []uint64{0x1000}, Count: 3}}, nil)
		a, err := New(cfg, sampler, newFakeSymbolizer(), testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		waitFor(t, 5*time.Second, "the samples drained", func() bool { return sampler.pending() == 0 })
		start := time.Now()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return a, time.Since(start)
	}
	t.Run("server up", func(t *testing.T) {
		c := &captureServer{}
		ts := startCapture(t, c)
		a, _ := run(t, ts.URL, 2*time.Second)
		byPID := decodeSeries(t, c.series())
		if len(byPID["100"]) != 1 || byPID["100"][0].profile.DurationNanos >= int64(time.Hour) {
			t.Fatalf("pushed %v, want one partial-interval profile of pid 100", byPID)
		}
		if st := a.Stats(); st.Pushed != 1 {
			t.Errorf("pushed %d, want 1", st.Pushed)
		}
	})
	t.Run("server away", func(t *testing.T) {
		a, took := run(t, "http://"+freeAddr(t), 300*time.Millisecond)
		if took > 2*time.Second {
			t.Errorf("Run took %v to end, want about the shutdown timeout", took)
		}
		if st := a.Stats(); st.DroppedProfiles != 1 || st.Pushed != 0 || st.PushFailures == 0 {
			t.Errorf("stats %+v: want the profile dropped after failed pushes", st)
		}
	})
}

// TestRunSamplerFails checks that Run gives up on a sampler that keeps
// failing, with an error that says so.
func TestRunSamplerFails(t *testing.T) {
	cfg := testConfig(t, "http://"+freeAddr(t), t.TempDir())
	cfg.DrainInterval = time.Millisecond
	cfg.Interval = time.Second
	sampler := &fakeSampler{err: errors.New("map gone")}
	err := Run(context.Background(), cfg, sampler, newFakeSymbolizer(), testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "failed "+strconv.Itoa(maxDrainFailures)+" drains in a row") {
		t.Errorf("Run = %v, want the sampler's failures", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if c := DefaultConfig(); c.Validate() != nil {
		t.Fatalf("default config: %v", c.Validate())
	}
	for name, mut := range map[string]func(*Config){
		"server scheme":    func(c *Config) { c.Server = "localhost:4040" },
		"server host":      func(c *Config) { c.Server = "http://" },
		"short interval":   func(c *Config) { c.Interval = 10 * time.Millisecond },
		"drain > interval": func(c *Config) { c.DrainInterval = time.Minute },
		"lost target 0":    func(c *Config) { c.LostShareTarget = 0 },
		"lost target 1":    func(c *Config) { c.LostShareTarget = 1 },
		"frequency":        func(c *Config) { c.FrequencyHz = 0 },
		"buffer":           func(c *Config) { c.MaxBufferBytes = 10 },
		"processes":        func(c *Config) { c.MaxProcesses = 0 },
		"stacks":           func(c *Config) { c.MaxStacks = 0 },
		"retry":            func(c *Config) { c.RetryMin = 0 },
		"tenant":           func(c *Config) { c.Tenant = "a/b" },
		"token":            func(c *Config) { c.BearerToken = "a\nb" },
		"env":              func(c *Config) { c.ServiceNameEnv = []string{"A=B"} },
		"labels":           func(c *Config) { c.Labels = labels.FromStrings("__x", "1") },
	} {
		c := DefaultConfig()
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestNextDrainInterval checks how the wait between drains follows the
// losses: cut by the lost share's ratio to the target (at least halved)
// while over it, grown back by a quarter while under half of it, kept in
// between, judged only once drains hold enough samples,
// and bounded by an eighth of DrainInterval and DrainInterval.
func TestNextDrainInterval(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1", t.TempDir())
	cfg.Interval, cfg.DrainInterval, cfg.LostShareTarget = 10*time.Second, 2*time.Second, 0.01
	a, err := New(cfg, &fakeSampler{}, newFakeSymbolizer(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	for i, tc := range []struct {
		cur           time.Duration
		samples, lost uint64
		want          time.Duration
	}{
		{2000 * ms, 960, 40, 500 * ms},  // 4% lost: by the ratio to the target
		{2000 * ms, 980, 20, 1000 * ms}, // 2% lost: halve
		{1000 * ms, 980, 20, 500 * ms},  // again
		{300 * ms, 980, 20, 250 * ms},   // not below an eighth
		{1000 * ms, 995, 5, 1000 * ms},  // 0.5%: under the target, not under half
		{1000 * ms, 996, 4, 1250 * ms},  // 0.4%: under half the target
		{1000 * ms, 1000, 1, 1250 * ms}, // 0.1%: grow by a quarter
		{1000 * ms, 1000, 0, 1250 * ms}, // none lost
		{1900 * ms, 1000, 0, 2000 * ms}, // not above DrainInterval
		{1000 * ms, 0, 0, 1000 * ms},    // an idle host
		{1000 * ms, 490, 10, 1000 * ms}, // 500 samples: too few to judge yet...
		{1000 * ms, 495, 5, 500 * ms},   // ...judged with the drain before: 1.5%
	} {
		a.lastDrain = SamplerStats{Samples: tc.samples}
		if tc.lost > 0 {
			a.lastDrain.Lost = map[string]uint64{"stack_collision": tc.lost}
		}
		if got := a.nextDrainInterval(tc.cur); got != tc.want {
			t.Errorf("case %d: after %v with %d samples and %d lost: %v, want %v", i, tc.cur, tc.samples, tc.lost, got, tc.want)
		}
	}
	if st := a.Stats(); st.DrainInterval != 500*ms {
		t.Errorf("Stats.DrainInterval %v, want the last change, 500ms", st.DrainInterval)
	}
}
