package symbolize

import (
	"os"
	"reflect"
	"runtime"
	"testing"
)

// framelessLeaf is small enough that the Go compiler gives it no frame:
// it pushes nothing, and its return address stays at the stack pointer.
//
//go:noinline
func framelessLeaf(x uint64) uint64 { return x*3 + 1 }

// framelessLoop is a leaf without a frame that is longer than one
// instruction, so that the test can ask about pcs inside it.
//
//go:noinline
func framelessLoop(n uint64) uint64 {
	x := n
	for i := uint64(0); i < n; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x
}

// framedCaller has a frame, for the call it makes. It returns the return
// address into itself (after its call of runtime.Callers) and the one into
// its caller.
//
//go:noinline
func framedCaller() (inside, ret uint64) {
	var pcs [2]uintptr
	if runtime.Callers(1, pcs[:]) < 2 {
		return 0, 0
	}
	return uint64(pcs[0]), uint64(pcs[1])
}

func requireAMD64(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	if runtime.GOARCH != "amd64" {
		t.Skip("LeafFrameless reads x86-64 code only")
	}
}

// TestLeafFramelessGo asks about functions of the test binary itself,
// through the pcsp table of its pclntab.
func TestLeafFramelessGo(t *testing.T) {
	requireAMD64(t)
	pid := uint32(os.Getpid())
	leaf := uint64(reflect.ValueOf(framelessLeaf).Pointer())
	inside, ret := framedCaller()
	if inside == 0 {
		t.Fatal("runtime.Callers found no callers")
	}
	s := New(Options{})
	// Every instruction of a leaf without a frame, and its end.
	loop := uint64(reflect.ValueOf(framelessLoop).Pointer())
	end := goFuncEnd(t, s, pid, loop)
	if end-loop < 16 {
		t.Fatalf("framelessLoop is %d bytes, want a loop of several instructions", end-loop)
	}
	for pc := loop; pc < end; pc++ {
		if !s.LeafFrameless(pid, pc, ret) {
			t.Fatalf("framelessLoop+%#x: false, want true", pc-loop)
		}
	}
	for _, tc := range []struct {
		name    string
		pc, ret uint64
		want    bool
	}{
		{"frameless leaf", leaf + 1, ret, true},
		{"framed function before its prologue", uint64(reflect.ValueOf(framedCaller).Pointer()), ret, true},
		{"framed function after its prologue", inside, ret, false},
		// A function's entry follows padding, not a call.
		{"candidate not after a call", leaf + 1, leaf, false},
		{"candidate in no mapping", leaf + 1, 0x10, false},
		{"leaf in no mapping", 0x10, ret, false},
	} {
		if got := s.LeafFrameless(pid, tc.pc, tc.ret); got != tc.want {
			t.Errorf("%s: LeafFrameless(%#x, %#x) = %v, want %v", tc.name, tc.pc, tc.ret, got, tc.want)
		}
	}
	if s.LeafFrameless(1<<30, leaf, ret) {
		t.Error("a process that does not exist: true, want false")
	}
}

// goFuncEnd returns the end of the code of the Go function at the runtime
// address entry in process pid, where its line table ends (the padding
// after it is no code), from the pclntab that s loaded.
func goFuncEnd(t *testing.T, s *Symbolizer, pid uint32, entry uint64) uint64 {
	t.Helper()
	s.User(pid, []uint64{entry})
	m := findMapping(s.procs[pid].maps, entry)
	if m == nil {
		t.Fatalf("%#x is in no mapping", entry)
	}
	b, reason := s.binaryFor(pid, m)
	if b == nil {
		t.Fatalf("binary of %#x: %s", entry, reason)
	}
	elfPC, _ := b.elfAddr(m.fileOffset(entry))
	for _, src := range b.sources {
		if g, ok := src.(*goTable); ok {
			f, ok := g.funcFor(elfPC)
			if !ok || f.entry != elfPC {
				break
			}
			pc := elfPC
			for {
				if _, ok := g.pcvalue(f.pcln, f.entry, pc); !ok {
					return entry + (pc - elfPC)
				}
				pc++
			}
		}
	}
	t.Fatalf("no Go function starts at %#x", entry)
	return 0
}

