//go:build linux && (amd64 || arm64)

package bpf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// maxStackDepth is MAX_STACK_DEPTH in profile.bpf.c.
const maxStackDepth = 127

// noStack is NO_STACK in profile.bpf.c.
const noStack = -1

// countBatch is how many count-map entries one batch syscall moves. Larger
// batches save syscalls; the hash map needs at least the size of its largest
// bucket, which a few thousand always exceeds.
const countBatch = 4096

// Profiler samples every online CPU until Close. Its methods may be called
// from any goroutine.
type Profiler struct {
	mu     sync.Mutex
	objs   profileObjects
	counts [2]*ebpf.Map
	stacks [2]*ebpf.Map
	// fence and fenceInner implement "wait until samples in flight are
	// done"; see Drain.
	fence, fenceInner *ebpf.Map
	events            []int // perf event fds, one per CPU
	runStats          io.Closer
	slot              uint32 // the slot the program writes to
	depth             int    // frames per stack map value
	lastRun           ebpf.ProgramStats
	drains            int
	closed            bool
}

// Open loads the BPF program and attaches it to a software CPU-clock event
// on every online CPU. CPUs brought online later are not sampled. Open needs
// what Check checks; when it fails, Check tells what is missing.
func Open(opts Options) (p *Profiler, err error) {
	hz := opts.FrequencyHz
	if hz == 0 {
		hz = DefaultFrequencyHz
	}
	if hz < 0 || hz > 10000 {
		return nil, fmt.Errorf("bpf: frequency %d Hz out of range 1..10000", hz)
	}
	stackEntries := orDefault(opts.StackMapEntries, DefaultStackMapEntries)
	countEntries := orDefault(opts.CountMapEntries, DefaultCountMapEntries)
	if stackEntries < 0 || countEntries < 0 || stackEntries > 1<<24 || countEntries > 1<<24 {
		return nil, fmt.Errorf("bpf: map sizes %d (stacks) and %d (counts) out of range 1..%d", stackEntries, countEntries, 1<<24)
	}
	exclude := opts.ExcludeTGID
	if exclude == 0 {
		exclude = uint32(os.Getpid())
	}

	if err := raiseMemlock(); err != nil {
		return nil, err
	}

	spec, err := loadProfile()
	if err != nil {
		return nil, err
	}
	if err := spec.Variables[profileVarExcludeTgid].Set(exclude); err != nil {
		return nil, fmt.Errorf("bpf: set excluded process: %w", err)
	}
	// The kernel refuses stack maps deeper than kernel.perf_event_max_stack.
	depth := maxStackDepth
	if n, err := readSysctlInt("kernel/perf_event_max_stack"); err == nil && n > 0 && n < depth {
		depth = n
	}
	for _, name := range []string{profileMapStacks0, profileMapStacks1} {
		spec.Maps[name].MaxEntries = uint32(stackEntries)
		spec.Maps[name].ValueSize = uint32(depth * 8)
	}
	for _, name := range []string{profileMapCounts0, profileMapCounts1} {
		spec.Maps[name].MaxEntries = uint32(countEntries)
	}

	p = &Profiler{depth: depth}
	defer func() {
		if err != nil {
			p.closeAll()
		}
	}()
	if err := spec.LoadAndAssign(&p.objs, nil); err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("bpf: load: %+v", verr)
		}
		return nil, fmt.Errorf("bpf: load: %w (bpf.Check tells what is missing)", err)
	}
	p.counts = [2]*ebpf.Map{p.objs.Counts0, p.objs.Counts1}
	p.stacks = [2]*ebpf.Map{p.objs.Stacks0, p.objs.Stacks1}

	p.fenceInner, err = ebpf.NewMap(fenceInnerSpec())
	if err != nil {
		return nil, fmt.Errorf("bpf: create fence map: %w", err)
	}
	p.fence, err = ebpf.NewMap(&ebpf.MapSpec{
		Name:       "hearth_fence",
		Type:       ebpf.ArrayOfMaps,
		KeySize:    4,
		ValueSize:  4,
		MaxEntries: 1,
		InnerMap:   fenceInnerSpec(),
	})
	if err != nil {
		return nil, fmt.Errorf("bpf: create fence map: %w", err)
	}

	if opts.RunStats {
		p.runStats, err = ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
		if err != nil {
			return nil, fmt.Errorf("bpf: enable run-time statistics (needs Linux 5.8): %w", err)
		}
	}
	if s, err := p.objs.ProfileCpu.Stats(); err == nil {
		p.lastRun = *s
	}

	cpus, err := onlineCPUs()
	if err != nil {
		return nil, fmt.Errorf("bpf: list online CPUs: %w", err)
	}
	period := uint64(time.Second) / uint64(hz)
	for _, cpu := range cpus {
		fd, err := attachCPU(cpu, period, p.objs.ProfileCpu.FD())
		if errors.Is(err, unix.ENODEV) {
			continue // went offline since we listed it
		}
		if err != nil {
			return nil, fmt.Errorf("bpf: CPU %d: %w (bpf.Check tells what is missing)", cpu, err)
		}
		p.events = append(p.events, fd)
	}
	if len(p.events) == 0 {
		return nil, errors.New("bpf: no online CPU to sample")
	}
	return p, nil
}

