package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gpprof "github.com/google/pprof/profile"

	"github.com/hearth-profiler/hearth/internal/events"
	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/profile"
	"github.com/hearth-profiler/hearth/internal/storage/fsys"
	"github.com/hearth-profiler/hearth/internal/storage/wal"
)

// faultDisk is the local disk as the store sees it through Options.fs and
// Options.walFS, with faults. Every call that changes the disk is
// numbered; the call numbered failAt fails (once) in the way its kind of
// call fails on a full or failing disk, and before the call numbered
// crashAt, onCrash copies the disk aside: what a crash of the process at
// that instant would leave. While full is set, every write fails with
// ENOSPC. Sync never reaches the platter: these are crashes of the
// process, after which the page cache is still there.
type faultDisk struct {
	mu      sync.Mutex
	calls   int
	failAt  int
	variant int // which failure, for calls that can fail in several ways
	full    bool
	crashAt int
	onCrash func(call int, op string)
	// fired counts the faults injected, including writes refused while
	// full.
	fired int
	// lastFault describes the last fault, for failure messages.
	lastFault string
	// failOps are kinds of call that all fail, as failAt would, until
	// disarm.
	failOps map[string]bool
	// failWhen and crashWhen, if set, are asked about every call: the
	// first one failWhen returns true for fails as failAt would, and the
	// crash image is taken before the first one crashWhen returns true
	// for.
	failWhen, crashWhen func(op, path string) bool
	// walFiles are the log segments opened, closed by abandon.
	walFiles []*os.File
}

var errFaultIO = fmt.Errorf("injected: %w", syscall.EIO)

// call numbers one mutating call of kind op and says how it fails: for
// writes, how many bytes of n to write, and an error to return (nil for
// none). It runs onCrash before the call it is armed for.
func (d *faultDisk) call(op, path string, n int) (keep int, err error) {
	d.mu.Lock()
	d.calls++
	c := d.calls
	var crash func(int, string)
	if d.crashWhen != nil && d.crashWhen(op, path) {
		d.crashWhen, d.crashAt = nil, c
	}
	if c == d.crashAt {
		d.crashAt = 0
		crash = d.onCrash
	}
	keep = n
	write := op == "write" || op == "wal-write"
	if d.failWhen != nil && d.failWhen(op, path) {
		d.failWhen, d.failAt = nil, c
	}
	switch {
	case c == d.failAt || d.failOps[op]:
		if c == d.failAt {
			d.failAt = 0
		}
		switch op {
		case "write", "wal-write":
			switch d.variant % 3 {
			case 0: // the disk fills up part way
				err, keep = fmt.Errorf("injected: %w", syscall.ENOSPC), n/2
			case 1: // a short write without an error
				keep = n / 2
			default:
				err, keep = errFaultIO, 0
			}
		case "create", "createtemp", "mkdir", "mkdirall", "wal-create":
			err = fmt.Errorf("injected: %w", syscall.ENOSPC)
		case "chmod":
			err = fmt.Errorf("injected: %w", syscall.EPERM)
		default: // sync, syncdir, rename, remove, removeall, close, wal-*
			err = errFaultIO
		}
	case d.full && write:
		err, keep = fmt.Errorf("injected: disk full: %w", syscall.ENOSPC), 0
		if d.variant%2 == 0 {
			keep = n / 3 // what still fit
		}
	case d.full && (op == "mkdir" || op == "mkdirall"):
		err = fmt.Errorf("injected: disk full: %w", syscall.ENOSPC)
	}
	if err != nil || keep < n {
		d.fired++
		d.lastFault = fmt.Sprintf("call %d: %s %s: kept %d of %d bytes, %v", c, op, filepath.Base(path), keep, n, err)
	}
	d.mu.Unlock()
	if crash != nil {
		crash(c, op+" "+path)
	}
	return keep, err
}

// armFail makes the call in k calls from now fail.
func (d *faultDisk) armFail(k, variant int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failAt, d.variant = d.calls+k, variant
}

// armCrash takes the crash image before the call in k calls from now;
// k = 0 disarms it.
func (d *faultDisk) armCrash(k int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.crashAt = 0
	if k > 0 {
		d.crashAt = d.calls + k
	}
}

