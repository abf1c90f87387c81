package agent

// Sample is one distinct stack the kernel sampler saw, with how many times
// it saw it since the last drain. It mirrors what internal/agent/bpf
// provides, so that this package depends on no kernel code.
type Sample struct {
	// TGID is the process (thread group) ID; PID is the thread's.
	TGID, PID uint32
	// Comm is the thread's name at sampling time. It names the process
	// when the process exits before /proc could be read.
	Comm string
	// User and Kernel are the return addresses of the user and kernel
	// stacks, leaf first; the first is the sampled instruction itself.
	// Either may be empty. The agent does not keep the slices.
	User, Kernel []uint64
	// LeafReturn is the word at the user stack pointer when the sample
	// interrupted user code and the word could be a return address, else
	// 0. If the leaf function (User[0]) has pushed nothing yet, it is the
	// return address into the leaf's caller, which frame-pointer
	// unwinding leaves out of User; Symbolizer.LeafFrameless tells.
	LeafReturn uint64
	// Count is how many times this stack was sampled.
	Count uint64
}

// SamplerStats says what the sampler did since the previous drain.
type SamplerStats struct {
	// Samples is the number of samples returned, the sum of their Count.
	Samples uint64
	// Lost counts samples the kernel side could not record, by reason
	// ("stack_collision", "count_map_full", ...). The share lost is the
	// sum of Lost over Samples plus that sum.
	Lost map[string]uint64
}

// Sampler samples stacks of every process on the host at a fixed
// frequency, in the kernel.
//
// Drain returns the samples taken since the previous Drain, and empties the
// kernel's maps so that they stay small. An error says that this drain
// failed; the next may succeed. Drain is called from one goroutine only.
type Sampler interface {
	Drain() ([]Sample, SamplerStats, error)
	Close() error
}

// Frame is one function of a symbolized address. It mirrors what
// internal/agent/symbolize provides.
type Frame struct {
	// Function is the function's name. A frame that could not be named
	// has a Reason, and here either "" or a stand-in such as
	// "module+0xoffset", which the agent keeps.
	Function string
	File     string
	Line     int
	// Inlined says that this function was inlined into the next frame of
	// the same address.
	Inlined bool
	// Module is the binary the address falls in (its path or base name),
	// "[kernel.kallsyms]" or a kernel module's name; "" or "[unknown]"
	// when no mapping holds it.
	Module string
	// Addr is the address the frame was asked for.
	Addr    uint64
	BuildID string
	// Reason is "" when Function names the function, else why it does
	// not: "no symbols", "binary gone", "no mapping", ...
	Reason string
}

// Symbolizer names the addresses of sampled stacks.
//
// User and Kernel take one stack, leaf first, as the sampler gives it,
// and return for each address its frames innermost first: the inlined
// functions, then the function that holds the instruction (pprof's order
// of a location's lines). Every address but the first is a return address
// (the instruction after a call), which the symbolizer looks up at addr-1
// so that the lookup lands in the call and gives the call's line; the
// first is where the CPU was, looked up as is.
//
// LeafFrameless says whether ret, a sample's LeafReturn, is the return
// address into the caller of the function holding pc, the sample's leaf:
// the function has pushed nothing at pc and ret follows a call. It answers
// false when it cannot tell.
//
// User and LeafFrameless are called with the process's TGID. Forget says
// that a process has exited (or its PID was reused), so that its mappings
// can be dropped. The agent calls these from one goroutine only.
type Symbolizer interface {
	User(pid uint32, stack []uint64) [][]Frame
	Kernel(stack []uint64) [][]Frame
	LeafFrameless(pid uint32, pc, ret uint64) bool
	Forget(pid uint32)
}
