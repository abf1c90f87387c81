// Command corpusgen records the benchmark corpus: real Go CPU and heap
// profiles (runtime/pprof) of a program that burns CPU and allocates in the
// 50 generated functions of funcs.go along varied call paths.
//
// For each of -windows windows of -window each, it runs -workers goroutines
// and writes <out>/cpu-NN.pb.gz (pprof.StartCPUProfile over the window) and,
// at the window's end, <out>/heap-NN.pb.gz (the heap profile, whose alloc_*
// values count since the process started and whose inuse_* values are the
// heap at that moment). Window j calls six root functions drawn with seed j,
// with weights 32, 16, 8, 4, 2 and 1, so that windows differ the way a
// service's profiles differ from minute to minute.
//
//	go run ./bench/corpusgen -out bench/corpus            # 20 windows of 10 s
//	go run ./bench/corpusgen -out /tmp/c -windows 3 -window 1s
//
// Regenerating gives similar, not identical, profiles: CPU profiles are
// sampled and depend on the machine.
package main

//go:generate go run ./gen -o funcs.go

import (
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"
)

// state is one worker's working set, passed down every call.
type state struct {
	seed     uint64
	rng      uint64
	maxDepth int // calls go no deeper than this
	buf      []byte
	ints     []int
	m        map[uint64]uint64
	text     []byte
	keep     [][]byte // retained allocations: the in-use heap
	tmp      any      // short-lived allocations, kept here so that they escape
}

// node is the element of the linked lists some functions allocate.
type node struct {
	next *node
	v    uint64
}

func newState(seed uint64) *state {
	s := &state{seed: seed, rng: seed * 0x2545f4914f6cdd1d, buf: make([]byte, 2048),
		ints: make([]int, 1024), m: make(map[uint64]uint64), keep: make([][]byte, 8192)}
	for i := range s.buf {
		s.buf[i] = byte(s.rnd())
	}
	return s
}

// rnd is splitmix64: cheap, and the same sequence for the same seed.
func (s *state) rnd() uint64 {
	s.rng += 0x9e3779b97f4a7c15
	z := s.rng
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// pick chooses which of n callees to call, favouring the first: 0..n-1,
// or n (call none) one time in twenty.
func (s *state) pick(n int) int {
	r := s.rnd() % 100
	switch {
	case r < 5:
		return n
	case n == 1:
		return 0
	case n == 2:
		if r < 65 {
			return 0
		}
		return 1
	default:
		if r < 55 {
			return 0
		} else if r < 82 {
			return 1
		}
		return 2
	}
}

// sink keeps the results alive, so that the compiler keeps the work.
var sink atomic.Uint64

// runWindow burns CPU for dur in workers goroutines, with the roots and
// depths of window j.
func runWindow(j int, dur time.Duration, workers int) {
	rng := rand.New(rand.NewPCG(uint64(j), 0xc0de))
	var roots [6]int
	for r := range roots {
		roots[r] = rng.IntN(len(funcs))
	}
	weights := [6]uint64{32, 16, 8, 4, 2, 1} // sum 63
	maxDepth := 4 + rng.IntN(6)
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			s := newState(uint64(j*1000 + w + 1))
			var acc uint64
			for n := 0; n%16 != 0 || time.Now().Before(deadline); n++ {
				x := s.rnd() % 63
				r := 0
				for x >= weights[r] {
					x -= weights[r]
					r++
				}
				s.maxDepth = 2 + int(s.rnd()%uint64(maxDepth-1))
				acc += funcs[roots[r]](s, 0)
			}
			sink.Add(acc)
		})
	}
	wg.Wait()
}

func main() {
	out := flag.String("out", "bench/corpus", "output directory")
	windows := flag.Int("windows", 20, "number of windows, each giving a CPU and a heap profile")
	window := flag.Duration("window", 10*time.Second, "length of one window")
	workers := flag.Int("workers", 2, "CPU-burning goroutines")
	flag.Parse()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	runWindow(0, 500*time.Millisecond, *workers) // warm up, not recorded
	for j := range *windows {
		cpu := filepath.Join(*out, fmt.Sprintf("cpu-%02d.pb.gz", j))
		heap := filepath.Join(*out, fmt.Sprintf("heap-%02d.pb.gz", j))
		if err := record(j, cpu, heap, *window, *workers); err != nil {
			log.Fatal(err)
		}
	}
}

// record runs window j under the CPU profiler and writes both profiles.
func record(j int, cpuPath, heapPath string, window time.Duration, workers int) error {
	f, err := os.Create(cpuPath)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return fmt.Errorf("start CPU profile: %w", err)
	}
	runWindow(j, window, workers)
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", cpuPath, err)
	}
	h, err := os.Create(heapPath)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := pprof.Lookup("heap").WriteTo(h, 0); err != nil {
		return fmt.Errorf("write %s: %w", heapPath, err)
	}
	if err := h.Close(); err != nil {
		return fmt.Errorf("write %s: %w", heapPath, err)
	}
	for _, p := range []string{cpuPath, heapPath} {
		if st, err := os.Stat(p); err == nil {
			log.Printf("%s: %d bytes", p, st.Size())
		}
	}
	return nil
}
