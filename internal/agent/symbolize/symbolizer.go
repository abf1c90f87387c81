package symbolize

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Reasons a frame has no function name, in Frame.Reason and Stats.Unnamed.
const (
	// ReasonNoSymbols: the binary was read but names nothing at the address:
	// a stripped native binary, anonymous executable memory (JIT code), or
	// an address between functions.
	ReasonNoSymbols = "no symbols"
	// ReasonBinaryGone: the mapped file could not be opened or is not a
	// readable ELF file any more (deleted, and /proc/PID/map_files refused).
	ReasonBinaryGone = "binary gone"
	// ReasonNoMapping: the address is in no executable mapping of the
	// process, which for a return address means a broken frame-pointer chain.
	ReasonNoMapping = "no mapping"
	// ReasonProcessGone: the process's mappings could not be read, usually
	// because it exited before its samples were symbolized.
	ReasonProcessGone = "process gone"
	// ReasonKernelHidden: /proc/kallsyms shows every address as zero, which
	// the kernel does for readers without CAP_SYSLOG or when
	// kernel.kptr_restrict forbids it, or could not be read at all.
	ReasonKernelHidden = "kernel symbols hidden"
)

// A Frame is one function at one address. An address inside inlined code
// gives several frames, the innermost first.
type Frame struct {
	// Function is the symbol name (Go's package-qualified name, or the ELF
	// symbol as written: C++ names stay mangled). A frame without a name
	// gets "module+0xoffset" here, with the file offset of the address in
	// the module (the address itself for the kernel and for "[unknown]"),
	// and a Reason.
	Function string
	// File and Line are the source position, for Go code only: native
	// code is named from ELF symbols, without reading DWARF.
	File string
	Line int
	// Inlined marks a frame whose code was inlined into the next frame of
	// the same address.
	Inlined bool
	// Module is the base name of the mapped file ("libc.so.6"), a kernel
	// pseudo-path ("[vdso]", "[anon]" for anonymous memory), the kernel
	// module name for module code, "[kernel.kallsyms]" for the core kernel,
	// or "[unknown]" when no mapping holds the address.
	Module string
	// Addr is the address as given to User or Kernel.
	Addr uint64
	// BuildID identifies the binary: its GNU build ID in hex, else its Go
	// build ID, else a hash of its path, size and modification time.
	BuildID string
	// Reason says why Function is not a name, and is "" when it is: one of
	// the Reason constants.
	Reason string
}

// Options configures a Symbolizer. The zero value is ready to use.
type Options struct {
	// MaxCacheBytes bounds the estimated memory of the binaries' symbol
	// tables kept between calls; 0 or less means 64 MiB. The binary used
	// last always stays, so one binary larger than the bound goes over it.
	// The kernel's symbols (Stats.KernelBytes) and the processes' mappings
	// are not counted.
	MaxCacheBytes int64
	// ProcRoot is where procfs is mounted; "" means /proc. Tests point it
	// at a directory of their own.
	ProcRoot string
}

// DefaultMaxCacheBytes is the cache bound when Options.MaxCacheBytes is 0.
const DefaultMaxCacheBytes = 64 << 20

// Stats counts what a Symbolizer did since New. A stack frame is one
// address passed to User or Kernel; the inlined frames it expands to are
// not counted separately.
type Stats struct {
	Named   int64            // stack frames given a function name
	Unnamed map[string]int64 // stack frames without one, by Reason

	CacheBytes     int64 // estimated bytes of the cached symbol tables
	BinariesCached int   // binaries in the cache now
	BinariesLoaded int64 // symbol tables read from a file (cache misses)
	Evictions      int64 // binaries dropped to stay within MaxCacheBytes
	LoadErrors     int64 // binaries loaded with a symbol source that failed (a corrupt pclntab, say)
	Processes      int   // processes whose mappings are kept (see Forget)
	KernelBytes    int64 // estimated bytes of the kernel symbol table
}

// How often mappings and kernel symbols may be re-read when an address
// falls outside them. Libraries loaded with dlopen and kernel modules
// loaded after the first read appear within these intervals; a broken
// frame-pointer chain, which misses every time, costs one re-read per
// interval and process rather than one per sample.
const (
	mapsRefreshInterval     = 5 * time.Second
	kallsymsRefreshInterval = time.Minute
)

// A Symbolizer turns the addresses of sampled stacks into function names.
// It is safe for concurrent use; calls are serialized.
type Symbolizer struct {
	procRoot string

	mu         sync.Mutex
	cache      *binaryCache
	procs      map[uint32]*process
	kernel     *kernelSymbols // nil until the first Kernel call
	kReadAt    time.Time
	named      int64
	unnamed    map[string]int64
	loadErrors int64
}

