package wal

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// faultFS creates segment files whose next operations fail as armed. Each
// armed fault fires once. Sync never reaches the disk: the tests simulate a
// crash of the process (reopening without Close), not of the machine.
type faultFS struct {
	mu sync.Mutex
	// short is how many bytes the failing write writes before writeErr.
	short     int
	writeErr  error
	syncErr   error
	truncErr  error
	createErr error
	files     []*os.File
}

type faultFile struct {
	fs *faultFS
	f  *os.File
}

func (fs *faultFS) Create(path string) (File, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.createErr; err != nil {
		fs.createErr = nil
		return nil, err
	}
	f, err := OSFS{}.Create(path)
	if err != nil {
		return nil, err
	}
	fs.files = append(fs.files, f.(*os.File))
	return &faultFile{fs, f.(*os.File)}, nil
}

// closeAll closes what a simulated crash left open.
func (fs *faultFS) closeAll() {
	for _, f := range fs.files {
		f.Close()
	}
}

func (f *faultFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	err, short := f.fs.writeErr, f.fs.short
	f.fs.writeErr = nil
	f.fs.mu.Unlock()
	if err == nil {
		return f.f.Write(p)
	}
	// write(2) either writes some bytes or fails; a Write that fails
	// wrote less than all of p. (A whole record then an error is what a
	// failed fsync leaves: see TestSyncAndTruncateFail.)
	n, werr := f.f.Write(p[:min(short, len(p)-1)])
	if werr != nil {
		return n, werr
	}
	return n, err
}

func (f *faultFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	err := f.fs.syncErr
	f.fs.syncErr = nil
	return err
}

func (f *faultFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	err := f.fs.truncErr
	f.fs.truncErr = nil
	f.fs.mu.Unlock()
	if err != nil {
		return err
	}
	return f.f.Truncate(size)
}

func (f *faultFile) Close() error { return f.f.Close() }

// checkReplay simulates a crash (the log is reopened without Close) and
// checks that exactly the acknowledged records replay, in order.
func checkReplay(t *testing.T, dir string, acked []string) {
	t.Helper()
	fs := &faultFS{} // whose Sync does not reach the disk: this is a test of crashes of the process
	w, err := Open(dir, nil, Options{FS: fs})
	if err != nil {
		t.Fatalf("Open after the crash: %v", err)
	}
	defer fs.closeAll()
	got := []string{}
	if err := w.Replay(0, func(_ int, p []byte) error {
		got = append(got, string(p))
		return nil
	}); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if d := cmp.Diff(acked, got, cmpopts.EquateEmpty()); d != "" {
		t.Fatalf("replay after the crash (-acknowledged +replayed):\n%s", d)
	}
}

var errNoSpace = fmt.Errorf("write: %w", syscall.ENOSPC)

// TestWriteFailures runs each failure mode, then more writes, then a crash:
// every record whose Log returned nil replays once, in order, and none whose
// Log failed.
func TestWriteFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		arm  func(fs *faultFS)
		sync bool
	}{
		{"ENOSPC mid-record", func(fs *faultFS) { fs.writeErr, fs.short = errNoSpace, 30 }, false},
		{"ENOSPC in the header", func(fs *faultFS) { fs.writeErr, fs.short = errNoSpace, 5 }, false},
		{"EIO", func(fs *faultFS) { fs.writeErr = syscall.EIO }, false},
		{"short write without error", func(fs *faultFS) { fs.writeErr, fs.short = nil, 0 }, false},
		{"fsync", func(fs *faultFS) { fs.syncErr = syscall.EIO }, true},
		{"ENOSPC, then truncate fails", func(fs *faultFS) {
			fs.writeErr, fs.short, fs.truncErr = errNoSpace, 30, syscall.EIO
		}, false},
		{"ENOSPC, truncate and new segment fail", func(fs *faultFS) {
			fs.writeErr, fs.short, fs.truncErr, fs.createErr = errNoSpace, 30, syscall.EIO, errNoSpace
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fs := &faultFS{}
			defer fs.closeAll()
			w, err := Open(dir, nil, Options{FS: fs, Sync: tc.sync})
			if err != nil {
				t.Fatal(err)
			}
			var acked []string
			for i := range 3 {
				p := fmt.Sprintf("before %d %s", i, "some profile bytes")
				if err := w.Log([]byte(p)); err != nil {
					t.Fatal(err)
				}
				acked = append(acked, p)
			}
			tc.arm(fs)
			if tc.name == "short write without error" {
				// A writer returning fewer bytes and no error.
				fs.writeErr = nil
				w.seg = shortFile{w.seg}
			}
			err = w.Log([]byte("the failed record, long enough to be cut in its payload"))
			if !errors.Is(err, ErrWrite) {
				t.Fatalf("failed Log returned %v, want an ErrWrite", err)
			}
			if sf, ok := w.seg.(shortFile); ok {
				w.seg = sf.File
			}
			for i := range 3 {
				p := fmt.Sprintf("after %d", i)
				if err := w.Log([]byte(p)); err != nil {
					t.Fatalf("Log after the failure: %v", err)
				}
				acked = append(acked, p)
			}
			checkReplay(t, dir, acked)
		})
	}
}

