package agent

import (
	"github.com/hearth-profiler/hearth/internal/agent/bpf"
	"github.com/hearth-profiler/hearth/internal/agent/symbolize"
)

// Sample is one distinct stack the kernel sampler saw, with how many times
// it saw it since the last drain (see bpf.Sample). The agent does not keep
// its slices.
type Sample = bpf.Sample

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

// Frame is one function of a symbolized address (see symbolize.Frame).
// A frame that could not be named has a Reason, and a Function that is
// either "" or a stand-in such as "module+0xoffset", which the agent keeps.
type Frame = symbolize.Frame

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