// process is what is kept of one process: its executable mappings.
type process struct {
	maps   []procMapping
	readAt time.Time
	gone   bool // the maps could not be read
}

// procMapping is a mapping and what is known of its file.
type procMapping struct {
	mapping
	key    string // cache key of its binary once identified
	failed string // the Reason for every address in it, once opening failed
}

// New returns a Symbolizer.
func New(opts Options) *Symbolizer {
	if opts.MaxCacheBytes <= 0 {
		opts.MaxCacheBytes = DefaultMaxCacheBytes
	}
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	return &Symbolizer{
		procRoot: opts.ProcRoot,
		cache:    newBinaryCache(opts.MaxCacheBytes),
		procs:    map[uint32]*process{},
		unnamed:  map[string]int64{},
	}
}

// User symbolizes a user-space stack of the process with thread group ID
// pid. addrs is leaf first, as frame-pointer unwinding gives it; the
// result has one slice of frames per address, innermost (inlined) first,
// each slice holding at least one frame.
//
// Every address but the first is a return address: the instruction after
// a call, which may already belong to the next line or even the next
// function. Those are looked up at addr-1, inside the call instruction.
// The first is where the thread was interrupted and is looked up as is.
//
// The process's mappings are read on first use and kept until Forget;
// symbol tables are shared by every process mapping the same build.
func (s *Symbolizer) User(pid uint32, addrs []uint64) [][]Frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]Frame, len(addrs))
	buf := make([]Frame, 0, len(addrs)+len(addrs)/2)
	p := s.procs[pid]
	if p == nil {
		p = &process{}
		s.readMaps(pid, p)
		s.procs[pid] = p
	}
	refreshed := false
	for i, addr := range addrs {
		at := addr
		if i > 0 && at > 0 {
			at--
		}
		m := findMapping(p.maps, at)
		if m == nil && !p.gone && !refreshed && time.Since(p.readAt) >= mapsRefreshInterval {
			refreshed = true
			s.readMaps(pid, p)
			m = findMapping(p.maps, at)
		}
		start := len(buf)
		switch {
		case p.gone:
			buf = s.unnamedFrame(buf, addr, "[unknown]", addr, "", ReasonProcessGone)
		case m == nil:
			buf = s.unnamedFrame(buf, addr, "[unknown]", addr, "", ReasonNoMapping)
		default:
			buf = s.mappedFrames(buf, pid, m, addr, at)
		}
		out[i] = buf[start:len(buf):len(buf)]
	}
	return out
}

// mappedFrames appends the frames of addr, in mapping m, looked up at at.
func (s *Symbolizer) mappedFrames(buf []Frame, pid uint32, m *procMapping, addr, at uint64) []Frame {
	module := m.module()
	b, reason := s.binaryFor(pid, m)
	if b == nil {
		return s.unnamedFrame(buf, addr, module, m.fileOffset(addr), "", reason)
	}
	start := len(buf)
	var ok bool
	if !s.guarded(b, func() { buf, ok = b.lookup(buf, m.fileOffset(at)) }) {
		m.key, m.failed = "", ReasonBinaryGone
		return s.unnamedFrame(buf[:start], addr, module, m.fileOffset(addr), b.buildID, ReasonBinaryGone)
	}
	s.cache.resize(b)
	if !ok {
		return s.unnamedFrame(buf, addr, module, m.fileOffset(addr), b.buildID, ReasonNoSymbols)
	}
	for i := start; i < len(buf); i++ {
		buf[i].Module, buf[i].Addr, buf[i].BuildID = module, addr, b.buildID
	}
	s.named++
	return buf
}

func (s *Symbolizer) unnamedFrame(buf []Frame, addr uint64, module string, off uint64, buildID, reason string) []Frame {
	s.unnamed[reason]++
	return append(buf, Frame{
		Function: module + "+0x" + strconv.FormatUint(off, 16),
		Module:   module,
		Addr:     addr,
		BuildID:  buildID,
		Reason:   reason,
	})
}

