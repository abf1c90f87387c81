// Command goprog is run by the symbolize tests: it reports the addresses
// of its own functions, as the runtime sees them, then runs main.spin in
// a loop until killed.
//
// It imports little, so that building it (once per build mode) stays quick
// on a cold build cache.
package main

import (
	"runtime"
	"strconv"
	"syscall"
)

var (
	pcs  []uintptr // runtime.Callers from a call made inside the inlined helper
	sink int
)

//go:noinline
func spin(n int) int {
	s := 0
	for i := -1; i < n; i++ {
		s += helper(i)
	}
	return s
}

// helper is inlined into spin.
func helper(i int) int {
	if i < 0 {
		record()
	}
	return i * 3
}

//go:noinline
func record() {
	if pcs != nil {
		return
	}
	buf := make([]uintptr, 64)
	pcs = buf[:runtime.Callers(2, buf)]
}

// main prints one line of tab-separated fields: the entry of main.spin,
// its file and line; the number of PCs in pcs, and each; the number of
// frames runtime.CallersFrames makes of them, and each frame's function,
// file and line.
func main() {
	sink += spin(10)
	// pcs[0] is in spin's code; the entry is that of the physical function.
	entry := runtime.FuncForPC(pcs[0]).Entry()
	file, line := runtime.FuncForPC(entry).FileLine(entry)
	out := []string{hex(entry), file, strconv.Itoa(line), strconv.Itoa(len(pcs))}
	for _, pc := range pcs {
		out = append(out, hex(pc))
	}
	var frames []string
	for fs := runtime.CallersFrames(pcs); ; {
		f, more := fs.Next()
		frames = append(frames, f.Function, f.File, strconv.Itoa(f.Line))
		if !more {
			break
		}
	}
	out = append(out, strconv.Itoa(len(frames)/3))
	out = append(out, frames...)
	var b []byte
	for i, s := range out {
		if i > 0 {
			b = append(b, '\t')
		}
		b = append(b, s...)
	}
	syscall.Write(1, append(b, '\n'))
	for {
		sink += spin(1000)
		// Pausing between rounds leaves the CPUs to the tests' own builds.
		syscall.Nanosleep(&syscall.Timespec{Nsec: 1e6}, nil)
	}
}

func hex(pc uintptr) string { return strconv.FormatUint(uint64(pc), 16) }