func (d *faultDisk) setFull(full bool, variant int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.full, d.variant = full, variant
}

// nthOf returns a predicate true for the nth call of kind op from now.
func nthOf(op string, n int) func(string, string) bool {
	return func(o, _ string) bool {
		if o == op {
			n--
		}
		return n == 0
	}
}

// armFailOf makes the nth call of kind op from now fail.
func (d *faultDisk) armFailOf(op string, n, variant int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failWhen, d.variant = nthOf(op, n), variant
}

// armCrashOf takes the crash image before the nth call of kind op from
// now.
func (d *faultDisk) armCrashOf(op string, n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.crashWhen = nthOf(op, n)
}

// disarm clears every fault.
func (d *faultDisk) disarm() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failAt, d.crashAt, d.full = 0, 0, false
	d.failWhen, d.crashWhen, d.failOps = nil, nil, nil
}

func (d *faultDisk) firedCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fired
}

// abandon closes the log segments a crashed store left open, without
// syncing them.
func (d *faultDisk) abandon() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, f := range d.walFiles {
		f.Close()
	}
	d.walFiles = nil
}

func (d *faultDisk) Create(path string, perm os.FileMode) (fsys.File, error) {
	if _, err := d.call("create", path, 0); err != nil {
		return nil, &fs.PathError{Op: "create", Path: path, Err: err}
	}
	f, err := fsys.OS{}.Create(path, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{d: d, f: f}, nil
}

func (d *faultDisk) CreateTemp(dir, pattern string) (fsys.File, error) {
	if _, err := d.call("createtemp", dir, 0); err != nil {
		return nil, &fs.PathError{Op: "createtemp", Path: dir, Err: err}
	}
	f, err := fsys.OS{}.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return &faultFile{d: d, f: f}, nil
}

func (d *faultDisk) Mkdir(path string, perm os.FileMode) error {
	if _, err := d.call("mkdir", path, 0); err != nil {
		return &fs.PathError{Op: "mkdir", Path: path, Err: err}
	}
	return os.Mkdir(path, perm)
}

func (d *faultDisk) MkdirAll(path string, perm os.FileMode) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil // changes nothing: not a call that can fail for want of space
	}
	if _, err := d.call("mkdirall", path, 0); err != nil {
		return &fs.PathError{Op: "mkdir", Path: path, Err: err}
	}
	return os.MkdirAll(path, perm)
}

func (d *faultDisk) Rename(oldpath, newpath string) error {
	if _, err := d.call("rename", newpath, 0); err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return os.Rename(oldpath, newpath)
}

func (d *faultDisk) Remove(path string) error {
	if _, err := d.call("remove", path, 0); err != nil {
		return &fs.PathError{Op: "remove", Path: path, Err: err}
	}
	return os.Remove(path)
}

func (d *faultDisk) RemoveAll(path string) error {
	if _, err := d.call("removeall", path, 0); err != nil {
		return &fs.PathError{Op: "removeall", Path: path, Err: err}
	}
	return os.RemoveAll(path)
}

func (d *faultDisk) SyncDir(dir string) error {
	if _, err := d.call("syncdir", dir, 0); err != nil {
		return &fs.PathError{Op: "sync", Path: dir, Err: err}
	}
	return nil // a crash of the process keeps the page cache
}

type faultFile struct {
	d *faultDisk
	f fsys.File
}

func (f *faultFile) Name() string { return f.f.Name() }

func (f *faultFile) Write(p []byte) (int, error) {
	keep, err := f.d.call("write", f.f.Name(), len(p))
	n, werr := f.f.Write(p[:keep])
	if werr != nil {
		return n, werr
	}
	return n, err
}

func (f *faultFile) Chmod(mode os.FileMode) error {
	if _, err := f.d.call("chmod", f.f.Name(), 0); err != nil {
		return err
	}
	return f.f.Chmod(mode)
}

func (f *faultFile) Sync() error {
	_, err := f.d.call("sync", f.f.Name(), 0)
	return err
}

