//go:build linux && (amd64 || arm64)

package bpf

import (
	"bufio"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf/btf"
)

// childEnv makes the test binary, run again as a child, burn CPU instead of
// running tests: a process of known name and code to find in the samples.
const childEnv = "HEARTH_BPF_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "burn" {
		burnChild()
		return
	}
	os.Exit(m.Run())
}

// burnChild alternates between computing in user space and reading
// /dev/zero, where the kernel spends the time zeroing the buffer, so that
// samples have user stacks and some have kernel stacks too.
func burnChild() {
	// A safety net in case the parent dies without killing us.
	time.AfterFunc(2*time.Minute, func() { os.Exit(0) })
	f, err := os.Open("/dev/zero")
	if err != nil {
		os.Exit(1)
	}
	buf := make([]byte, 1<<20)
	for {
		burnUser(5_000_000)
		for range 16 {
			if _, err := f.Read(buf); err != nil {
				os.Exit(1)
			}
		}
	}
}

var sink atomic.Uint64

//go:noinline
func burnUser(n int) {
	x := uint64(1)
	for range n {
		x = x*6364136223846793005 + 1442695040888963407
	}
	sink.Store(x)
}

// requireEnv, set to 1, turns the skip of requireProfiling into a failure,
// for machines where these tests must run.
const requireEnv = "HEARTH_REQUIRE_BPF"

// requireProfiling skips the test when this process cannot profile, with
// Check's explanation.
func requireProfiling(t *testing.T) {
	t.Helper()
	if err := Check(); err != nil {
		if os.Getenv(requireEnv) == "1" {
			t.Fatalf("eBPF profiling is not possible here, and %s=1:\n%v", requireEnv, err)
		}
		t.Skipf("eBPF profiling is not possible here (these tests need root):\n%v", err)
	}
}

// startChild starts a burnChild process and returns its pid.
func startChild(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=burn")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd.Process.Pid
}

// startBusyLoops starts n shells spinning in `while :; do :; done`.
func startBusyLoops(t *testing.T, n int) []int {
	t.Helper()
	var pids []int
	for range n {
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
		pids = append(pids, cmd.Process.Pid)
	}
	return pids
}

