package agent

import (
	"cmp"
	"fmt"
	"path"
	"time"

	gpprof "github.com/google/pprof/profile"
)

// stack is one distinct stack of a process in an interval: addresses as
// sampled, leaf first, and how many samples hit it.
type stack struct {
	user, kernel []uint64
	count        uint64
}

// frameKey identifies what an address of a stack symbolizes to: the leaf
// is looked up as is and a return address at addr-1 (see Symbolizer), so
// one address can name two different lines.
type frameKey struct {
	addr uint64
	leaf bool
}

// frameStats counts the frames of built profiles, each weighted by the
// samples of its stack: the share of unnamed frames is then the share of
// sampled code that a flame graph cannot name.
type frameStats struct {
	frames  uint64
	unnamed map[string]uint64 // by reason
}

func (fs *frameStats) add(reason string, n uint64) {
	fs.frames += n
	if reason != "" {
		if fs.unnamed == nil {
			fs.unnamed = map[string]uint64{}
		}
		fs.unnamed[reason] += n
	}
}

// Names of frames that stand for something other than an address.
const (
	// noStackName is the one frame of a sample whose stacks are both
	// empty (the unwinder gave up at once): its CPU time still counts.
	noStackName = "[no stack]"
	// reasonNotSymbolized is the reason of an address the symbolizer
	// returned no frame for.
	reasonNotSymbolized = "not symbolized"
	reasonNoStack       = "no stack"
	reasonUnknown       = "unknown"
)

// profileInput is what one process's profile is built from.
type profileInput struct {
	stacks []*stack
	// user and kernel hold the frames of each address of the stacks.
	user, kernel map[frameKey][]Frame
	start        time.Time
	duration     time.Duration
	// periodNanos is the CPU time one sample stands for, 1e9/frequency.
	periodNanos int64
}

// buildProfile makes the CPU profile of one process: one sample per stack,
// with kernel frames as the leaves of user frames, as perf shows them
// (the kernel ran on behalf of the user code that called it), valued
// count × period nanoseconds. It adds the frames it saw to fs.
//
// Frames the symbolizer could not name become functions named
// "module+0xOFFSET (reason)", for example "libfoo.so+0x1a2b (no
// symbols)", with "module+0xOFFSET" (the symbolizer's stand-in, else the
// module and address) as their system name. The reason is in the name
// because the name is what Hearth's flame graph, top table, search and
// stack filters show and match: a user sees at once that a frame is
// unnamed and why (a stripped binary calls for symbols, "binary gone" for
// a process that outlived its file), and can ignore or focus on
// "\(no symbols\)" in a query, with no change to the server or UI. A
// reason kept only in SystemName would be invisible there (they show
// Function.Name), and one in Filename would pose as a source file in
// pprof's listings. The offset in a module is the same in every process
// of a binary, so unnamed frames merge across PIDs by name. The mapping
// keeps the binary and its build ID, so that a later symbolization can
// replace these names.
func buildProfile(in profileInput, fs *frameStats) *gpprof.Profile {
	b := &profileBuilder{
		p: &gpprof.Profile{
			SampleType:        []*gpprof.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
			PeriodType:        &gpprof.ValueType{Type: "cpu", Unit: "nanoseconds"},
			Period:            in.periodNanos,
			DefaultSampleType: "cpu",
			TimeNanos:         in.start.UnixNano(),
			DurationNanos:     int64(in.duration),
		},
		mappings: map[mappingKey]*gpprof.Mapping{},
		// Sized for every user address of the process having a location
		// of its own, the usual case: growing them was a tenth of the
		// time BenchmarkInterval spent building profiles.
		locations:  make(map[locationKey]*builtLocation, len(in.user)),
		functions:  make(map[functionKey]*gpprof.Function, len(in.user)),
		userLocs:   make(map[frameKey]*builtLocation, len(in.user)),
		kernelLocs: map[frameKey]*builtLocation{},
	}
	for _, st := range in.stacks {
		locs := make([]*gpprof.Location, 0, len(st.kernel)+len(st.user))
		for i, a := range st.kernel {
			l := b.location(frameKey{a, i == 0}, in.kernel, b.kernelLocs, true)
			locs = append(locs, l.loc)
			fs.add(l.reason, st.count)
		}
		for i, a := range st.user {
			l := b.location(frameKey{a, i == 0}, in.user, b.userLocs, false)
			locs = append(locs, l.loc)
			fs.add(l.reason, st.count)
		}
		if len(locs) == 0 {
			locs = append(locs, b.noStack())
			fs.add(reasonNoStack, st.count)
		}
		b.p.Sample = append(b.p.Sample, &gpprof.Sample{
			Location: locs,
			Value:    []int64{int64(st.count) * in.periodNanos},
		})
	}
	return b.p
}

type mappingKey struct{ file, buildID string }

