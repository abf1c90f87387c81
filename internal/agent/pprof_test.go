package agent

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	gpprof "github.com/google/pprof/profile"
)

// testFrames are what a symbolizer gave for the stacks of TestBuildProfile.
var (
	testUserFrames = map[frameKey][]Frame{
		// The leaf: an inlined function inside its caller.
		{0x401000, true}: {
			{Function: "main.hash", File: "/src/app/hash.go", Line: 12, Inlined: true, Module: "/usr/bin/app", Addr: 0x401000, BuildID: "b1"},
			{Function: "main.work", File: "/src/app/work.go", Line: 40, Module: "/usr/bin/app", Addr: 0x401000, BuildID: "b1"},
		},
		{0x402000, false}: {{Function: "main.main", File: "/src/app/main.go", Line: 7, Module: "/usr/bin/app", Addr: 0x402000, BuildID: "b1"}},
		// A stripped library: the symbolizer's stand-in name is kept.
		{0x7f0000001234, false}: {{Function: "libc.so.6+0x1234", Module: "libc.so.6", Addr: 0x7f0000001234, BuildID: "c1", Reason: "no symbols"}},
		// No stand-in: the agent makes one from the module and address.
		{0x7f0000009999, false}: {{Module: "/usr/lib/libgone.so", Addr: 0x9999, Reason: "binary gone"}},
		// The same address as a leaf: looked up as is, another location.
		{0x402000, true}: {{Function: "main.spin", File: "/src/app/main.go", Line: 3, Module: "/usr/bin/app", Addr: 0x402000, BuildID: "b1"}},
		// 0x500000 (a leaf) has no frames at all.
	}
	testKernelFrames = map[frameKey][]Frame{
		{0xffffffff81001000, true}:  {{Function: "copy_user_generic", Module: "[kernel.kallsyms]", Addr: 0xffffffff81001000}},
		{0xffffffff81002000, false}: {{Function: "do_syscall_64", Module: "[kernel.kallsyms]", Addr: 0xffffffff81002000}},
		{0xffffffff81003000, false}: {{Module: "[kernel.kallsyms]", Addr: 0xffffffff81003000, Reason: "kernel symbols hidden"}},
	}
)