// readMaps (re)reads the executable mappings of pid into p. Mappings that
// did not change keep what is known of their files.
func (s *Symbolizer) readMaps(pid uint32, p *process) {
	p.readAt = time.Now()
	data, err := os.ReadFile(filepath.Join(s.procRoot, strconv.FormatUint(uint64(pid), 10), "maps"))
	if err != nil {
		p.gone, p.maps = true, nil
		return
	}
	maps, err := parseMaps(data)
	if err != nil {
		p.gone, p.maps = true, nil
		return
	}
	old := p.maps
	p.gone, p.maps = false, make([]procMapping, len(maps))
	for i, m := range maps {
		p.maps[i].mapping = m
		if o := findMapping(old, m.start); o != nil && o.mapping == m {
			p.maps[i] = *o
		}
	}
}

// findMapping returns the mapping holding addr, or nil. maps is sorted and
// its mappings do not overlap, as the kernel writes them.
func findMapping(maps []procMapping, addr uint64) *procMapping {
	i := sort.Search(len(maps), func(i int) bool { return maps[i].end > addr })
	if i < len(maps) && maps[i].start <= addr {
		return &maps[i]
	}
	return nil
}

// binaryFor returns the loaded binary behind m, or the reason there is none.
func (s *Symbolizer) binaryFor(pid uint32, m *procMapping) (*objfile, string) {
	if m.failed != "" {
		return nil, m.failed
	}
	if m.key != "" {
		if b := s.cache.get(m.key); b != nil {
			return b, ""
		}
	}
	f, id, err := s.openMapping(pid, &m.mapping)
	if err != nil {
		m.failed = ReasonBinaryGone
		if errors.Is(err, errNoFile) {
			m.failed = ReasonNoSymbols
		}
		return nil, m.failed
	}
	data, release, err := f.bytes(id.size)
	f.Close()
	if err != nil {
		m.failed = ReasonBinaryGone
		return nil, m.failed
	}
	ef, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		// Executable memory backed by something other than ELF (JIT code
		// in a memfd, say) has nothing to read.
		release()
		m.failed = ReasonNoSymbols
		return nil, m.failed
	}
	buildID, key := identify(ef, id)
	m.key = key
	if b := s.cache.get(key); b != nil {
		release()
		return b, ""
	}
	// A load error still leaves a binary, without the sources that failed;
	// caching it keeps a bad file from being read again for every stack.
	b, keep, err := loadBinary(ef, data, buildID, key)
	if err != nil {
		s.loadErrors++
	}
	if keep {
		b.release = release
		settle(data)
	} else {
		release()
	}
	s.cache.add(b)
	return b, ""
}

// guarded runs fn, which reads from b's sources. b's file may be mapped,
// and reading a mapping past the end of a file that shrank since (a binary
// rewritten in place) faults: the fault is caught here, b is dropped from
// the cache, and guarded reports false, rather than the agent crashing.
func (s *Symbolizer) guarded(b *objfile, fn func()) (ok bool) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if _, fault := r.(interface{ Addr() uintptr }); !fault {
				panic(r)
			}
			s.cache.drop(b)
			ok = false
		}
	}()
	fn()
	return true
}

// errNoFile reports a mapping with no file behind it.
var errNoFile = errors.New("mapping has no file")

// openFile is a binary opened for reading: a file, or the bytes of one
// read from a process's memory (the vDSO).
type openFile struct {
	f   *os.File
	mem []byte
}

// bytes maps the file's size bytes (see mapFile), or returns the memory
// read; release undoes it.
func (o openFile) bytes(size int64) (data []byte, release func(), err error) {
	if o.f == nil {
		return o.mem, func() {}, nil
	}
	return mapFile(o.f, size)
}

func (o openFile) Close() error {
	if o.f == nil {
		return nil
	}
	return o.f.Close()
}

// ReadAt reads from the file or the memory.
func (o openFile) ReadAt(p []byte, off int64) (int, error) {
	if o.f != nil {
		return o.f.ReadAt(p, off)
	}
	return bytes.NewReader(o.mem).ReadAt(p, off)
}

