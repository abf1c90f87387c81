package agent

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// BenchmarkInterval measures the agent's own work for one interval of a
// busy host, without the kernel: five drains of 50 processes with 40
// distinct stacks of 30 frames each, seen in every drain, their addresses
// drawn from 2,000 (the code of one service's binary), symbolized by a
// fake; then one profile per process built, encoded and queued.
func BenchmarkInterval(b *testing.B) {
	const procs, stacksPerProc, depth = 50, 40, 30
	root := copyProc(b, "100")
	for i := 1; i < procs; i++ {
		if err := os.CopyFS(filepath.Join(root, strconv.Itoa(100+i)), os.DirFS(filepath.Join(root, "100"))); err != nil {
			b.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	code := make([]uint64, 2000)
	for i := range code {
		code[i] = 0x400000 + rng.Uint64N(1<<20)
	}
	var drain []Sample
	for p := range procs {
		for range stacksPerProc {
			user := make([]uint64, depth)
			for i := range user {
				user[i] = code[rng.IntN(len(code))]
			}
			kernel := []uint64{0xffffffff81000000 + rng.Uint64N(1<<16), 0xffffffff81100000}
			drain = append(drain, Sample{TGID: uint32(100 + p), PID: uint32(100 + p), Comm: "worker", User: user, Kernel: kernel, Count: 1 + rng.Uint64N(4)})
		}
	}
	sampler := &fakeSampler{}
	cfg := testConfig(&testing.T{}, "http://127.0.0.1:1", root)
	cfg.MaxBufferBytes = 1 << 30
	a, err := New(cfg, sampler, newFakeSymbolizer(), nil)
	if err != nil {
		b.Fatal(err)
	}
	a.interval, a.start = 1, time.Now()
	b.ReportAllocs()
	var bytes, intervals int
	for b.Loop() {
		for range 5 {
			sampler.add(drain, nil)
			a.drain()
		}
		a.endInterval(time.Now())
		for _, it := range a.pusher.queue {
			bytes += len(it.data)
		}
		intervals++
		a.pusher.queue = a.pusher.queue[:0]
		a.pusher.queuedBytes = 0
	}
	b.ReportMetric(float64(bytes)/float64(intervals), "pushed-bytes/op")
}
