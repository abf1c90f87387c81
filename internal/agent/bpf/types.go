package bpf

// Defaults of Options.
const (
	// DefaultFrequencyHz samples each CPU 19 times a second: a low rate
	// that costs well under 0.1% of a CPU (see the package documentation),
	// and a prime, so that sampling does not run in step with periodic
	// work such as 10 ms or 100 ms timers.
	DefaultFrequencyHz = 19
	// DefaultStackMapEntries is the size of each of the two stack maps. A
	// value of 127 frames takes about 1 KiB of kernel memory, so the two
	// maps take 33 MiB. Collisions grow with the number of distinct
	// stacks seen between two Drains relative to this size.
	DefaultStackMapEntries = 16384
	// DefaultCountMapEntries is the size of each of the two count maps,
	// about 100 bytes an entry (1.6 MiB a map).
	DefaultCountMapEntries = 16384
)

// Reasons for lost samples, the keys of Stats.Lost.
const (
	// LostStackCollision counts samples whose user or kernel stack hashed
	// to a bucket of the stack map that holds another stack.
	LostStackCollision = "stack_collision"
	// LostStackError counts samples whose stack could not be recorded for
	// another reason, such as a full stack map.
	LostStackError = "stack_error"
	// LostCountMapFull counts samples that found no room in the count map
	// for a new key.
	LostCountMapFull = "count_map_full"
)

// Options configures a Profiler. The zero value is usable.
type Options struct {
	// FrequencyHz is how often each CPU is sampled per second, busy or
	// idle (the software CPU-clock event), at most 10000. 0 means
	// DefaultFrequencyHz.
	FrequencyHz int
	// StackMapEntries is how many distinct stacks, user and kernel
	// together, one interval between two Drains can hold. 0 means
	// DefaultStackMapEntries. The kernel rounds the hash table up to a
	// power of two.
	StackMapEntries int
	// CountMapEntries is how many distinct (process, thread, comm, stacks)
	// keys one interval between two Drains can hold. 0 means
	// DefaultCountMapEntries.
	CountMapEntries int
	// ExcludeTGID is a process whose samples are dropped in the kernel,
	// so that the agent does not profile itself. 0 means the calling
	// process. Process ids are those of the initial PID namespace, so an
	// agent in a container must share the host's (hostPID).
	ExcludeTGID uint32
	// RunStats turns on the kernel's BPF run-time statistics while the
	// Profiler is open, so that Stats reports ProgRunCount and
	// ProgRunTimeNs. The switch is host-wide (like the sysctl
	// kernel.bpf_stats_enabled) and adds two clock reads to every run of
	// every BPF program, so it is off by default.
	RunStats bool
}

// Sample is the number of times one thread was seen on a CPU with one pair
// of stacks since the previous Drain.
type Sample struct {
	// TGID is the process id and PID the thread id, as the initial PID
	// namespace sees them.
	TGID, PID uint32
	// Comm is the thread's name (at most 15 bytes) at the time of the
	// samples.
	Comm string
	// User and Kernel are the stacks' instruction addresses, the leaf
	// (where the CPU was) first; the frames after the leaf are return
	// addresses, so a symbolizer should look up address-1 for them. A
	// stack is nil when the sample has none: a kernel thread has no user
	// stack, a thread interrupted in user mode no kernel stack. Samples
	// of one Drain share the slices of equal stacks; do not modify them.
	User, Kernel []uint64
	// LeafReturn is the word at the user stack pointer when the samples
	// interrupted user code, if it could be a return address into the
	// binary of User[0] (it is in the same 256 MiB); else 0. When the
	// leaf function has pushed nothing yet (a leaf without a frame, or a
	// function before its prologue), it is the return address into the
	// caller, which frame-pointer unwinding skips: User goes from the
	// leaf straight to the caller's caller. Only the leaf's code can tell
	// (see symbolize.Symbolizer.LeafFrameless); in any other function the
	// word is a local variable. Always 0 on arm64, where such a leaf
	// keeps its return address in the link register.
	LeafReturn uint64
	// Count is the number of samples.
	Count uint64
}

// Stats describes one Drain interval.
type Stats struct {
	// Samples is the number of samples returned, the sum of their Count.
	Samples uint64
	// Lost counts samples the kernel side dropped, by reason (the Lost*
	// constants; every reason is present, zero or not). The share of lost
	// samples is the sum of Lost over Samples plus that sum.
	Lost map[string]uint64
	// ProgRunCount and ProgRunTimeNs are how often the BPF program ran in
	// the interval (samples kept, lost and excluded alike) and for how
	// long in total, so that ProgRunTimeNs/ProgRunCount is its in-kernel
	// cost per sample. They are zero unless BPF statistics are enabled
	// (Options.RunStats or kernel.bpf_stats_enabled=1).
	ProgRunCount, ProgRunTimeNs uint64
}
