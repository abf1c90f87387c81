package symbolize

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests build real programs, run them, and symbolize the addresses the
// programs report about themselves through /proc/PID, as the agent will.

var (
	buildDir  string
	buildMu   sync.Mutex
	buildErrs = map[string]error{}
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "symbolize-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// build runs a build command once per name and returns the output path.
func build(t testing.TB, name string, cmd func(out string) *exec.Cmd) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	out := filepath.Join(buildDir, name)
	err, done := buildErrs[name]
	if !done {
		c := cmd(out)
		if b, cerr := c.CombinedOutput(); cerr != nil {
			err = fmt.Errorf("%s: %v\n%s", strings.Join(c.Args, " "), cerr, b)
		}
		buildErrs[name] = err
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// goProg builds testdata/goprog with extra go build flags.
func goProg(t testing.TB, name string, flags ...string) string {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	return build(t, name, func(out string) *exec.Cmd {
		args := append([]string{"build", "-o", out}, flags...)
		return exec.Command("go", append(args, "./testdata/goprog")...)
	})
}

// cProg builds testdata/cprog/main.c with extra gcc flags.
func cProg(t testing.TB, name string, flags ...string) string {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("needs gcc")
	}
	return build(t, name, func(out string) *exec.Cmd {
		args := append([]string{"-O1", "-fno-omit-frame-pointer", "-o", out}, flags...)
		return exec.Command("gcc", append(args, "testdata/cprog/main.c", "-ldl")...)
	})
}

// start runs path with args and returns its PID and the first line it
// prints. The process is killed when the test ends.
func start(t testing.TB, path string, args ...string) (uint32, string) {
	t.Helper()
	cmd := exec.Command(path, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- l
	}()
	select {
	case l := <-line:
		if l == "" {
			t.Fatalf("%s printed nothing", path)
		}
		return uint32(cmd.Process.Pid), strings.TrimSpace(l)
	case <-time.After(10 * time.Second):
		t.Fatalf("%s printed nothing in 10s", path)
	}
	return 0, ""
}

// goReport is what testdata/goprog prints about itself.
type goReport struct {
	Spin     uint64 // entry of main.spin
	SpinFile string
	SpinLine int
	PCs      []uint64 // runtime.Callers from inside the inlined helper
	Frames   []goFrame
}

// goFrame is a frame of runtime.CallersFrames.
type goFrame struct {
	Function, File string
	Line           int
}

// parseGoReport parses goprog's line of tab-separated fields.
func parseGoReport(line string) (goReport, error) {
	f := strings.Split(line, "\t")
	var rep goReport
	bad := func(what string) (goReport, error) { return goReport{}, fmt.Errorf("report %q: bad %s", line, what) }
	next := func() string {
		if len(f) == 0 {
			return ""
		}
		s := f[0]
		f = f[1:]
		return s
	}
	var err error
	if rep.Spin, err = strconv.ParseUint(next(), 16, 64); err != nil {
		return bad("entry")
	}
	rep.SpinFile = next()
	if rep.SpinLine, err = strconv.Atoi(next()); err != nil {
		return bad("line")
	}
	n, err := strconv.Atoi(next())
	if err != nil || n <= 0 || n > len(f) {
		return bad("PC count")
	}
	for range n {
		pc, err := strconv.ParseUint(next(), 16, 64)
		if err != nil {
			return bad("PC")
		}
		rep.PCs = append(rep.PCs, pc)
	}
	if n, err = strconv.Atoi(next()); err != nil || 3*n != len(f) {
		return bad("frame count")
	}
	for range n {
		fn, file := next(), next()
		line, err := strconv.Atoi(next())
		if err != nil {
			return bad("frame line")
		}
		rep.Frames = append(rep.Frames, goFrame{fn, file, line})
	}
	return rep, nil
}

func startGo(t *testing.T, path string, args ...string) (uint32, goReport) {
	t.Helper()
	pid, line := start(t, path, args...)
	rep, err := parseGoReport(line)
	if err != nil {
		t.Fatal(err)
	}
	return pid, rep
}

// checkGoProcess checks what s makes of the addresses goprog reported.
func checkGoProcess(t *testing.T, s *Symbolizer, pid uint32, rep goReport, module string) {
	t.Helper()
	// One stack: the entry of main.spin as the leaf, then the return
	// addresses runtime.Callers saw from inside the inlined helper.
	out := s.User(pid, append([]uint64{rep.Spin}, rep.PCs...))
	got := out[0]
	want := Frame{Function: "main.spin", File: rep.SpinFile, Line: rep.SpinLine, Module: module, Addr: rep.Spin, BuildID: got[0].BuildID}
	if len(got) != 1 || got[0] != want || want.BuildID == "" {
		t.Errorf("leaf %#x: got %+v, want [%+v] with a build ID", rep.Spin, got, want)
	}

	// The runtime gives one PC per logical frame: the physical return
	// address, then one made-up PC per frame inlined there. So a physical
	// PC that expands to k frames is followed by k-1 PCs to skip, and the
	// frames must match runtime.CallersFrames one for one.
	j := 0
	for i := 0; i < len(rep.PCs); {
		frames := out[1+i]
		for k, f := range frames {
			if j+k >= len(rep.Frames) {
				t.Fatalf("pc %#x: %d frames, more than the runtime's %d", rep.PCs[i], len(frames), len(rep.Frames))
			}
			w := rep.Frames[j+k]
			if f.Function != w.Function || f.File != w.File || f.Line != w.Line || f.Inlined != (k < len(frames)-1) ||
				f.Reason != "" || f.Module != module || f.Addr != rep.PCs[i] {
				t.Errorf("pc %#x frame %d: got %+v, want %s %s:%d inlined=%v", rep.PCs[i], k, f, w.Function, w.File, w.Line, k < len(frames)-1)
			}
		}
		i += len(frames)
		j += len(frames)
	}
	if j != len(rep.Frames) {
		t.Errorf("got %d frames for the stack, the runtime %d", j, len(rep.Frames))
	}
	// The first PC is the call made from helper's inlined body.
	if f := out[1]; len(f) < 2 || f[0].Function != "main.helper" || !f[0].Inlined || f[1].Function != "main.spin" || f[1].Inlined {
		t.Errorf("pc %#x: got %+v, want main.helper inlined into main.spin", rep.PCs[0], f)
	}
}

func TestGoBinaries(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"go-plain", nil},
		{"go-stripped", []string{"-ldflags=-s -w"}},
		{"go-pie", []string{"-buildmode=pie"}},
		{"go-pie-stripped", []string{"-buildmode=pie", "-ldflags=-s -w"}},
		// The external linker puts C start-up code before runtime.text.
		{"go-external", []string{"-ldflags=-linkmode=external"}},
		{"go-external-pie-stripped", []string{"-buildmode=pie", "-ldflags=-linkmode=external -s -w"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if strings.HasPrefix(tc.name, "go-external") {
				if _, err := exec.LookPath("gcc"); err != nil {
					t.Skip("needs gcc")
				}
			}
			path := goProg(t, tc.name, tc.flags...)
			pid, rep := startGo(t, path)
			s := New(Options{})
			checkGoProcess(t, s, pid, rep, tc.name)
			if st := s.Stats(); st.Named == 0 || len(st.Unnamed) != 0 || st.LoadErrors != 0 {
				t.Errorf("stats: got %+v, want only named frames", st)
			}
			if tc.name == "go-external" {
				// C code linked in is named from .symtab.
				start := symbolAddr(t, path, "_start")
				if f := s.User(pid, []uint64{start})[0]; len(f) != 1 || f[0].Function != "_start" {
					t.Errorf("_start %#x: got %+v, want _start", start, f)
				}
			}
		})
	}
}