func openProfiler(t *testing.T, opts Options) *Profiler {
	t.Helper()
	p, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

func lostTotal(s Stats) uint64 {
	var n uint64
	for _, v := range s.Lost {
		n += v
	}
	return n
}

func isKernelAddr(pc uint64) bool { return pc >= 1<<63 }

// TestProfileChild samples a child of known code and checks what the
// samples say about it.
func TestProfileChild(t *testing.T) {
	requireProfiling(t)
	child := startChild(t)
	p := openProfiler(t, Options{FrequencyHz: 99, RunStats: true})
	time.Sleep(2 * time.Second)
	samples, stats, err := p.Drain()
	if err != nil {
		t.Fatal(err)
	}

	wantComm := readComm(t, child)
	if base := filepath.Base(os.Args[0]); wantComm != base[:min(len(base), 15)] {
		t.Fatalf("child's comm is %q, want the start of %q", wantComm, base)
	}
	bias := loadBias(t, child)

	var total, withUser, withKernel, badKernel uint64
	var names = map[string]bool{}
	// Samples in burnUser, a leaf without a frame, and those of them
	// whose LeafReturn is the return address into burnChild, which the
	// frame-pointer walk skips.
	var inLeaf, leafReturnOK uint64
	funcName := func(pc uint64) string {
		if f := runtime.FuncForPC(uintptr(pc - bias)); f != nil {
			return f.Name()
		}
		return ""
	}
	for _, s := range samples {
		if s.Count == 0 {
			t.Fatalf("sample with zero count: %+v", s)
		}
		if s.TGID == 0 || s.PID == 0 {
			t.Fatalf("idle task sampled: %+v", s)
		}
		if int(s.TGID) != child {
			continue
		}
		total += s.Count
		if s.User == nil && s.Kernel == nil {
			t.Errorf("child sample without any stack: %+v", s)
		}
		if s.Comm != wantComm {
			t.Errorf("child sample with comm %q, want %q", s.Comm, wantComm)
		}
		if len(s.User) > 0 && strings.HasSuffix(funcName(s.User[0]), ".burnUser") {
			inLeaf += s.Count
			if s.LeafReturn != 0 && strings.HasSuffix(funcName(s.LeafReturn-1), ".burnChild") {
				leafReturnOK += s.Count
			}
		}
		if runtime.GOARCH != "amd64" && s.LeafReturn != 0 {
			t.Errorf("LeafReturn %#x on %s, where it is not recorded", s.LeafReturn, runtime.GOARCH)
		}
		if len(s.User) > 0 {
			withUser += s.Count
			for i, pc := range s.User {
				if isKernelAddr(pc) {
					t.Errorf("kernel address %#x in user stack %#x", pc, s.User)
				}
				if i > 0 {
					pc-- // a return address: look up the call
				}
				if f := runtime.FuncForPC(uintptr(pc - bias)); f != nil {
					names[f.Name()] = true
				}
			}
		}
		if len(s.Kernel) > 0 {
			withKernel += s.Count
			for _, pc := range s.Kernel {
				if !isKernelAddr(pc) {
					badKernel++
				}
			}
		}
	}
	t.Logf("child %d (%s): %d samples, %d with user stacks, %d with kernel stacks; all samples %d, lost %v",
		child, wantComm, total, withUser, withKernel, stats.Samples, stats.Lost)
	if stats.ProgRunCount > 0 {
		t.Logf("in-kernel cost: %d runs, %.0f ns per sample", stats.ProgRunCount, float64(stats.ProgRunTimeNs)/float64(stats.ProgRunCount))
	}

	// The child wants one CPU for 2 s at 99 Hz: about 200 samples if it
	// gets it, and well over a fifth of that on a busy machine.
	if total < 40 {
		t.Fatalf("only %d samples of the child", total)
	}
	if withUser < total*9/10 {
		t.Errorf("%d of %d child samples have a user stack, want nearly all", withUser, total)
	}
	if withKernel == 0 {
		t.Errorf("no child sample has a kernel stack, though it spends time in read(/dev/zero)")
	}
	if badKernel > 0 {
		t.Errorf("%d user-space addresses in kernel stacks", badKernel)
	}
	// burnUser has no frame, so the word at the stack pointer is its
	// return address. A sample taken in the kernel (an interrupt that
	// came in during burnUser) has none, hence "most".
	t.Logf("%d samples in burnUser, %d with LeafReturn in burnChild", inLeaf, leafReturnOK)
	if runtime.GOARCH == "amd64" && (inLeaf == 0 || leafReturnOK*10 < inLeaf*9) {
		t.Errorf("%d of %d samples in burnUser have their return address into burnChild as LeafReturn, want nearly all", leafReturnOK, inLeaf)
	}
	// Frame-pointer unwinding must get from the leaf through its callers.
	for _, fn := range []string{"burnUser", "burnChild", "TestMain"} {
		if !hasSuffixIn(names, "."+fn) {
			t.Errorf("no user stack of the child passes through %s; functions seen: %v", fn, slices.Sorted(maps.Keys(names)))
		}
	}
	for _, reason := range []string{LostStackCollision, LostStackError, LostCountMapFull} {
		if _, ok := stats.Lost[reason]; !ok {
			t.Errorf("Stats.Lost has no %q", reason)
		}
	}
	if lost := lostTotal(stats); lost*20 > stats.Samples+lost {
		t.Errorf("lost %v of %d samples, want under 5%%", stats.Lost, stats.Samples+lost)
	}
	if stats.ProgRunCount < stats.Samples {
		t.Errorf("program ran %d times for %d samples", stats.ProgRunCount, stats.Samples)
	}
}

// TestExcludesOwnProcess checks that the calling process is not sampled by
// default, and that ExcludeTGID picks another process instead.
func TestExcludesOwnProcess(t *testing.T) {
	requireProfiling(t)
	child := startChild(t)
	self := uint32(os.Getpid())
	stop := make(chan struct{})
	defer close(stop)
	go func() { // keep this process on a CPU
		for {
			select {
			case <-stop:
				return
			default:
				burnUser(100_000)
			}
		}
	}()

	count := func(opts Options) (selfCount, childCount uint64) {
		p := openProfiler(t, opts)
		time.Sleep(1500 * time.Millisecond)
		samples, _, err := p.Drain()
		if err != nil {
			t.Fatal(err)
		}
		p.Close()
		for _, s := range samples {
			switch s.TGID {
			case self:
				selfCount += s.Count
			case uint32(child):
				childCount += s.Count
			}
		}
		return selfCount, childCount
	}

	selfCount, childCount := count(Options{FrequencyHz: 99})
	t.Logf("default: %d samples of this process, %d of the child", selfCount, childCount)
	if selfCount != 0 {
		t.Errorf("%d samples of the profiling process itself", selfCount)
	}
	if childCount == 0 {
		t.Errorf("no samples of the child")
	}

	selfCount, childCount = count(Options{FrequencyHz: 99, ExcludeTGID: uint32(child)})
	t.Logf("excluding the child: %d samples of this process, %d of the child", selfCount, childCount)
	if childCount != 0 {
		t.Errorf("%d samples of the excluded child", childCount)
	}
	if selfCount == 0 {
		t.Errorf("no samples of this process when it is not excluded")
	}
}

// TestDrainEmptiesSlot checks that Drain leaves the slot it read empty,
// stacks of dropped samples included, and that each Drain returns only the
// samples since the previous one. With a two-bucket stack map collisions are
// certain, and so stacks that no count refers to, which Drain sweeps for;
// with the default size there are none to sweep for, and deleting the
// stacks the counts refer to must be enough.
func TestDrainEmptiesSlot(t *testing.T) {
	requireProfiling(t)
	startChild(t)
	for _, entries := range []int{2, 0} {
		p := openProfiler(t, Options{FrequencyHz: 99, StackMapEntries: entries})
		for round := range 3 {
			time.Sleep(500 * time.Millisecond)
			start := time.Now()
			_, stats, err := p.Drain()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d entries, round %d: %d samples, lost %v, Drain took %v", entries, round, stats.Samples, stats.Lost, time.Since(start))

			old := p.slot ^ 1
			var key profileCountKey
			var val uint64
			if it := p.counts[old].Iterate(); it.Next(&key, &val) {
				t.Errorf("count map of the drained slot still has %+v", key)
			}
			var id uint32
			if err := p.stacks[old].NextKey(nil, &id); err == nil {
				t.Errorf("%d entries: stack map of the drained slot still has stack %d (lost %v)", entries, id, stats.Lost)
			}
			for reason := range uint32(profileLostReasonLOST_REASONS) {
				var perCPU []uint64
				if err := p.objs.Lost.Lookup(old*uint32(profileLostReasonLOST_REASONS)+reason, &perCPU); err != nil {
					t.Fatal(err)
				}
				if slices.ContainsFunc(perCPU, func(n uint64) bool { return n != 0 }) {
					t.Errorf("lost counter %d of the drained slot is %v", reason, perCPU)
				}
			}
			// 0.5 s on every CPU at 99 Hz at most, with room for timing.
			if max := uint64(runtime.NumCPU()) * 99; stats.Samples+lostTotal(stats) > max {
				t.Errorf("%d samples in half a second on %d CPUs: not only those since the last Drain", stats.Samples, runtime.NumCPU())
			}
			if entries == 2 && round > 0 && stats.Lost[LostStackCollision] == 0 {
				t.Errorf("no stack collision with a two-entry stack map")
			}
		}
		p.Close()
	}
}

// TestBusyHost measures, with every CPU busy, the share of lost samples and
// the in-kernel cost per sample at 99 Hz and at the default rate.
func TestBusyHost(t *testing.T) {
	requireProfiling(t)
	loops := startBusyLoops(t, runtime.NumCPU())
	for _, hz := range []int{99, DefaultFrequencyHz} {
		beforeOpen := time.Now()
		p := openProfiler(t, Options{FrequencyHz: hz, RunStats: true})
		afterOpen := time.Now()
		time.Sleep(2 * time.Second)
		start := time.Now()
		samples, stats, err := p.Drain()
		took := time.Since(start)
		// Sampling ran at least from the end of Open to the start of
		// Drain, and at most from the start of Open to the end of Drain;
		// on a loaded machine that can be well over the 2 s slept.
		shortest, longest := start.Sub(afterOpen), time.Since(beforeOpen)
		if err != nil {
			t.Fatal(err)
		}
		p.Close()
		var loopSamples uint64
		for _, s := range samples {
			if slices.Contains(loops, int(s.TGID)) {
				loopSamples += s.Count
				if s.Comm != "sh" {
					t.Errorf("busy loop sampled with comm %q", s.Comm)
				}
			}
		}
		lost := lostTotal(stats)
		share := float64(lost) / float64(max(stats.Samples+lost, 1))
		if stats.ProgRunCount == 0 {
			t.Fatalf("%d Hz: no BPF run-time statistics", hz)
		}
		nsPerSample := float64(stats.ProgRunTimeNs) / float64(stats.ProgRunCount)
		t.Logf("%d Hz, %d CPUs busy, %.1f s: %d samples (%d of the loops) in %d keys, lost %v = %.2f%%, %d program runs, %.0f ns per sample in the kernel, Drain %v",
			hz, len(loops), shortest.Seconds(), stats.Samples, loopSamples, len(samples), stats.Lost, 100*share, stats.ProgRunCount, nsPerSample, took)
		// Every CPU ticks at hz, busy or idle; idle ticks end early.
		perSecond := float64(hz * runtime.NumCPU())
		low, high := 0.8*perSecond*shortest.Seconds(), 1.2*perSecond*longest.Seconds()
		if runs := float64(stats.ProgRunCount); runs < low || runs > high {
			t.Errorf("%d Hz: the program ran %d times in %v to %v on %d CPUs, want %.0f to %.0f", hz, stats.ProgRunCount, shortest, longest, runtime.NumCPU(), low, high)
		}
		// Collisions depend on how many distinct stacks everything else
		// on the host adds, so the bound is loose; and at the default
		// rate two seconds hold some 80 samples, where 5 % is four, so a
		// few lost must not fail the test on their own.
		if share > 0.05 && lost > 8 {
			t.Errorf("%d Hz: lost %d samples, %.2f%%", hz, lost, 100*share)
		}
	}
}

// TestObjectHasNoCORERelocations keeps the object loadable on kernels
// without BTF or with other structure layouts.
func TestObjectHasNoCORERelocations(t *testing.T) {
	spec, err := loadProfile()
	if err != nil {
		t.Fatal(err)
	}
	for name, prog := range spec.Programs {
		for _, ins := range prog.Instructions {
			if rel := btf.CORERelocationMetadata(&ins); rel != nil {
				t.Errorf("program %s has a CO-RE relocation: %v", name, rel)
			}
		}
	}
}

// TestCheck checks that Check's report is one problem per line. Whether it
// should pass depends on the machine; the tests that need it skip with its
// report.
func TestCheck(t *testing.T) {
	err := Check()
	if err != nil && os.Getenv(requireEnv) == "1" {
		t.Fatalf("Check fails, and %s=1:\n%v", requireEnv, err)
	}
	if err != nil {
		for line := range strings.SplitSeq(err.Error(), "\n") {
			if line == "" {
				t.Errorf("empty line in Check's report %q", err)
			}
		}
		t.Logf("Check:\n%v", err)
	}
}

func TestOptionsValidated(t *testing.T) {
	for _, opts := range []Options{{FrequencyHz: -1}, {FrequencyHz: 100000}, {StackMapEntries: -1}, {CountMapEntries: 1 << 30}} {
		if p, err := Open(opts); err == nil {
			p.Close()
			t.Errorf("Open(%+v) succeeded", opts)
		}
	}
}

func TestParseCPUList(t *testing.T) {
	for in, want := range map[string][]int{
		"0":          {0},
		"0-3":        {0, 1, 2, 3},
		"0-1,4,6-7":  {0, 1, 4, 6, 7},
		"":           nil,
		"2,5":        {2, 5},
		"0-63":       nil, // checked by length below
		"10-11,13\n": nil,
	} {
		got, err := parseCPUList(strings.TrimSpace(in))
		if err != nil {
			t.Errorf("parseCPUList(%q): %v", in, err)
			continue
		}
		if in == "0-63" {
			if len(got) != 64 || got[63] != 63 {
				t.Errorf("parseCPUList(%q) = %v", in, got)
			}
			continue
		}
		if in == "10-11,13\n" {
			want = []int{10, 11, 13}
		}
		if !slices.Equal(got, want) {
			t.Errorf("parseCPUList(%q) = %v, want %v", in, got, want)
		}
	}
	for _, bad := range []string{"a", "3-1", "1-x"} {
		if _, err := parseCPUList(bad); err == nil {
			t.Errorf("parseCPUList(%q) succeeded", bad)
		}
	}
}

func TestKernelVersion(t *testing.T) {
	for in, want := range map[string][2]int{
		"6.18.44-fc-v782":    {6, 18},
		"5.10.0-21-amd64":    {5, 10},
		"4.19.0":             {4, 19},
		"5.15.0-1034-aws+xx": {5, 15},
		"garbage":            {0, 0},
	} {
		if major, minor := kernelVersion(in); major != want[0] || minor != want[1] {
			t.Errorf("kernelVersion(%q) = %d.%d, want %d.%d", in, major, minor, want[0], want[1])
		}
	}
}

func readComm(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// loadBias returns how far the child's executable is mapped from this
// process's: the child runs the same binary, so its addresses minus the bias
// can be symbolized with runtime.FuncForPC here, position-independent or not.
func loadBias(t *testing.T, pid int) uint64 {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	self, err := mappingStart("/proc/self/maps", exe)
	if err != nil {
		t.Fatal(err)
	}
	child, err := mappingStart(fmt.Sprintf("/proc/%d/maps", pid), exe)
	if err != nil {
		t.Fatal(err)
	}
	return child - self
}

// mappingStart returns the start of the file-offset-0 mapping of exe.
func mappingStart(maps, exe string) (uint64, error) {
	f, err := os.Open(maps)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || strings.Trim(fields[2], "0") != "" {
			continue
		}
		start, _, _ := strings.Cut(fields[0], "-")
		return strconv.ParseUint(start, 16, 64)
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no mapping of " + exe + " in " + maps)
}

func hasSuffixIn(names map[string]bool, suffix string) bool {
	for n := range names {
		if strings.HasSuffix(n, suffix) {
			return true
		}
	}
	return false
}
