package storage

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// run plays ops random steps on the schedule's store, then checks the
// crash images taken on the way and the store itself, each opened again
// after the faults are gone.
func (s *faultSchedule) run(ops int) {
	fullFor := 0
	for range ops {
		s.tick()
		switch r := s.rng.IntN(100); {
		case r < 35:
			s.step = "append"
			for range 1 + s.rng.IntN(3) {
				s.appendOne()
			}
		case r < 58:
			s.step = "cut"
			s.maintain("flush", s.db.Flush)
		case r < 70:
			s.step = "compaction"
			armed, taken := s.rng.IntN(3) == 0, len(s.images)
			if armed {
				// A crash at any call of a compaction: most calls
				// are a cut's, which the other arms hit more.
				k := 1 + s.rng.IntN(40)
				s.disk.armCrash(k)
				s.logf("arm: crash before the call %d from now", k)
			}
			s.maintain("compact", s.db.Compact)
			if armed && len(s.images) == taken {
				s.disk.armCrash(0) // the compaction was shorter
			}
		case r < 75:
			k, v := 1+s.rng.IntN(30), s.rng.IntN(6)
			s.disk.armFail(k, v)
			s.logf("arm: fail the call %d from now, variant %d", k, v)
		case r < 80:
			// Rare kinds of call (a directory's fsync, a rename) are
			// as likely to fail as the many writes.
			op, n, v := faultOps[s.rng.IntN(len(faultOps))], 1+s.rng.IntN(12), s.rng.IntN(6)
			s.disk.armFailOf(op, n, v)
			s.logf("arm: fail the %s %d from now, variant %d", op, n, v)
		case r < 83:
			k := 1 + s.rng.IntN(60)
			s.disk.armCrash(k)
			s.logf("arm: crash before the call %d from now", k)
		case r < 86:
			op, n := faultOps[s.rng.IntN(len(faultOps))], 1+s.rng.IntN(12)
			s.disk.armCrashOf(op, n)
			s.logf("arm: crash before the %s %d from now", op, n)
		case r < 90:
			// The disk fills up for a few steps, until space is
			// freed.
			fullFor = 1 + s.rng.IntN(5)
			s.disk.setFull(true, s.rng.IntN(2))
			s.logf("disk full for %d steps", fullFor)
			continue
		case r < 94:
			s.step = "close and open"
			err := s.db.Close()
			s.logf("close: %v", err)
			s.reopen("Close")
		case r < 98:
			s.step = "open"
			s.logf("crash: abandon the store")
			s.abandon()
			s.reopen("a crash")
		default:
			s.check(s.db, "live", s.acked, never)
		}
		if s.imageErr != nil {
			s.fatalf("crash image: %v", s.imageErr)
		}
		if fullFor > 0 {
			if fullFor--; fullFor == 0 {
				s.disk.setFull(false, 0)
				s.logf("disk no longer full")
			}
		}
	}
	s.check(s.db, "live, at the end", s.acked, never)
	s.stats = faultStats{faults: s.disk.firedCount(), blocks: s.events.count("block written"),
		merges: s.events.count("compaction done"), images: map[string]int{}}
	for _, img := range s.images {
		s.stats.images[img.step]++
	}
	s.disk.disarm()
	for i, img := range s.images {
		acked := func(k int) bool { return k < len(img.acked) && img.acked[k] }
		// The Append running at the crash may have reached the log.
		inflight := func(k int) bool { return k == img.inflight }
		s.logf("crash image %d, taken %s", i, img.at)
		s.recoverAndCheck(img.dir, fmt.Sprintf("crash image %d (taken %s)", i, img.at), acked, inflight, s.rng.IntN(2) == 0)
		os.RemoveAll(img.dir)
	}
	s.abandon()
	s.recoverAndCheck(s.dir, "the store at the end", s.acked, never, s.rng.IntN(2) == 0)
}

var (
	diskFaultSeed      = flag.Int("diskfault.seed", -1, "run only this seed of TestDiskFaultsRandom")
	diskFaultSchedules = flag.Int("diskfault.schedules", 0, "run this many schedules of TestDiskFaultsRandom, from -diskfault.first")
	diskFaultFirst     = flag.Int("diskfault.first", 0, "the first seed of -diskfault.schedules")
	diskFaultOps       = flag.Int("diskfault.ops", 40, "steps per schedule of TestDiskFaultsRandom")
)