// TestGoNoSectionHeaders runs a stripped Go binary whose section headers
// are gone as well, as after sstrip: the pclntab is found by its magic
// number and runtime.text and the inline trees through the moduledata.
func TestGoNoSectionHeaders(t *testing.T) {
	stripped := goProg(t, "go-stripped", "-ldflags=-s -w")
	path := filepath.Join(t.TempDir(), "go-noshdr")
	dropSectionHeaders(t, stripped, path)
	if ef, err := elf.Open(path); err != nil || len(ef.Sections) != 0 {
		t.Fatalf("section headers still there (%v)", err)
	}
	pid, rep := startGo(t, path)
	checkGoProcess(t, New(Options{}), pid, rep, "go-noshdr")
}

// dropSectionHeaders copies an ELF64 file, zeroing e_shoff, e_shnum and
// e_shstrndx.
func dropSectionHeaders(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint64(b[0x28:], 0) // e_shoff
	binary.LittleEndian.PutUint16(b[0x3c:], 0) // e_shnum
	binary.LittleEndian.PutUint16(b[0x3e:], 0) // e_shstrndx
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestMountNamespace runs a program from a file system mounted only in its
// own mount namespace, as in a container: the path in its maps does not
// exist for the agent, and is read through /proc/PID/root.
func TestMountNamespace(t *testing.T) {
	src := goProg(t, "go-plain")
	dir := t.TempDir()
	script := fmt.Sprintf("mount -t tmpfs none %[1]s && cp %[2]s %[1]s/go-ns && exec %[1]s/go-ns", dir, src)
	if out, err := exec.Command("unshare", "-m", "--propagation", "private", "true").CombinedOutput(); err != nil {
		t.Skipf("cannot make a mount namespace: %v %s", err, out)
	}
	pid, rep := startGo(t, "unshare", "-m", "--propagation", "private", "sh", "-c", script)
	if _, err := os.Stat(filepath.Join(dir, "go-ns")); err == nil {
		t.Fatal("the program's file is visible outside its namespace")
	}
	checkGoProcess(t, New(Options{}), pid, rep, "go-ns")
}

// TestDeletedBinary deletes a running program's file: the path in maps then
// ends in " (deleted)" and the file is read through /proc/PID/map_files.
func TestDeletedBinary(t *testing.T) {
	src := goProg(t, "go-plain")
	path := filepath.Join(t.TempDir(), "go-deleted")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	pid, rep := startGo(t, path)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	s := New(Options{})
	got := s.User(pid, []uint64{rep.Spin})[0]
	if got[0].Function != "main.spin" {
		// Opening map_files entries needs CAP_SYS_ADMIN (or
		// CAP_CHECKPOINT_RESTORE); without it the binary is gone indeed.
		dir := fmt.Sprintf("/proc/%d/map_files", pid)
		entries, err := os.ReadDir(dir)
		if err == nil && len(entries) > 0 {
			var f *os.File
			if f, err = os.Open(filepath.Join(dir, entries[0].Name())); err == nil {
				f.Close()
			}
		}
		if err != nil && got[0].Reason == ReasonBinaryGone {
			t.Skipf("map_files not readable: %v", err)
		}
		t.Errorf("deleted binary: got %+v, want main.spin", got)
	}
}

// TestCacheByBuildID runs two processes of one binary: its symbols are read
// once. Forget drops a process but not the binary.
func TestCacheByBuildID(t *testing.T) {
	path := goProg(t, "go-plain")
	pid1, rep1 := startGo(t, path)
	pid2, rep2 := startGo(t, path)
	s := New(Options{})
	checkGoProcess(t, s, pid1, rep1, "go-plain")
	checkGoProcess(t, s, pid2, rep2, "go-plain")
	st := s.Stats()
	if st.BinariesLoaded != 1 || st.BinariesCached != 1 || st.Processes != 2 || st.CacheBytes <= 0 {
		t.Errorf("after two processes of one binary: got %+v, want 1 binary loaded and cached, 2 processes", st)
	}
	s.Forget(pid1)
	if st := s.Stats(); st.Processes != 1 || st.BinariesCached != 1 {
		t.Errorf("after Forget: got %+v, want 1 process and the binary still cached", st)
	}
	checkGoProcess(t, s, pid2, rep2, "go-plain")
	if st := s.Stats(); st.BinariesLoaded != 1 {
		t.Errorf("after Forget: binary loaded %d times, want 1", st.BinariesLoaded)
	}
}

// startC runs a C program and returns its PID and the addresses it printed.
func startC(t *testing.T, path string) (pid uint32, work, getpid uint64) {
	t.Helper()
	pid, addrs := startCAddrs(t, path)
	return pid, addrs[0], addrs[1]
}

// startCAddrs runs a C program and returns its PID and the addresses it
// printed: work, getpid and a return address in main.
func startCAddrs(t *testing.T, path string) (uint32, [3]uint64) {
	t.Helper()
	pid, line := start(t, path)
	var addrs [3]uint64
	f := strings.Fields(line)
	if len(f) != len(addrs) {
		t.Fatalf("cprog printed %q", line)
	}
	for i := range addrs {
		a, err := strconv.ParseUint(f[i], 16, 64)
		if err != nil || a == 0 {
			t.Fatalf("cprog printed %q", line)
		}
		addrs[i] = a
	}
	return pid, addrs
}

func TestCBinaries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		flags    []string
		stripped bool
	}{
		{"c-nopie", []string{"-no-pie"}, false},
		{"c-pie", []string{"-fPIE", "-pie"}, false},
		{"c-nopie-stripped", []string{"-no-pie", "-s"}, true},
		{"c-pie-stripped", []string{"-fPIE", "-pie", "-s"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := cProg(t, tc.name, tc.flags...)
			pid, work, getpid := startC(t, path)
			s := New(Options{})
			got := s.User(pid, []uint64{work})[0]
			if !tc.stripped {
				want := Frame{Function: "work", Module: tc.name, Addr: work, BuildID: got[0].BuildID}
				if len(got) != 1 || got[0] != want || want.BuildID == "" {
					t.Errorf("work %#x: got %+v, want [%+v] with a build ID", work, got, want)
				}
			} else {
				// work is in neither .symtab (gone) nor .dynsym (not exported).
				off := fileOffset(t, path, pid, work)
				want := Frame{Function: fmt.Sprintf("%s+0x%x", tc.name, off), Module: tc.name, Addr: work, BuildID: got[0].BuildID, Reason: ReasonNoSymbols}
				if len(got) != 1 || got[0] != want {
					t.Errorf("work %#x: got %+v, want [%+v]", work, got, want)
				}
			}
			// getpid is named from libc's .dynsym.
			if f := s.User(pid, []uint64{getpid})[0]; len(f) != 1 || !strings.Contains(f[0].Function, "getpid") || !strings.HasPrefix(f[0].Module, "libc") || f[0].Reason != "" {
				t.Errorf("getpid %#x: got %+v, want getpid in libc", getpid, f)
			}
		})
	}
}