func (f *faultFile) Close() error {
	_, err := f.d.call("close", f.f.Name(), 0)
	// Close releases the descriptor even when it reports an error (a
	// delayed write error on a network file system).
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// walDisk is the faultDisk seen as the log's FS.
type walDisk struct{ d *faultDisk }

func (w walDisk) Create(path string) (wal.File, error) {
	if _, err := w.d.call("wal-create", path, 0); err != nil {
		return nil, &fs.PathError{Op: "create", Path: path, Err: err}
	}
	f, err := wal.OSFS{}.Create(path)
	if err != nil {
		return nil, err
	}
	w.d.mu.Lock()
	w.d.walFiles = append(w.d.walFiles, f.(*os.File))
	w.d.mu.Unlock()
	return &walFile{d: w.d, f: f.(*os.File)}, nil
}

type walFile struct {
	d *faultDisk
	f *os.File
}

func (f *walFile) Write(p []byte) (int, error) {
	keep, err := f.d.call("wal-write", f.f.Name(), len(p))
	n, werr := f.f.Write(p[:keep])
	if werr != nil {
		return n, werr
	}
	return n, err
}

func (f *walFile) Sync() error {
	_, err := f.d.call("wal-sync", f.f.Name(), 0)
	return err
}

func (f *walFile) Truncate(size int64) error {
	if _, err := f.d.call("wal-truncate", f.f.Name(), 0); err != nil {
		return err
	}
	return f.f.Truncate(size)
}

func (f *walFile) Close() error {
	_, err := f.d.call("wal-close", f.f.Name(), 0)
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// The profiles of the randomized test are tiny and built without parsing:
// a payload is the series (one byte), the profile's number and its value.
// Series 0 and 1 are plain CPU profiles on one of three stacks; series 2 is
// cumulative, on one stack, so that its stored values are the growth since
// the previous profile of the series that the store kept, which checks the
// delta state carried across cuts, checkpoints and replays.

var faultSeries = []string{"plain-a", "plain-b", "cumulative"}

const faultTenants = 2

var faultStacks = func() [][]*gpprof.Location {
	m := &gpprof.Mapping{ID: 1, Start: 0x1000, Limit: 0x9000, File: "/bin/app"}
	var locs []*gpprof.Location
	for i, name := range []string{"main", "serve", "parse", "write"} {
		f := &gpprof.Function{ID: uint64(i + 1), Name: name}
		locs = append(locs, &gpprof.Location{ID: uint64(i + 1), Mapping: m, Address: 0x1000 + uint64(i)*16, Line: []gpprof.Line{{Function: f, Line: int64(i + 1)}}})
	}
	return [][]*gpprof.Location{{locs[1], locs[0]}, {locs[2], locs[1], locs[0]}, {locs[3], locs[0]}}
}()

func faultPayload(series, i int, v int64) []byte {
	b := []byte{byte(series)}
	b = binary.AppendUvarint(b, uint64(i))
	return binary.AppendVarint(b, v)
}

var faultCPU = func() profile.Type {
	typ, err := profile.ParseType(cpuType)
	if err != nil {
		panic(err)
	}
	return typ
}()

func decodeFaultPayload(b []byte) ([]*Input, error) {
	if len(b) < 3 || int(b[0]) >= len(faultSeries) {
		return nil, fmt.Errorf("bad test payload %x", b)
	}
	series := int(b[0])
	i, n := binary.Uvarint(b[1:])
	v, m := binary.Varint(b[1+n:])
	if n <= 0 || m <= 0 {
		return nil, fmt.Errorf("bad test payload %x", b)
	}
	stack := faultStacks[0]
	if series != 2 {
		stack = faultStacks[i%3]
	}
	p := &gpprof.Profile{
		SampleType: []*gpprof.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
		Sample:     []*gpprof.Sample{{Location: stack, Value: []int64{v}}},
		TimeNanos:  t0 + int64(i)*sec,
	}
	return []*Input{{
		Labels: labels.FromStrings("service_name", faultSeries[series]), Profile: p,
		Types: []profile.Type{faultCPU}, Cumulative: []bool{series == 2},
	}}, nil
}

type faultRec struct {
	tenant string
	series int // -1 for an event
	raw    int64
	acked  bool
}

// faultSchedule is a store on a faultDisk, what was appended to it, and
// the crash images taken: one run of TestDiskFaultsRandom, or the set-up
// of a test of one fault.
type faultSchedule struct {
	t      *testing.T
	random bool // one of TestDiskFaultsRandom's schedules
	// damaged says that the test damaged a file, which Open then
	// quarantines; otherwise a quarantine means a fault left damage.
	damaged bool
	// anyValue, if set, is true for the profiles whose values the check
	// accepts whatever they are: those of a file damaged on purpose.
	anyValue func(i int) bool
	seed     uint64
	rng      *rand.Rand
	dir      string
	disk     *faultDisk
	opts     Options
	db       *DB
	now      time.Time
	recs     []faultRec
	trace    []string
	// cumRaw is the last raw value of each tenant's cumulative series.
	cumRaw map[string]int64

	// inflight is the record being appended, -1 outside Append.
	inflight int
	// step names the step running, for the crash images taken in it.
	step     string
	events   eventCounter
	stats    faultStats
	images   []crashImage
	imageErr error
}

// crashImage is a copy of the disk taken as a crash would leave it, with
// the records acknowledged by then.
type crashImage struct {
	dir      string
	at       string
	step     string
	acked    []bool
	inflight int
}

func (s *faultSchedule) logf(format string, args ...any) {
	s.trace = append(s.trace, fmt.Sprintf(format, args...))
}

func (s *faultSchedule) fatalf(format string, args ...any) {
	s.t.Helper()
	tail := s.trace
	if len(tail) > 60 {
		tail = tail[len(tail)-60:]
	}
	msg := fmt.Sprintf("%s\nlast fault: %s\nschedule:\n  %s", fmt.Sprintf(format, args...), s.disk.lastFault, strings.Join(tail, "\n  "))
	if s.random {
		// Schedules run on goroutines of their own, which may not
		// call Fatal: runSchedule recovers this.
		panic(scheduleFailure(fmt.Sprintf("seed %d (rerun alone with -run 'TestDiskFaultsRandom' -diskfault.seed=%d): %s", s.seed, s.seed, msg)))
	}
	s.t.Fatal(msg)
}

// scheduleFailure is how a schedule of TestDiskFaultsRandom fails.
type scheduleFailure string

func (s *faultSchedule) open(dir string, disk *faultDisk) (*DB, error) {
	opts := s.opts
	opts.fs, opts.walFS = disk, walDisk{disk}
	return Open(dir, slog.New(&s.events), opts)
}

// eventCounter is a slog.Handler that counts the store's log messages,
// to tell how much of its work a test reached.
type eventCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *eventCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *eventCounter) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *eventCounter) WithGroup(string) slog.Handler            { return c }

