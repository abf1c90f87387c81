//go:build !(linux && (amd64 || arm64))

package bpf

import (
	"errors"
	"runtime"
)

// errUnsupported is what every entry point returns where the BPF object was
// not built for the platform.
var errUnsupported = errors.New("bpf: the eBPF profiler needs Linux on amd64 or arm64, not " + runtime.GOOS + "/" + runtime.GOARCH)

// Profiler samples every online CPU; on this platform it cannot be opened.
type Profiler struct{}

// Open fails on this platform.
func Open(Options) (*Profiler, error) { return nil, errUnsupported }

// Drain fails on this platform.
func (*Profiler) Drain() ([]Sample, Stats, error) { return nil, Stats{}, errUnsupported }

// Close does nothing on this platform.
func (*Profiler) Close() error { return nil }

// Check reports that this platform has no eBPF profiler.
func Check() error { return errUnsupported }