// TestDiskFaultsRandom runs seeded random schedules of appends, cuts,
// compactions, restarts and crashes on a disk that fails chosen calls
// (ENOSPC part way through a file, short writes, failed fsyncs, renames,
// removals and directory fsyncs) and is full for stretches. A crash is
// simulated twice over: by abandoning the store without Close and opening
// what is on disk, and by copying the disk aside just before a chosen call
// (between a file's write and its rename, between a block's upload and the
// log's truncation, between a compacted block and its sources' deletion)
// and opening the copy. After each, the store must open, and hold every
// acknowledged profile exactly once, with its value, and no profile whose
// Append failed.
func TestDiskFaultsRandom(t *testing.T) {
	// Seeds 0 to 1499, or fewer on a slow disk: the run stops at its time
	// budget, once it has done at least minimum schedules. Creating and
	// removing files costs ten times more on some disks than on others,
	// and the suite's time must stay bounded on all of them; which seeds
	// ran is logged, and a failure names its seed.
	schedules, minimum, budget := 1500, 300, 15*time.Second
	if testing.Short() {
		schedules, minimum, budget = 150, 10, 2*time.Second
	}
	first, ops := 0, *diskFaultOps
	if *diskFaultSchedules > 0 {
		first, schedules, minimum = *diskFaultFirst, *diskFaultSchedules, *diskFaultSchedules
	}
	if *diskFaultSeed >= 0 {
		first, schedules, minimum = *diskFaultSeed, 1, 1
	}
	start := time.Now()
	parent := t.TempDir()
	// The schedules are independent, and mostly wait on the file
	// system: they run on every core.
	seeds := make(chan int)
	var (
		mu       sync.Mutex
		total    = faultStats{images: map[string]int{}}
		failures []string
	)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for seed := range seeds {
				st, failure := runSchedule(t, parent, seed, ops)
				mu.Lock()
				total.add(st)
				if failure != "" {
					failures = append(failures, failure)
				}
				mu.Unlock()
			}
		})
	}
	ran := 0
	for seed := first; seed < first+schedules; seed++ {
		mu.Lock()
		stop := len(failures) > 0
		mu.Unlock()
		if stop || (ran >= minimum && time.Since(start) > budget) {
			break
		}
		seeds <- seed
		ran++
	}
	close(seeds)
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	if t.Failed() {
		return
	}
	t.Logf("seeds %d to %d in %v: %d faults injected; %d blocks cut, %d compactions; crash images taken during %v",
		first, first+ran-1, time.Since(start).Round(time.Millisecond), total.faults, total.blocks, total.merges, total.images)
	// A run that never got as far as a compaction, or a crash in one,
	// would prove nothing about them. (A few seeds alone may not.)
	if ran >= 100 && (total.faults == 0 || total.merges == 0 || total.images["cut"] == 0 || total.images["compaction"] == 0) {
		t.Fatal("the schedules did not reach every kind of fault: the test tests less than it says")
	}
}

// faultStats says how much of the store's work a schedule reached.
type faultStats struct {
	faults, blocks, merges int
	// images counts crash images by the step they were taken in.
	images map[string]int
}

func (a *faultStats) add(b faultStats) {
	a.faults, a.blocks, a.merges = a.faults+b.faults, a.blocks+b.blocks, a.merges+b.merges
	for k, n := range b.images {
		a.images[k] += n
	}
}

// runSchedule runs the schedule of one seed and returns what it reached,
// and why it failed, if it did.
func runSchedule(t *testing.T, parent string, seed, ops int) (stats faultStats, failure string) {
	s := &faultSchedule{
		t: t, random: true, seed: uint64(seed), rng: rand.New(rand.NewPCG(uint64(seed), 0x5eed)),
		dir: filepath.Join(parent, fmt.Sprint(seed)), disk: &faultDisk{},
		now: timeAt(t0), cumRaw: map[string]int64{}, inflight: -1,
	}
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(scheduleFailure)
			if !ok {
				panic(r)
			}
			failure = string(f)
		}
		if s.db != nil {
			s.abandon()
		}
		os.RemoveAll(s.dir)
		os.RemoveAll(s.dir + "-crash")
	}()
	s.opts = testOptions()
	s.opts.Decode = decodeFaultPayload
	s.opts.WALSync = s.rng.IntN(2) == 0
	s.opts.WALSegmentBytes = int64(64 + s.rng.IntN(256))
	s.opts.CompactionRanges = []time.Duration{4 * time.Second, 16 * time.Second}
	s.opts.Now = func() time.Time { return s.now }
	s.disk.onCrash = s.takeImage
	db, err := s.open(s.dir, s.disk)
	if err != nil {
		s.fatalf("Open: %v", err)
	}
	s.db = db
	s.run(ops)
	return s.stats, ""
}