func (c *eventCounter) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[r.Message]++
	return nil
}

func (c *eventCounter) count(msg string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[msg]
}

// takeImage is the onCrash of the schedule's disk.
func (s *faultSchedule) takeImage(call int, op string) {
	img := crashImage{dir: filepath.Join(s.dir+"-crash", fmt.Sprint(len(s.images))), at: fmt.Sprintf("before call %d, %s", call, op),
		step: s.step, inflight: s.inflight}
	for _, r := range s.recs {
		img.acked = append(img.acked, r.acked)
	}
	if err := copyTree(filepath.Join(s.dir), img.dir); err != nil && s.imageErr == nil {
		s.imageErr = err
	}
	s.images = append(s.images, img)
}

// copyTree copies the files under src to dst. It may run on the goroutine
// that uploads a block's samples, so it returns its error rather than
// failing the test.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if e.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
}

func (s *faultSchedule) tick() {
	s.now = s.now.Add(time.Second)
}

// appendOne appends the next profile to a random series of a random
// tenant.
func (s *faultSchedule) appendOne() {
	// Mostly to one tenant, which then has blocks enough to compact.
	tenant := "t0"
	if s.rng.IntN(4) == 0 {
		tenant = "t1"
	}
	if s.rng.IntN(4) == 0 {
		s.appendEvent(tenant)
		return
	}
	s.appendTo(tenant, s.rng.IntN(len(faultSeries)))
}