// TestLeafFramelessC asks about a C program's gcc-built leaf, which sets
// up no frame even with -fno-omit-frame-pointer, and its framed main.
func TestLeafFramelessC(t *testing.T) {
	requireAMD64(t)
	for _, tc := range []struct {
		name     string
		flags    []string
		stripped bool
	}{
		{"c-nopie", []string{"-no-pie"}, false},
		{"c-pie", []string{"-fPIE", "-pie"}, false},
		{"c-pie-stripped", []string{"-fPIE", "-pie", "-s"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pid, addrs := startCAddrs(t, cProg(t, tc.name, tc.flags...))
			work, ret := addrs[0], addrs[2]
			s := New(Options{})
			if got := s.LeafFrameless(pid, work+3, ret); got == tc.stripped {
				t.Errorf("in work (frameless): %v, want %v", got, !tc.stripped)
			}
			// Without symbols the function's start is unknown: unsure.
			if got := s.LeafFrameless(pid, work, ret); got == tc.stripped {
				t.Errorf("at the entry of work: %v, want %v", got, !tc.stripped)
			}
			if s.LeafFrameless(pid, ret, ret) {
				t.Errorf("in main (framed): true, want false")
			}
			if s.LeafFrameless(pid, work+3, work) {
				t.Errorf("candidate not after a call: true, want false")
			}
		})
	}
}

func TestSetsUpFrame(t *testing.T) {
	for _, tc := range []struct {
		code []byte
		want bool
	}{
		{[]byte{0x55, 0x48, 0x89, 0xe5}, true},              // push %rbp; mov %rsp,%rbp
		{[]byte{0x41, 0x54, 0x55}, true},                    // push %r12
		{[]byte{0x53}, true},                                // push %rbx
		{[]byte{0x48, 0x83, 0xec, 0x18}, true},              // sub $0x18,%rsp
		{[]byte{0x48, 0x81, 0xec, 0, 1, 0, 0}, true},        // sub $0x100,%rsp
		{[]byte{0x48, 0x89, 0xf8}, false},                   // mov %rdi,%rax
		{[]byte{0x48, 0x85, 0xff, 0x7e, 0x21}, false},       // test %rdi,%rdi; jle
		{[]byte{0xb8, 0x27, 0, 0, 0, 0x0f, 0x05}, false},    // mov $39,%eax; syscall
		{[]byte{0x48, 0x83, 0xc4, 0x08}, false},             // add $8,%rsp
		{[]byte{0x48, 0x8b, 0x44, 0x24, 0x08, 0xc3}, false}, // mov 8(%rsp),%rax
	} {
		if got := setsUpFrame(tc.code); got != tc.want {
			t.Errorf("setsUpFrame(% x) = %v, want %v", tc.code, got, tc.want)
		}
	}
}

func TestEndsWithCall(t *testing.T) {
	for _, tc := range []struct {
		code []byte
		want bool
	}{
		{[]byte{0x48, 0x89, 0xfb, 0xe8, 0xc6, 0xff, 0xff, 0xff}, true},  // call rel32
		{[]byte{0xe8, 0, 0, 0, 0}, true},                                // call rel32, nothing before
		{[]byte{0x90, 0x90, 0x90, 0x90, 0x90, 0xff, 0xd0}, true},        // call *%rax
		{[]byte{0x90, 0x41, 0xff, 0xd3}, true},                          // call *%r11
		{[]byte{0x90, 0xff, 0x10}, true},                                // call *(%rax)
		{[]byte{0x90, 0xff, 0x50, 0x18}, true},                          // call *0x18(%rax)
		{[]byte{0x90, 0xff, 0x54, 0x24, 0x08}, true},                    // call *0x8(%rsp)
		{[]byte{0x90, 0xff, 0x15, 0x12, 0x34, 0x56, 0x00}, true},        // call *disp32(%rip)
		{[]byte{0xff, 0x94, 0xc1, 0x00, 0x01, 0x00, 0x00}, true},        // call *0x100(%rcx,%rax,8)
		{[]byte{0x90, 0x90, 0x90, 0x90, 0x90, 0xff, 0xe0}, false},       // jmp *%rax (ff /4)
		{[]byte{0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0xc3}, false},       // ret
		{[]byte{0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc}, false},       // int3 padding
		{[]byte{0x90, 0x90, 0x90, 0xff, 0x15, 0x12, 0x34, 0x56}, false}, // a call's tail, not its end
		{[]byte{0xd0}, false},
	} {
		if got := endsWithCall(tc.code); got != tc.want {
			t.Errorf("endsWithCall(% x) = %v, want %v", tc.code, got, tc.want)
		}
	}
}