func orDefault(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

// fenceInnerSpec describes the smallest map an ARRAY_OF_MAPS can hold.
func fenceInnerSpec() *ebpf.MapSpec {
	return &ebpf.MapSpec{Name: "hearth_fence_in", Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1}
}

// attachCPU opens a CPU-clock event on cpu for every task (pid -1) that
// overflows every period nanoseconds, and attaches prog to it. A CPU-wide
// clock ticks whether the CPU is busy or idle, so that samples of a process
// measure its share of the CPU; ticks of the idle task end at the program's
// first check.
func attachCPU(cpu int, period uint64, prog int) (int, error) {
	attr := unix.PerfEventAttr{
		Type:   unix.PERF_TYPE_SOFTWARE,
		Config: unix.PERF_COUNT_SW_CPU_CLOCK,
		Size:   uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
		Sample: period,
		Bits:   unix.PerfBitDisabled,
	}
	fd, err := unix.PerfEventOpen(&attr, -1, cpu, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("perf_event_open: %w", err)
	}
	// The ioctl, rather than a BPF link, works on every kernel since 4.9;
	// closing the event detaches the program.
	if err := unix.IoctlSetInt(fd, unix.PERF_EVENT_IOC_SET_BPF, prog); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("attach BPF program to perf event: %w", err)
	}
	if err := unix.IoctlSetInt(fd, unix.PERF_EVENT_IOC_ENABLE, 0); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("enable perf event: %w", err)
	}
	return fd, nil
}

// Drain returns the samples since the previous Drain (or Open) and clears
// them from the kernel.
//
// The kernel side writes to one of two slots, each with its own count map,
// stack map and lost counters. Drain switches the program to the other slot,
// waits until no sample can still be writing to the old one, and then reads
// and empties the old slot at leisure: no sample is lost or counted twice,
// and a stack id can never be deleted while a count still refers to it,
// which reading and deleting under a running program could not promise.
// Sampling goes on meanwhile.
//
// The wait uses the one guarantee user space has about running BPF programs:
// an update of an ARRAY_OF_MAPS returns only after an RCU grace period, when
// every program that started before it has finished (the kernel's
// maybe_wait_bpf_programs). A perf-event program runs within an RCU read-side
// section, so updating the otherwise unused fence map is that wait. It takes
// a few milliseconds; Drain is meant to run every few seconds.
func (p *Profiler) Drain() ([]Sample, Stats, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, Stats{}, errors.New("bpf: Drain on a closed Profiler")
	}

	old := p.slot
	if err := p.objs.ActiveSlot.Put(uint32(0), old^1); err != nil {
		return nil, Stats{}, fmt.Errorf("bpf: switch slot: %w", err)
	}
	p.slot = old ^ 1
	if err := p.fence.Put(uint32(0), p.fenceInner); err != nil {
		// The old slot may still be written to. Its data stays and is
		// returned by the Drain after next, which switches back to it.
		return nil, Stats{}, fmt.Errorf("bpf: wait for samples in flight: %w", err)
	}

	stats := Stats{Lost: make(map[string]uint64, 3)}
	keys, counts, err := p.takeCounts(p.counts[old])
	if err != nil {
		return nil, Stats{}, err
	}
	if err := p.takeLost(old, stats.Lost); err != nil {
		return nil, Stats{}, err
	}
	p.drains++
	sweep := p.drains%sweepEvery == 0
	for _, n := range stats.Lost {
		sweep = sweep || n > 0
	}
	stacks, err := p.takeStacks(p.stacks[old], keys, sweep)
	if err != nil {
		return nil, Stats{}, err
	}

	samples := make([]Sample, 0, len(keys))
	for i, k := range keys {
		user, okU := stacks[k.UserStackId]
		kernel, okK := stacks[k.KernelStackId]
		if !okU || !okK {
			// Cannot happen: the stacks of a counted sample stay in
			// the slot until this Drain reads them. Counted as an
			// error rather than returned with a made-up stack.
			stats.Lost[LostStackError] += counts[i]
			continue
		}
		samples = append(samples, Sample{
			TGID:       k.Tgid,
			PID:        k.Pid,
			Comm:       commString(k.Comm),
			User:       user,
			Kernel:     kernel,
			LeafReturn: k.LeafReturn,
			Count:      counts[i],
		})
		stats.Samples += counts[i]
	}

	if s, err := p.objs.ProfileCpu.Stats(); err == nil {
		stats.ProgRunCount = s.RunCount - p.lastRun.RunCount
		stats.ProgRunTimeNs = uint64(s.Runtime - p.lastRun.Runtime)
		p.lastRun = *s
	}
	return samples, stats, nil
}