// appendEvent appends the next record as an event of tenant, whose start
// time and duration say which record it is.
func (s *faultSchedule) appendEvent(tenant string) {
	i := len(s.recs)
	s.recs = append(s.recs, faultRec{tenant: tenant, series: -1, raw: int64(1000 + i)})
	ev := events.Event{Start: t0 + int64(i)*sec, Duration: int64(1000 + i), Service: "svc", Name: fmt.Sprintf("e%d", i),
		Attrs: []events.Attr{{Key: "span.i", Value: events.Int(int64(i))}}}
	ev.SpanID[0] = byte(i)
	s.inflight = i
	err := s.db.AppendEvents(context.Background(), tenant, []events.Event{ev})
	s.inflight = -1
	switch {
	case err == nil:
		s.recs[i].acked = true
		s.logf("append %d %s/event: ok", i, tenant)
	case errors.Is(err, ErrUnavailable):
		s.logf("append %d %s/event: %v", i, tenant, err)
	default:
		s.fatalf("AppendEvents %d: %v, want nil or ErrUnavailable", i, err)
	}
}

// appendTo appends the next profile to a series of tenant.
func (s *faultSchedule) appendTo(tenant string, series int) {
	i := len(s.recs)
	raw := int64(1000 + i)
	if series == 2 {
		raw = s.cumRaw[tenant] + 1 + s.rng.Int64N(50)
	}
	s.recs = append(s.recs, faultRec{tenant: tenant, series: series, raw: raw})
	payload := faultPayload(series, i, raw)
	ins, err := decodeFaultPayload(payload)
	if err != nil {
		s.fatalf("decode: %v", err)
	}
	s.inflight = i
	err = s.db.Append(context.Background(), tenant, payload, ins)
	s.inflight = -1
	switch {
	case err == nil:
		s.recs[i].acked = true
		if series == 2 {
			s.cumRaw[tenant] = raw
		}
		s.logf("append %d %s/%s: ok", i, tenant, faultSeries[series])
	case errors.Is(err, ErrUnavailable):
		s.logf("append %d %s/%s: %v", i, tenant, faultSeries[series], err)
	default:
		s.fatalf("Append %d: %v, want nil or ErrUnavailable", i, err)
	}
}

// maintain runs a cut or compaction. An error is only allowed if a fault
// was injected during the call.
func (s *faultSchedule) maintain(name string, f func(context.Context) error) {
	before := s.disk.firedCount()
	err := f(context.Background())
	s.logf("%s: %v", name, err)
	if err != nil && s.disk.firedCount() == before {
		s.fatalf("%s failed without an injected fault: %v", name, err)
	}
}

// check queries every tenant of db and compares with the records: each
// record for which must is true is there once, with its value, and every
// profile there is one for which must or may is true.
func (s *faultSchedule) check(db *DB, what string, must, may func(i int) bool) {
	s.t.Helper()
	ctx := context.Background()
	seen := make([]bool, len(s.recs))
	for tn := range faultTenants {
		tenant := fmt.Sprintf("t%d", tn)
		sps, err := db.SelectSeries(ctx, tenant, SelectParams{Start: t0 - sec, End: t0 + int64(len(s.recs)+1)*sec})
		if err != nil {
			s.fatalf("%s: SelectSeries: %v", what, err)
		}
		for _, sp := range sps {
			name := sp.Labels.Get("service_name")
			series := slices.Index(faultSeries, name)
			if series < 0 || sp.Labels.Get(labels.ProfileType) != cpuType {
				s.fatalf("%s: tenant %s: unknown series %s", what, tenant, sp.Labels)
			}
			var prev int64
			havePrev := false
			for k, pt := range sp.Points {
				i := int((pt.T - t0) / sec)
				if pt.T != t0+int64(i)*sec || i < 0 || i >= len(s.recs) {
					s.fatalf("%s: tenant %s series %s: a point at %d that was never appended", what, tenant, name, pt.T)
				}
				r := s.recs[i]
				if r.tenant != tenant || r.series != series {
					s.fatalf("%s: profile %d (%s/%s) found in %s/%s", what, i, r.tenant, faultSeries[r.series], tenant, name)
				}
				if k > 0 && sp.Points[k-1].T == pt.T {
					s.fatalf("%s: profile %d of %s/%s is there twice", what, i, tenant, name)
				}
				if !must(i) && !may(i) {
					s.fatalf("%s: profile %d of %s/%s is there, but its Append failed", what, i, tenant, name)
				}
				want := r.raw
				if series == 2 && havePrev {
					want = r.raw - prev
				}
				if pt.V != want && (s.anyValue == nil || !s.anyValue(i)) {
					s.fatalf("%s: profile %d of %s/%s has value %d, want %d", what, i, tenant, name, pt.V, want)
				}
				prev, havePrev = r.raw, true
				seen[i] = true
			}
		}
	}
	s.checkEvents(db, what, must, may, seen)
	for i, r := range s.recs {
		if must(i) && !seen[i] {
			if r.series < 0 {
				s.fatalf("%s: acknowledged event %d of %s lost", what, i, r.tenant)
			}
			s.fatalf("%s: acknowledged profile %d of %s/%s lost", what, i, r.tenant, faultSeries[r.series])
		}
	}
	if n := db.quarantined.Load(); n != 0 && !s.damaged {
		s.fatalf("%s: %d files quarantined: a fault left a damaged file behind", what, n)
	}
}