// openMapping opens the file m maps in process pid.
//
// The path is opened under /proc/PID/root, which resolves it in the
// process's own mount namespace (a container's file system) from the
// agent's. A deleted or replaced file is opened through
// /proc/PID/map_files/START-END, which reaches the very inode mapped; it
// is also the fallback when the path does not open. The vDSO has no file
// and is read from the process's memory.
func (s *Symbolizer) openMapping(pid uint32, m *mapping) (openFile, fileID, error) {
	dir := filepath.Join(s.procRoot, strconv.FormatUint(uint64(pid), 10))
	switch {
	case m.path == "[vdso]":
		return s.readVDSO(dir, m)
	case m.path == "" || m.path[0] == '[' || m.path[0] != '/':
		return openFile{}, fileID{}, errNoFile
	}
	byRange := filepath.Join(dir, "map_files", strconv.FormatUint(m.start, 16)+"-"+strconv.FormatUint(m.end, 16))
	byPath := filepath.Join(dir, "root", m.path)
	tries := []string{byPath, byRange}
	if m.deleted {
		// Whatever is at the path now is another file.
		tries = []string{byRange}
	}
	var firstErr error
	for _, name := range tries {
		f, err := os.Open(name)
		if err == nil {
			var fi fs.FileInfo
			if fi, err = f.Stat(); err == nil && fi.Mode().IsRegular() {
				return openFile{f: f}, fileID{path: m.path, size: fi.Size(), mtime: fi.ModTime()}, nil
			}
			f.Close()
			if err == nil {
				err = fmt.Errorf("%s is not a regular file", name)
			}
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return openFile{}, fileID{}, firstErr
}

// maxVDSOBytes bounds the read of a vDSO mapping; real ones are a few pages.
const maxVDSOBytes = 1 << 20

// readVDSO reads the vDSO image from the memory of the process whose
// procfs directory is dir.
func (s *Symbolizer) readVDSO(dir string, m *mapping) (openFile, fileID, error) {
	if m.end-m.start > maxVDSOBytes {
		return openFile{}, fileID{}, errNoFile
	}
	f, err := os.Open(filepath.Join(dir, "mem"))
	if err != nil {
		return openFile{}, fileID{}, err
	}
	defer f.Close()
	b := make([]byte, m.end-m.start)
	if _, err := f.ReadAt(b, int64(m.start)); err != nil {
		return openFile{}, fileID{}, fmt.Errorf("read vdso: %w", err)
	}
	return openFile{mem: b}, fileID{path: m.path, size: int64(len(b))}, nil
}

// Kernel symbolizes a kernel stack, leaf first, from /proc/kallsyms. As in
// User, every address but the first is looked up at addr-1. The result
// has one slice of frames per address, each holding one frame.
func (s *Symbolizer) Kernel(addrs []uint64) [][]Frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kernel == nil {
		s.readKallsyms()
	}
	out := make([][]Frame, len(addrs))
	buf := make([]Frame, 0, len(addrs))
	refreshed := false
	for i, addr := range addrs {
		at := addr
		if i > 0 && at > 0 {
			at--
		}
		name, module, ok := s.kernel.lookup(at)
		if !ok && !s.kernel.hidden && !refreshed && time.Since(s.kReadAt) >= kallsymsRefreshInterval {
			refreshed = true
			s.readKallsyms()
			name, module, ok = s.kernel.lookup(at)
		}
		start := len(buf)
		switch {
		case ok:
			if module == "" {
				module = kernelModule
			}
			s.named++
			buf = append(buf, Frame{Function: name, Module: module, Addr: addr})
		case s.kernel.hidden:
			buf = s.unnamedFrame(buf, addr, kernelModule, addr, "", ReasonKernelHidden)
		default:
			buf = s.unnamedFrame(buf, addr, kernelModule, addr, "", ReasonNoSymbols)
		}
		out[i] = buf[start:len(buf):len(buf)]
	}
	return out
}

// readKallsyms (re)reads the kernel symbols. A file that cannot be read or
// parsed counts as hidden: either way no kernel frame can be named.
func (s *Symbolizer) readKallsyms() {
	s.kReadAt = time.Now()
	f, err := os.Open(filepath.Join(s.procRoot, "kallsyms"))
	if err == nil {
		defer f.Close()
		if ks, err := readKallsymsFrom(f); err == nil {
			s.kernel = ks
			return
		}
	}
	s.kernel = &kernelSymbols{hidden: true}
}

// Forget drops what is kept of process pid: call it when the process
// exits. Its binaries stay cached for other processes until evicted.
func (s *Symbolizer) Forget(pid uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.procs, pid)
}

// Stats returns the counters; the Unnamed map is a copy.
func (s *Symbolizer) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{
		Named:          s.named,
		Unnamed:        make(map[string]int64, len(s.unnamed)),
		CacheBytes:     s.cache.usedBytes,
		BinariesCached: s.cache.lru.Len(),
		BinariesLoaded: s.cache.loads,
		Evictions:      s.cache.evictions,
		LoadErrors:     s.loadErrors,
		Processes:      len(s.procs),
	}
	for r, n := range s.unnamed {
		st.Unnamed[r] = n
	}
	if s.kernel != nil {
		st.KernelBytes = s.kernel.sizeBytes()
	}
	return st
}