// takeCounts reads and deletes every entry of a count map nothing writes to.
func (p *Profiler) takeCounts(m *ebpf.Map) ([]profileCountKey, []uint64, error) {
	var keys []profileCountKey
	var counts []uint64
	kbuf := make([]profileCountKey, countBatch)
	vbuf := make([]uint64, countBatch)
	var cursor ebpf.MapBatchCursor
	for {
		n, err := m.BatchLookupAndDelete(&cursor, kbuf, vbuf, nil)
		keys = append(keys, kbuf[:n]...)
		counts = append(counts, vbuf[:n]...)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return keys, counts, nil
		}
		if errors.Is(err, ebpf.ErrNotSupported) {
			break // kernels before 5.6: one entry at a time
		}
		if err != nil {
			return nil, nil, fmt.Errorf("bpf: read counts: %w", err)
		}
	}
	keys, counts = keys[:0], counts[:0]
	var k profileCountKey
	var v uint64
	it := m.Iterate()
	for it.Next(&k, &v) {
		keys = append(keys, k)
		counts = append(counts, v)
	}
	if err := it.Err(); err != nil {
		return nil, nil, fmt.Errorf("bpf: read counts: %w", err)
	}
	for i := range keys {
		if err := m.Delete(&keys[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil, nil, fmt.Errorf("bpf: clear counts: %w", err)
		}
	}
	return keys, counts, nil
}

// takeLost adds the slot's lost counters, summed over CPUs, to lost and
// zeroes them.
func (p *Profiler) takeLost(slot uint32, lost map[string]uint64) error {
	reasons := [...]struct {
		reason profileLostReason
		name   string
	}{
		{profileLostReasonLOST_STACK_COLLISION, LostStackCollision},
		{profileLostReasonLOST_STACK_ERROR, LostStackError},
		{profileLostReasonLOST_COUNT_MAP_FULL, LostCountMapFull},
	}
	var perCPU []uint64
	for _, r := range reasons {
		index := slot*uint32(profileLostReasonLOST_REASONS) + uint32(r.reason)
		if err := p.objs.Lost.Lookup(index, &perCPU); err != nil {
			return fmt.Errorf("bpf: read lost counts: %w", err)
		}
		for i, n := range perCPU {
			lost[r.name] += n
			perCPU[i] = 0
		}
		if err := p.objs.Lost.Put(index, perCPU); err != nil {
			return fmt.Errorf("bpf: clear lost counts: %w", err)
		}
	}
	return nil
}