// checkEvents is check's part for events: each is there at most once,
// in its tenant, with its value, and only if must or may says so; it
// marks those it finds in seen.
func (s *faultSchedule) checkEvents(db *DB, what string, must, may func(i int) bool, seen []bool) {
	s.t.Helper()
	for tn := range faultTenants {
		tenant := fmt.Sprintf("t%d", tn)
		q := EventQuery{Columns: events.Columns{Intrinsics: events.ColStart | events.ColDuration, Attrs: []string{"span.i"}},
			Start: t0 - sec, End: t0 + int64(len(s.recs)+1)*sec}
		err := db.SelectEvents(context.Background(), tenant, q, func(b *events.Batch) error {
			for k := range b.Len {
				i := int((b.Start[k] - t0) / sec)
				if b.Start[k] != t0+int64(i)*sec || i < 0 || i >= len(s.recs) || s.recs[i].series >= 0 || s.recs[i].tenant != tenant {
					s.fatalf("%s: tenant %s: an event at %d that was never appended there", what, tenant, b.Start[k])
				}
				if seen[i] {
					s.fatalf("%s: event %d of %s is there twice", what, i, tenant)
				}
				if !must(i) && !may(i) {
					s.fatalf("%s: event %d of %s is there, but its append failed", what, i, tenant)
				}
				if c := b.Attrs["span.i"]; b.Duration[k] != s.recs[i].raw || c == nil || c.Value(k).Int() != int64(i) {
					s.fatalf("%s: event %d of %s read back wrong", what, i, tenant)
				}
				seen[i] = true
			}
			return nil
		})
		if err != nil {
			s.fatalf("%s: SelectEvents: %v", what, err)
		}
	}
}

func (s *faultSchedule) acked(i int) bool { return s.recs[i].acked }
func never(int) bool                      { return false }

// checkTidy checks that the disk holds the open blocks' objects, the
// checkpoints and the log, and nothing else: no debris of failed uploads
// or deletions, no quarantine.
func (s *faultSchedule) checkTidy(db *DB, dir string) {
	s.t.Helper()
	want := map[string]bool{}
	for tn := range faultTenants {
		tenant := fmt.Sprintf("t%d", tn)
		if db.lookupTenant(tenant) == nil {
			continue
		}
		for _, f := range blockFilesOf(db, tenant) {
			want[filepath.Join(tenantDirName(tenant), "blocks", f)] = true
		}
		want[filepath.Join(tenantDirName(tenant), checkpointFile)] = true
	}
	root := filepath.Join(dir, "tenants")
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if parts := strings.Split(filepath.ToSlash(rel), "/"); s.damaged && len(parts) > 2 && parts[1] == "quarantine" {
			return nil // where damaged files go, to stay
		}
		if !want[rel] {
			return fmt.Errorf("stray file %s", rel)
		}
		return nil
	})
	if err != nil {
		s.fatalf("disk after recovery: %v", err)
	}
	for _, tenant := range []string{"t0", "t1"} {
		if tn := db.lookupTenant(tenant); tn != nil && (len(tn.undeleted) > 0 || tn.failedCut != "") {
			s.fatalf("tenant %s: deletions pending after a fault-free round: %v %q", tenant, tn.undeleted, tn.failedCut)
		}
	}
}