// fileOffset computes the file offset of the runtime address addr in the
// ELF file path, as mapped in process pid, without the package's code: the
// load bias is where the mapping of file offset 0 starts, minus the
// lowest PT_LOAD's page-aligned address.
func fileOffset(t *testing.T, path string, pid uint32, addr uint64) uint64 {
	t.Helper()
	ef, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	var base uint64
	for _, l := range strings.Split(string(maps), "\n") {
		f := strings.Fields(l)
		if len(f) == 6 && f[2] == "00000000" && f[5] == path {
			base, _ = strconv.ParseUint(strings.Split(f[0], "-")[0], 16, 64)
			break
		}
	}
	var bias uint64
	first := true
	for _, p := range ef.Progs {
		if p.Type == elf.PT_LOAD && first {
			bias, first = base-(p.Vaddr&^0xfff), false
		}
	}
	vaddr := addr - bias
	for _, p := range ef.Progs {
		if p.Type == elf.PT_LOAD && vaddr >= p.Vaddr && vaddr < p.Vaddr+p.Filesz {
			return vaddr - p.Vaddr + p.Off
		}
	}
	t.Fatalf("%#x is in no segment of %s", addr, path)
	return 0
}

func TestKernel(t *testing.T) {
	data, err := os.ReadFile("/proc/kallsyms")
	if err != nil {
		t.Skipf("no /proc/kallsyms: %v", err)
	}
	// Pick a core kernel function whose neighbours have other addresses,
	// so that its name is the only right answer.
	type sym struct {
		addr uint64
		name string
	}
	var syms []sym
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || (f[1] != "T" && f[1] != "t") {
			continue
		}
		a, _ := strconv.ParseUint(f[0], 16, 64)
		syms = append(syms, sym{a, f[2]})
	}
	if len(syms) == 0 || syms[0].addr == 0 {
		t.Skip("kernel addresses hidden (kptr_restrict or no CAP_SYSLOG)")
	}
	var pick sym
	for i := len(syms) / 2; i+1 < len(syms); i++ {
		if syms[i-1].addr < syms[i].addr && syms[i].addr+1 < syms[i+1].addr {
			pick = syms[i]
			break
		}
	}
	s := New(Options{})
	got := s.Kernel([]uint64{pick.addr, pick.addr + 1})
	for i, f := range got {
		want := Frame{Function: pick.name, Module: "[kernel.kallsyms]", Addr: pick.addr + uint64(i)}
		if len(f) != 1 || f[0] != want {
			t.Errorf("kernel address %d: got %+v, want [%+v]", i, f, want)
		}
	}
	if st := s.Stats(); st.Named != 2 || st.KernelBytes == 0 {
		t.Errorf("stats: got %+v, want 2 named and the kernel table counted", st)
	}
}