func TestBuildProfile(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	period := int64(time.Second) / 19
	stacks := []*stack{
		// Kernel below user: a read syscall.
		{kernel: []uint64{0xffffffff81001000, 0xffffffff81002000}, user: []uint64{0x401000, 0x402000}, count: 3},
		// User only, through two unnamed frames.
		{user: []uint64{0x401000, 0x7f0000001234, 0x7f0000009999, 0x402000}, count: 2},
		// Kernel only (a kernel thread), one frame hidden.
		{kernel: []uint64{0xffffffff81001000, 0xffffffff81003000}, count: 5},
		// No stack at all.
		{count: 1},
		// A leaf the symbolizer gave nothing for; a leaf at an address
		// that is also a return address elsewhere.
		{user: []uint64{0x500000, 0x402000}, count: 1},
		{user: []uint64{0x402000}, count: 4},
	}
	var fs frameStats
	p := buildProfile(profileInput{
		stacks: stacks, user: testUserFrames, kernel: testKernelFrames,
		start: start, duration: 10 * time.Second, periodNanos: period,
	}, &fs)

	// Through the encoding, as the server will read it.
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := gpprof.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.CheckValid(); err != nil {
		t.Fatal(err)
	}
	if st := got.SampleType; len(st) != 1 || st[0].Type != "cpu" || st[0].Unit != "nanoseconds" {
		t.Errorf("sample types %v, want cpu/nanoseconds", st)
	}
	if pt := got.PeriodType; pt == nil || pt.Type != "cpu" || pt.Unit != "nanoseconds" || got.Period != 52631578 {
		t.Errorf("period %v %d, want cpu/nanoseconds 52631578", pt, got.Period)
	}
	if got.TimeNanos != start.UnixNano() || got.DurationNanos != int64(10*time.Second) {
		t.Errorf("time %d, duration %d; want %d, %d", got.TimeNanos, got.DurationNanos, start.UnixNano(), int64(10*time.Second))
	}

	type sample struct {
		Stack []string // leaf first; a location's lines innermost first
		Value int64
	}
	var samples []sample
	for _, s := range got.Sample {
		var names []string
		for _, l := range s.Location {
			for _, ln := range l.Line {
				names = append(names, ln.Function.Name)
			}
		}
		samples = append(samples, sample{names, s.Value[0]})
	}
	want := []sample{
		{[]string{"copy_user_generic", "do_syscall_64", "main.hash", "main.work", "main.main"}, 3 * period},
		{[]string{"main.hash", "main.work", "libc.so.6+0x1234 (no symbols)", "libgone.so+0x9999 (binary gone)", "main.main"}, 2 * period},
		{[]string{"copy_user_generic", "[kernel.kallsyms]+0xffffffff81003000 (kernel symbols hidden)"}, 5 * period},
		{[]string{"[no stack]"}, 1 * period},
		{[]string{"0x500000 (not symbolized)", "main.main"}, 1 * period},
		{[]string{"main.spin"}, 4 * period},
	}
	if d := cmp.Diff(want, samples); d != "" {
		t.Errorf("samples (-want +got):\n%s", d)
	}

	// Each address is one location, each (name, file) one function, each
	// binary one mapping.
	if n := len(got.Location); n != 10 {
		t.Errorf("%d locations, want 10: 3 kernel, 6 user (one per address and leafness), [no stack]", n)
	}
	names := map[string]int{}
	for _, f := range got.Function {
		names[f.Name]++
	}
	for n, c := range names {
		if c != 1 {
			t.Errorf("function %q appears %d times", n, c)
		}
	}
	maps := map[string]*gpprof.Mapping{}
	for _, m := range got.Mapping {
		maps[m.File] = m
	}
	if m := maps["/usr/bin/app"]; m == nil || m.BuildID != "b1" || !m.HasFunctions || !m.HasFilenames || !m.HasLineNumbers || !m.HasInlineFrames {
		t.Errorf("mapping of /usr/bin/app: %+v, want build ID b1 with functions, files, lines and inlined frames", m)
	}
	if m := maps["libc.so.6"]; m == nil || m.BuildID != "c1" || m.HasFunctions {
		t.Errorf("mapping of libc.so.6: %+v, want build ID c1 without functions", m)
	}
	if len(maps) != 4 {
		t.Errorf("mappings %v, want app, libc, libgone and the kernel", maps)
	}
	// The reason is in the name; the system name is the bare stand-in.
	for _, f := range got.Function {
		if strings.HasPrefix(f.Name, "libc.so.6+") && f.SystemName != "libc.so.6+0x1234" {
			t.Errorf("system name of %q is %q, want libc.so.6+0x1234", f.Name, f.SystemName)
		}
		if f.Name == "main.hash" && (f.Filename != "/src/app/hash.go" || f.SystemName != "main.hash") {
			t.Errorf("function main.hash: %+v", f)
		}
	}
	// The inlined leaf has both lines, with their line numbers.
	leaf := got.Sample[1].Location[0]
	if len(leaf.Line) != 2 || leaf.Line[0].Line != 12 || leaf.Line[1].Line != 40 || leaf.Address != 0x401000 {
		t.Errorf("leaf location %+v, want main.hash:12 inlined in main.work:40 at 0x401000", leaf)
	}

	wantFrames := frameStats{
		frames: 3*4 + 2*4 + 5*2 + 1 + 1*2 + 4,
		unnamed: map[string]uint64{
			"no symbols": 2, "binary gone": 2, "kernel symbols hidden": 5, "no stack": 1, "not symbolized": 1,
		},
	}
	if d := cmp.Diff(wantFrames, fs, cmp.AllowUnexported(frameStats{})); d != "" {
		t.Errorf("frame stats (-want +got):\n%s", d)
	}
}

// TestBuildProfileKernelOnly checks that a process with only kernel
// frames (a kernel thread) gets a profile of its own.
func TestBuildProfileKernelOnly(t *testing.T) {
	var fs frameStats
	p := buildProfile(profileInput{
		stacks:      []*stack{{kernel: []uint64{0xffffffff81001000}, count: 2}},
		kernel:      testKernelFrames,
		start:       time.Now(),
		duration:    time.Second,
		periodNanos: 1e7,
	}, &fs)
	if err := p.CheckValid(); err != nil {
		t.Fatal(err)
	}
	if len(p.Sample) != 1 || p.Sample[0].Value[0] != 2e7 || p.Sample[0].Location[0].Line[0].Function.Name != "copy_user_generic" {
		t.Errorf("samples %v, want one of copy_user_generic worth 2e7", p.Sample)
	}
}