// reopen opens the store again after a Close or a crash; it must open.
func (s *faultSchedule) reopen(how string) {
	before := s.disk.firedCount()
	db, err := s.open(s.dir, s.disk)
	if err != nil && s.disk.firedCount() > before && strings.HasPrefix(err.Error(), "open wal: ") {
		// A store that cannot create its log cannot take writes: that
		// is a reason not to start, which goes away with the fault.
		s.logf("Open after %s: %v; again", how, err)
		s.disk.disarm()
		db, err = s.open(s.dir, s.disk)
	}
	if err != nil {
		s.fatalf("Open after %s: %v", how, err)
	}
	s.db = db
	s.check(db, "after "+how, s.acked, never)
}

// abandon leaves the store as a crash of the process would: no Close, no
// more writes; what it holds open is released.
func (s *faultSchedule) abandon() {
	s.db.closeBlocks()
	s.disk.abandon()
	s.db = nil
}

// recover opens a store after the test, without faults, checks it, then
// cuts and compacts it, which must now succeed and leave nothing stray.
//
// With openFault, one call of Open fails: cleaning up what a crash left
// must not stop the start.
func (s *faultSchedule) recoverAndCheck(dir, what string, must, may func(int) bool, openFault bool) {
	disk := &faultDisk{}
	if openFault {
		op, n, v := faultOps[s.rng.IntN(len(faultOps))], 1+s.rng.IntN(6), s.rng.IntN(6)
		disk.armFailOf(op, n, v)
		s.logf("open %s with the %s %d failing, variant %d", what, op, n, v)
	}
	db, err := s.open(dir, disk)
	if err != nil && disk.firedCount() > 0 && strings.HasPrefix(err.Error(), "open wal: ") {
		s.logf("Open %s: %v; again", what, err)
		disk.disarm()
		db, err = s.open(dir, disk)
	}
	if err != nil {
		s.fatalf("Open %s: %v", what, err)
	}
	faulty := disk.firedCount() > 0
	disk.disarm()
	defer func() {
		db.closeBlocks()
		disk.abandon()
	}()
	s.check(db, "after opening "+what, must, may)
	ctx := context.Background()
	if err := db.Flush(ctx); err != nil {
		s.fatalf("%s: Flush without faults: %v", what, err)
	}
	if err := db.Compact(ctx); err != nil {
		s.fatalf("%s: Compact without faults: %v", what, err)
	}
	s.check(db, what+", cut and compacted", must, may)
	if faulty {
		// What the faulty Open could not remove (a checkpoint.tmp)
		// is removed by the next one.
		db.closeBlocks()
		disk.abandon()
		if db, err = s.open(dir, disk); err != nil {
			s.fatalf("Open %s again: %v", what, err)
		}
	}
	s.checkTidy(db, dir)
}

// faultOps are the kinds of call that faultDisk numbers.
var faultOps = []string{"create", "createtemp", "mkdir", "mkdirall", "rename", "remove", "removeall", "syncdir",
	"write", "chmod", "sync", "close", "wal-create", "wal-write", "wal-sync", "wal-truncate", "wal-close"}

// newFaultSchedule returns a schedule for a test of its own, on an open
// store in a temporary directory.
func newFaultSchedule(t *testing.T, opts Options) *faultSchedule {
	s := &faultSchedule{t: t, rng: rand.New(rand.NewPCG(1, 2)), dir: t.TempDir(), disk: &faultDisk{},
		now: timeAt(t0), cumRaw: map[string]int64{}, inflight: -1, opts: opts}
	s.opts.Decode = decodeFaultPayload
	s.opts.Now = func() time.Time { return s.now }
	s.disk.onCrash = s.takeImage
	db, err := s.open(s.dir, s.disk)
	if err != nil {
		t.Fatal(err)
	}
	s.db = db
	t.Cleanup(func() {
		if s.db != nil {
			s.abandon()
		}
	})
	return s
}