func TestKernelHidden(t *testing.T) {
	root := t.TempDir()
	hidden := "0000000000000000 T _text\n0000000000000000 T do_syscall_64\n0000000000000000 t ext4_fill_super\t[ext4]\n"
	if err := os.WriteFile(filepath.Join(root, "kallsyms"), []byte(hidden), 0o644); err != nil {
		t.Fatal(err)
	}
	s := New(Options{ProcRoot: root})
	got := s.Kernel([]uint64{0xffffffff81001234})[0]
	want := Frame{Function: "[kernel.kallsyms]+0xffffffff81001234", Module: "[kernel.kallsyms]", Addr: 0xffffffff81001234, Reason: ReasonKernelHidden}
	if len(got) != 1 || got[0] != want {
		t.Errorf("got %+v, want [%+v]", got, want)
	}
	if st := s.Stats(); st.Unnamed[ReasonKernelHidden] != 1 {
		t.Errorf("stats: got %+v, want 1 unnamed for %q", st, ReasonKernelHidden)
	}
}

// fakeProc lays out a procfs directory for process pid that maps the
// executable segment of the ELF file src at its own addresses, from a
// file at /bin/<name> in the process's root. It returns the procfs root,
// and the file as the process sees it on the host.
func fakeProc(t *testing.T, root string, pid int, src, name string) string {
	t.Helper()
	ef, err := elf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	dir := filepath.Join(root, strconv.Itoa(pid))
	bin := filepath.Join(dir, "root", "bin", name)
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	var maps strings.Builder
	for _, p := range ef.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 {
			start, end := p.Vaddr&^0xfff, (p.Vaddr+p.Filesz+0xfff)&^0xfff
			fmt.Fprintf(&maps, "%08x-%08x r-xp %08x 08:01 1234 /bin/%s\n", start, end, p.Off&^0xfff, name)
		}
	}
	fmt.Fprintf(&maps, "7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0 [stack]\n")
	if err := os.WriteFile(filepath.Join(dir, "maps"), []byte(maps.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return bin
}

// symbolAddr returns the address of the function name in the ELF file path.
func symbolAddr(t *testing.T, path, name string) uint64 {
	t.Helper()
	ef, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	syms, err := ef.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range syms {
		if s.Name == name {
			return s.Value
		}
	}
	t.Fatalf("%s has no symbol %s", path, name)
	return 0
}

// TestFakeProc reads a binary through the root directory of a made-up
// procfs, without map_files to fall back on, with reasons for every way a
// frame can stay unnamed.
func TestFakeProc(t *testing.T) {
	src := cProg(t, "c-nopie", "-no-pie")
	work := symbolAddr(t, src, "work")
	root := t.TempDir()
	bin := fakeProc(t, root, 42, src, "prog")

	s := New(Options{ProcRoot: root})
	got := s.User(42, []uint64{work, 0x7ffc00000100, 0x10})
	if f := got[0]; len(f) != 1 || f[0].Function != "work" || f[0].Module != "prog" {
		t.Errorf("work: got %+v, want work in prog", f)
	}
	if f := got[1]; len(f) != 1 || f[0].Reason != ReasonNoMapping || f[0].Function != "[unknown]+0x7ffc00000100" {
		t.Errorf("stack address: got %+v, want %q", f, ReasonNoMapping)
	}
	if f := got[2]; len(f) != 1 || f[0].Reason != ReasonNoMapping {
		t.Errorf("address 0x10: got %+v, want %q", f, ReasonNoMapping)
	}
	if f := s.User(43, []uint64{work})[0]; len(f) != 1 || f[0].Reason != ReasonProcessGone {
		t.Errorf("unknown process: got %+v, want %q", f, ReasonProcessGone)
	}

	// A new Symbolizer, the file gone: no map_files in this procfs either.
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	s = New(Options{ProcRoot: root})
	if f := s.User(42, []uint64{work})[0]; len(f) != 1 || f[0].Reason != ReasonBinaryGone || !strings.HasPrefix(f[0].Function, "prog+0x") {
		t.Errorf("deleted binary: got %+v, want prog+0x... with %q", f, ReasonBinaryGone)
	}
	st := s.Stats()
	if st.Named != 0 || st.Unnamed[ReasonBinaryGone] != 1 {
		t.Errorf("stats: got %+v, want 1 unnamed for %q", st, ReasonBinaryGone)
	}
}

// TestEviction keeps at most one binary: using two in turn loads each again.
func TestEviction(t *testing.T) {
	a := cProg(t, "c-nopie", "-no-pie")
	b := cProg(t, "c-nopie-stripped", "-no-pie", "-s")
	root := t.TempDir()
	fakeProc(t, root, 1, a, "a")
	fakeProc(t, root, 2, b, "b")
	work := symbolAddr(t, a, "work") // the same code, at the same place, in b

	s := New(Options{ProcRoot: root, MaxCacheBytes: 1})
	for _, pid := range []uint32{1, 2, 1} {
		s.User(pid, []uint64{work})
	}
	st := s.Stats()
	if st.BinariesLoaded != 3 || st.Evictions != 2 || st.BinariesCached != 1 {
		t.Errorf("got %+v, want 3 loads, 2 evictions, 1 cached", st)
	}
	s = New(Options{ProcRoot: root})
	for _, pid := range []uint32{1, 2, 1} {
		s.User(pid, []uint64{work})
	}
	if st := s.Stats(); st.BinariesLoaded != 2 || st.Evictions != 0 || st.BinariesCached != 2 {
		t.Errorf("unbounded: got %+v, want 2 loads, 0 evictions, 2 cached", st)
	}
}

// TestVDSO names code in the vDSO, which has no file, from the process's
// memory: here the test's own process.
func TestVDSO(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	var start, end uint64
	for _, l := range strings.Split(string(maps), "\n") {
		if f := strings.Fields(l); len(f) == 6 && f[5] == "[vdso]" {
			lo, hi, _ := strings.Cut(f[0], "-")
			start, _ = strconv.ParseUint(lo, 16, 64)
			end, _ = strconv.ParseUint(hi, 16, 64)
		}
	}
	if start == 0 {
		t.Skip("no vDSO")
	}
	// Where __vdso_clock_gettime is, from the image in memory.
	mem, err := os.Open("/proc/self/mem")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	img := make([]byte, end-start)
	if _, err := mem.ReadAt(img, int64(start)); err != nil {
		t.Fatal(err)
	}
	ef, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	syms, err := ef.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	var base, addr uint64
	for _, p := range ef.Progs {
		if p.Type == elf.PT_LOAD {
			base = p.Vaddr
			break
		}
	}
	for _, s := range syms {
		if s.Name == "__vdso_clock_gettime" {
			addr = start + s.Value - base
		}
	}
	if addr == 0 {
		t.Skip("vDSO without __vdso_clock_gettime")
	}
	s := New(Options{})
	got := s.User(uint32(os.Getpid()), []uint64{addr + 1})[0]
	if len(got) != 1 || !strings.Contains(got[0].Function, "clock_gettime") || got[0].Module != "[vdso]" || got[0].BuildID == "" {
		t.Errorf("vDSO address %#x: got %+v, want clock_gettime in [vdso] with a build ID", addr, got)
	}
}

// TestConcurrent uses one Symbolizer from several goroutines (run it with
// -race).
func TestConcurrent(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	s := New(Options{})
	pid := uint32(os.Getpid())
	pc := uint64(reflect.ValueOf(TestConcurrent).Pointer())
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if f := s.User(pid, []uint64{pc})[0]; f[0].Function != "github.com/hearth-profiler/hearth/internal/agent/symbolize.TestConcurrent" {
					t.Errorf("got %+v", f)
					return
				}
				s.Kernel([]uint64{0xffffffff81000000})
				s.Stats()
				if i%5 == 0 {
					s.Forget(pid)
				}
			}
		}()
	}
	wg.Wait()
}

// TestCorruptPclntab breaks the magic number of a Go binary's pclntab: the
// load error is counted, and its functions are still named from .symtab,
// without file and line.
func TestCorruptPclntab(t *testing.T) {
	src := goProg(t, "go-plain")
	ef, err := elf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	pclntab := ef.Section(".gopclntab").Offset
	ef.Close()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	copy(b[pclntab:], "\x00\x00\x00\x00")
	corrupt := filepath.Join(t.TempDir(), "go-corrupt")
	if err := os.WriteFile(corrupt, b, 0o755); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	fakeProc(t, root, 7, corrupt, "go-corrupt")
	spin := symbolAddr(t, corrupt, "main.spin")
	s := New(Options{ProcRoot: root})
	got := s.User(7, []uint64{spin})[0]
	if len(got) != 1 || got[0].Function != "main.spin" || got[0].File != "" || got[0].Reason != "" {
		t.Errorf("got %+v, want main.spin from .symtab", got)
	}
	if st := s.Stats(); st.LoadErrors != 1 {
		t.Errorf("stats: got %+v, want 1 load error", st)
	}
}