// takeStacks reads the stacks that keys refer to and deletes them: two
// syscalls per stack, the map having no batch operations. A stack no key
// refers to is left only when its sample was dropped after the stack was
// stored (the kernel stack collided after the user stack went in, or the
// count map was full), and every drop is counted in lost; so the map is
// swept for such stacks, a syscall more per stack, only when the slot lost
// samples, and every sweepEvery drains in case of a cause not foreseen.
// Left, they would fill the map over time.
func (p *Profiler) takeStacks(m *ebpf.Map, keys []profileCountKey, sweep bool) (map[int32][]uint64, error) {
	stacks := map[int32][]uint64{noStack: nil}
	buf := make([]uint64, p.depth)
	take := func(id int32) error {
		if _, seen := stacks[id]; seen {
			return nil
		}
		stacks[id] = nil // missing, unless found below
		err := m.Lookup(uint32(id), buf)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("bpf: read stack %d: %w", id, err)
		}
		n := 0
		for n < len(buf) && buf[n] != 0 {
			n++
		}
		stacks[id] = append(make([]uint64, 0, n), buf[:n]...)
		if err := m.Delete(uint32(id)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("bpf: delete stack %d: %w", id, err)
		}
		return nil
	}
	for _, k := range keys {
		if err := take(k.UserStackId); err != nil {
			return nil, err
		}
		if err := take(k.KernelStackId); err != nil {
			return nil, err
		}
	}
	if sweep {
		var id, next uint32
		err := m.NextKey(nil, &next)
		for ; err == nil; err = m.NextKey(id, &next) {
			id = next
			// Deleting does not disturb the walk: the next key is the
			// next occupied bucket after id, whether id is still there
			// or not.
			if err := m.Delete(id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return nil, fmt.Errorf("bpf: delete stack %d: %w", id, err)
			}
		}
		if !errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil, fmt.Errorf("bpf: list stacks: %w", err)
		}
	}
	// Referenced ids that were not in the map stay nil but must not
	// count as found; NO_STACK is the one legitimate nil.
	for id, s := range stacks {
		if s == nil && id != noStack {
			delete(stacks, id)
		}
	}
	return stacks, nil
}

// sweepEvery is how many drains may pass without sweeping a stack map
// for stacks no sample refers to; see takeStacks.
const sweepEvery = 16

func commString(c [16]int8) string {
	b := unsafe.Slice((*byte)(unsafe.Pointer(&c[0])), len(c))
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// Close stops sampling and frees the kernel objects. Samples since the last
// Drain are discarded.
func (p *Profiler) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	return p.closeAll()
}

func (p *Profiler) closeAll() error {
	var errs []error
	// Events first, so that nothing runs the program while its maps go.
	for _, fd := range p.events {
		if err := unix.Close(fd); err != nil {
			errs = append(errs, err)
		}
	}
	p.events = nil
	for _, c := range []io.Closer{p.fence, p.fenceInner, p.runStats} {
		if c != nil { // a nil *ebpf.Map closes fine
			if err := c.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := p.objs.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// onlineCPUs parses /sys/devices/system/cpu/online, e.g. "0-3,6,8-9".
func onlineCPUs() ([]int, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return nil, err
	}
	return parseCPUList(strings.TrimSpace(string(b)))
}

func parseCPUList(s string) ([]int, error) {
	var cpus []int
	for part := range strings.SplitSeq(s, ",") {
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("CPU list %q: %w", s, err)
		}
		last := first
		if isRange {
			if last, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("CPU list %q: %w", s, err)
			}
		}
		if last < first {
			return nil, fmt.Errorf("CPU list %q: bad range %q", s, part)
		}
		for c := first; c <= last; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

func readSysctlInt(name string) (int, error) {
	b, err := os.ReadFile("/proc/sys/" + name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// raiseMemlock lifts RLIMIT_MEMLOCK on kernels before 5.11, which charge BPF
// maps to it (the stack maps alone exceed the usual 8 MiB); newer kernels
// charge the memory cgroup instead, and the limit is left alone.
func raiseMemlock() error {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return nil
	}
	major, minor := kernelVersion(unix.ByteSliceToString(uts.Release[:]))
	if major > 5 || major == 5 && minor >= 11 {
		return nil
	}
	limit := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &limit); err != nil {
		return fmt.Errorf("bpf: raise RLIMIT_MEMLOCK, which kernels before 5.11 charge BPF maps to (needs CAP_SYS_RESOURCE): %w", err)
	}
	return nil
}

// kernelVersion parses the start of a release such as "6.18.44-fc".
func kernelVersion(release string) (major, minor int) {
	fields := strings.FieldsFunc(release, func(r rune) bool { return r < '0' || r > '9' })
	if len(fields) >= 2 {
		major, _ = strconv.Atoi(fields[0])
		minor, _ = strconv.Atoi(fields[1])
	}
	return major, minor
}