// shortFile writes half of what it is given and reports no error.
type shortFile struct{ File }

func (s shortFile) Write(p []byte) (int, error) { return s.File.Write(p[:len(p)/2]) }

// TestWriteFailuresRandom runs a few thousand seeded schedules of writes,
// cuts, failures and crashes, checking after each crash that exactly the
// acknowledged records replay, in order.
func TestWriteFailuresRandom(t *testing.T) {
	schedules := 2000
	if testing.Short() {
		schedules = 200
	}
	start := time.Now()
	failed := 0
	parent := t.TempDir()
	for seed := range schedules {
		rng := rand.New(rand.NewPCG(uint64(seed), 1))
		dir := filepath.Join(parent, strconv.Itoa(seed))
		fs := &faultFS{}
		opts := Options{FS: fs, Sync: rng.IntN(2) == 0, SegmentBytes: int64(64 + rng.IntN(512))}
		w, err := Open(dir, nil, opts)
		if err != nil {
			t.Fatal(err)
		}
		var acked []string
		for op := range 30 {
			switch r := rng.IntN(20); {
			case r == 0:
				if _, err := w.Cut(); err != nil && !errors.Is(err, ErrWrite) {
					t.Fatalf("seed %d: Cut: %v", seed, err)
				}
				continue
			case r == 1:
				checkReplay(t, dir, acked)
				if w, err = Open(dir, nil, opts); err != nil {
					t.Fatalf("seed %d: reopen: %v", seed, err)
				}
				continue
			case r < 4:
				fs.writeErr, fs.short = errNoSpace, rng.IntN(80)
			case r < 5:
				fs.writeErr, fs.short = syscall.EIO, 0
			case r < 6 && opts.Sync:
				fs.syncErr = syscall.EIO
			case r < 7:
				fs.createErr = errNoSpace
			}
			if rng.IntN(4) == 0 && (fs.writeErr != nil || fs.syncErr != nil) {
				// A fault in the undo too.
				fs.truncErr = syscall.EIO
			}
			p := fmt.Sprintf("s%d op%d %x", seed, op, rng.Uint64()>>(rng.IntN(64)))
			if err := w.Log([]byte(p)); err == nil {
				acked = append(acked, p)
			} else if errors.Is(err, ErrWrite) {
				failed++
			} else {
				t.Fatalf("seed %d: Log: %v", seed, err)
			}
			fs.writeErr, fs.syncErr, fs.truncErr, fs.createErr = nil, nil, nil, nil
		}
		checkReplay(t, dir, acked)
		fs.closeAll()
		os.RemoveAll(dir)
	}
	if failed == 0 {
		t.Fatal("no Log failed: the faults were not injected")
	}
	t.Logf("%d schedules, %d failed writes, in %v", schedules, failed, time.Since(start))
}

// TestSyncAndTruncateFail is the double fault: the record was written
// whole, its fsync failed, and truncating it away failed too. The segment
// is abandoned for later records, and sealed where its last acknowledged
// record ends, so the refused record does not replay either.
func TestSyncAndTruncateFail(t *testing.T) {
	dir := t.TempDir()
	fs := &faultFS{}
	defer fs.closeAll()
	w, err := Open(dir, nil, Options{FS: fs, Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Log([]byte("a")); err != nil {
		t.Fatal(err)
	}
	fs.syncErr, fs.truncErr = syscall.EIO, syscall.EIO
	if err := w.Log([]byte("b")); !errors.Is(err, ErrWrite) {
		t.Fatalf("Log returned %v, want an ErrWrite", err)
	}
	if err := w.Log([]byte("c")); err != nil {
		t.Fatal(err)
	}
	if segs, _ := w.Segments(); !slices.Equal(segs, []int{1, 2}) {
		t.Fatalf("segments %v, want the failed one abandoned for a second", segs)
	}
	checkReplay(t, dir, []string{"a", "c"})
	if err := w.Truncate(2); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(w.sealPath(1)); !os.IsNotExist(err) {
		t.Errorf("seal of a removed segment still there (stat: %v)", err)
	}
}