// locationKey identifies a location within one profile.
type locationKey struct {
	mapping uint64
	addr    uint64
	leaf    bool
	kernel  bool
}

type functionKey struct{ name, file string }

type builtLocation struct {
	loc *gpprof.Location
	// reason is why the location's function is unnamed; "" when named.
	reason string
}

type profileBuilder struct {
	p          *gpprof.Profile
	mappings   map[mappingKey]*gpprof.Mapping
	locations  map[locationKey]*builtLocation
	functions  map[functionKey]*gpprof.Function
	userLocs   map[frameKey]*builtLocation
	kernelLocs map[frameKey]*builtLocation
	noStackLoc *gpprof.Location
}

// location returns the location of the stack address k, whose frames
// are in frames.
func (b *profileBuilder) location(k frameKey, frames map[frameKey][]Frame, byKey map[frameKey]*builtLocation, kernel bool) *builtLocation {
	if l := byKey[k]; l != nil {
		return l
	}
	fr := frames[k]
	if len(fr) == 0 {
		fr = []Frame{{Addr: k.addr, Reason: reasonNotSymbolized}}
	}
	// The outermost frame is the function that holds the instruction;
	// the others were inlined into it and share its module.
	outer := fr[len(fr)-1]
	addr := cmp.Or(outer.Addr, k.addr)
	var m *gpprof.Mapping
	key := locationKey{addr: addr, leaf: k.leaf, kernel: kernel}
	if outer.Module != "" || outer.BuildID != "" {
		m = b.mapping(outer.Module, outer.BuildID)
		key.mapping = m.ID
	}
	if l := b.locations[key]; l != nil {
		byKey[k] = l
		return l
	}
	loc := &gpprof.Location{ID: uint64(len(b.p.Location) + 1), Mapping: m, Address: addr}
	b.p.Location = append(b.p.Location, loc)
	l := &builtLocation{loc: loc}
	if unnamed(outer) {
		l.reason = cmp.Or(outer.Reason, reasonUnknown)
	}
	for _, f := range fr {
		name, system := f.Function, f.Function
		if unnamed(f) {
			if system == "" {
				system = unnamedName(f.Module, cmp.Or(f.Addr, addr))
			}
			name = system + " (" + cmp.Or(f.Reason, reasonUnknown) + ")"
		}
		loc.Line = append(loc.Line, gpprof.Line{Function: b.function(name, system, f.File), Line: int64(max(f.Line, 0))})
		if m != nil {
			m.HasFunctions = m.HasFunctions || !unnamed(f)
			m.HasFilenames = m.HasFilenames || f.File != ""
			m.HasLineNumbers = m.HasLineNumbers || f.Line > 0
		}
	}
	if m != nil && len(fr) > 1 {
		m.HasInlineFrames = true
	}
	b.locations[key] = l
	byKey[k] = l
	return l
}

// unnamed says whether f lacks a function name: it has a reason, and
// perhaps a stand-in name.
func unnamed(f Frame) bool { return f.Reason != "" || f.Function == "" }

// unnamedName names an address that has no function: the module's base
// name and the address, as perf and pprof write them, or the bare address
// when no module holds it. It is used when the symbolizer gave no
// stand-in name of its own.
func unnamedName(module string, addr uint64) string {
	if module == "" {
		return fmt.Sprintf("0x%x", addr)
	}
	return fmt.Sprintf("%s+0x%x", path.Base(module), addr)
}

func (b *profileBuilder) mapping(file, buildID string) *gpprof.Mapping {
	k := mappingKey{file, buildID}
	if m := b.mappings[k]; m != nil {
		return m
	}
	// Start, Limit and Offset stay 0, unknown: the symbolizer does not
	// give the mapping's range, every location already has its function
	// (so no tool needs to translate addresses to symbolize them), and
	// fixed values keep the server from storing a new mapping per
	// profile.
	m := &gpprof.Mapping{ID: uint64(len(b.p.Mapping) + 1), File: file, BuildID: buildID}
	b.p.Mapping = append(b.p.Mapping, m)
	b.mappings[k] = m
	return m
}

func (b *profileBuilder) function(name, system, file string) *gpprof.Function {
	k := functionKey{name, file}
	if f := b.functions[k]; f != nil {
		return f
	}
	f := &gpprof.Function{ID: uint64(len(b.p.Function) + 1), Name: name, SystemName: system, Filename: file}
	b.p.Function = append(b.p.Function, f)
	b.functions[k] = f
	return f
}

func (b *profileBuilder) noStack() *gpprof.Location {
	if b.noStackLoc == nil {
		b.noStackLoc = &gpprof.Location{
			ID:   uint64(len(b.p.Location) + 1),
			Line: []gpprof.Line{{Function: b.function(noStackName, noStackName, "")}},
		}
		b.p.Location = append(b.p.Location, b.noStackLoc)
	}
	return b.noStackLoc
}
