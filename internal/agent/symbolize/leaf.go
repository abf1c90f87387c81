package symbolize

import (
	"debug/elf"
	"time"
)

// Frame-pointer unwinding starts at the sampled instruction and then follows
// the frame pointer. A function that has not set up a frame of its own at
// that instruction (a leaf built without one, which Go does for small leaves
// and gcc for leaves even with -fno-omit-frame-pointer, or any function
// before its prologue ran) leaves the frame pointer at its caller's frame,
// so the walk goes from the leaf straight to the caller's caller. The
// sampler records the word at the stack pointer, which in such a function is
// the return address into the missing caller; LeafFrameless says when it is.

// codeCheck is a question about the code at a file offset, whose answer
// objfile.codeChecks keeps: the code is the same in every process that maps
// the binary, and reading it costs a file open.
type codeCheck struct {
	off  uint64
	kind uint8
}

const (
	// checkNoFrame: how the native function starting at off begins, as
	// the bits noFrame and startsWithEndbr.
	checkNoFrame uint8 = iota
	// checkAfterCall: whether the code right before off is a call
	// instruction (isCall).
	checkAfterCall
)

// Bits of the answers to code checks.
const (
	noFrame         uint8 = 1 << iota // the first instruction sets up no frame
	startsWithEndbr                   // the function starts with endbr64
	isCall                            // a call ends right before the offset
)

// codeCheckBytes estimates the memory of one cached check (key, value
// and map overhead); maxCodeChecks bounds them per binary, so that the
// stray words the sampler records cannot grow the cache without end.
const (
	codeCheckBytes = 48
	maxCodeChecks  = 4096
)

// LeafFrameless reports whether ret, the word at the user stack pointer of
// a sample of process pid interrupted at pc (the leaf of its user stack), is
// the return address into the caller of the function holding pc. That takes
// two things: the function has pushed nothing on the stack at pc, so that
// the return address is still at the stack pointer; and the code before ret
// is a call, so that ret is a return address and not a local value that
// happens to point into code.
//
// Whether the function has pushed anything is read from Go's pcsp table
// (the stack pointer's offset at every instruction) for Go code, and from
// the first instruction of the function for native code: a function that
// neither pushes a register nor moves the stack pointer first is taken to
// be a leaf without a frame. That misses functions that save registers
// only on a slow path (shrink-wrapping); the call check, and the sampler's
// filter on the word, keep most of those out.
//
// It answers false whenever it cannot tell: an address in no mapping, a
// binary that cannot be read or has no symbols for pc, a Go table from
// before Go 1.18, and any binary that is not x86-64. On arm64 a leaf
// without a frame keeps its return address in the link register, which
// the sampler does not record yet.
func (s *Symbolizer) LeafFrameless(pid uint32, pc, ret uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.procs[pid]
	if p == nil {
		p = &process{}
		s.readMaps(pid, p)
		s.procs[pid] = p
	}
	if p.gone {
		return false
	}
	m := s.execMapping(pid, p, pc)
	if m == nil {
		return false
	}
	b, _ := s.binaryFor(pid, m)
	if b == nil || b.machine != elf.EM_X86_64 {
		return false
	}
	var noFrame bool
	if !s.guarded(b, func() { noFrame = s.noFrameAt(pid, m, b, pc) }) {
		m.key, m.failed = "", ReasonBinaryGone
		return false
	}
	if !noFrame {
		return false
	}
	// ret - 1 is inside the call, and so in the caller's mapping even
	// when the call is the last instruction of it.
	mr := s.execMapping(pid, p, ret-1)
	if mr == nil {
		return false
	}
	br, _ := s.binaryFor(pid, mr)
	if br == nil || br.machine != elf.EM_X86_64 {
		return false
	}
	return s.afterCall(pid, mr, br, ret)
}

// execMapping returns the mapping of p holding addr, re-reading the
// mappings once if none does and they are old enough, as User does.
func (s *Symbolizer) execMapping(pid uint32, p *process, addr uint64) *procMapping {
	m := findMapping(p.maps, addr)
	if m == nil && time.Since(p.readAt) >= mapsRefreshInterval {
		s.readMaps(pid, p)
		if !p.gone {
			m = findMapping(p.maps, addr)
		}
	}
	return m
}

// noFrameAt reports whether the function holding pc, in mapping m of
// binary b, has nothing pushed on the stack at pc.
func (s *Symbolizer) noFrameAt(pid uint32, m *procMapping, b *objfile, pc uint64) bool {
	off := m.fileOffset(pc)
	elfPC, ok := b.elfAddr(off)
	if !ok {
		return false
	}
	for _, src := range b.sources {
		switch src := src.(type) {
		case *goTable:
			if delta, ok := src.spDelta(elfPC); ok {
				return delta == 0
			}
		case *elfSymbols:
			start, ok := src.start(elfPC)
			if !ok {
				continue
			}
			entry := off - (elfPC - start)
			if entry < m.offset {
				return false // the function starts before the mapping
			}
			return s.nativeNoFrame(pid, m, b, entry, off)
		}
	}
	return false
}

// nativeNoFrame reports whether the native function at file offset entry,
// interrupted at file offset at, has nothing pushed on the stack there: at
// is its first instruction, or that instruction neither pushes a register
// nor moves the stack pointer (see LeafFrameless for what this misses).
func (s *Symbolizer) nativeNoFrame(pid uint32, m *procMapping, b *objfile, entry, at uint64) bool {
	if at == entry {
		return true // nothing of the function ran yet
	}
	k, ok := b.codeChecks[codeCheck{entry, checkNoFrame}]
	if !ok {
		var code [8]byte
		n := s.readCode(pid, m, entry, code[:])
		if n < len(code) {
			return false // unread: unsure, and not cached so that it is retried
		}
		first := 0
		if code[0] == 0xf3 && code[1] == 0x0f && code[2] == 0x1e && code[3] == 0xfa {
			// endbr64, the landing pad of indirect branch tracking,
			// which a function starts with when built with
			// -fcf-protection.
			first, k = 4, k|startsWithEndbr
		}
		if !setsUpFrame(code[first:]) {
			k |= noFrame
		}
		b.keepCheck(codeCheck{entry, checkNoFrame}, k)
		s.cache.resize(b)
	}
	if k&startsWithEndbr != 0 && at == entry+4 {
		return true // only the landing pad ran
	}
	return k&noFrame != 0
}

// setsUpFrame reports whether the x86-64 instruction at the start of code
// puts something on the stack: push %rbp (the frame pointer prologue), any
// other push, or sub $n, %rsp.
func setsUpFrame(code []byte) bool {
	c := code
	if len(c) > 0 && c[0] >= 0x40 && c[0] <= 0x4f { // REX prefix
		c = c[1:]
	}
	if len(c) == 0 {
		return true
	}
	if c[0] >= 0x50 && c[0] <= 0x57 { // push %reg (0x55: push %rbp)
		return true
	}
	// sub $imm8 or $imm32, %rsp: 48 83 ec ib, 48 81 ec id.
	return len(code) >= 3 && code[0] == 0x48 && (code[1] == 0x83 || code[1] == 0x81) && code[2] == 0xec
}

// afterCall reports whether the x86-64 code right before ret, in mapping m
// of binary b, is a call: call rel32 (e8), or an indirect call (ff /2) in
// any of its lengths.
func (s *Symbolizer) afterCall(pid uint32, m *procMapping, b *objfile, ret uint64) bool {
	off := m.fileOffset(ret)
	if k, ok := b.codeChecks[codeCheck{off, checkAfterCall}]; ok {
		return k&isCall != 0
	}
	// The longest call is 7 bytes (ff /2 with SIB and disp32); a call
	// cannot start before the mapping.
	n := min(uint64(maxCallBytes), ret-m.start)
	if n < 2 {
		return false
	}
	var code [maxCallBytes]byte
	if s.readCode(pid, m, off-n, code[:n]) < int(n) {
		return false // unread: unsure, and not cached so that it is retried
	}
	call := endsWithCall(code[:n])
	var k uint8
	if call {
		k = isCall
	}
	b.keepCheck(codeCheck{off, checkAfterCall}, k)
	s.cache.resize(b)
	return call
}

// maxCallBytes is the length of the longest x86-64 call instruction
// without prefixes but REX.
const maxCallBytes = 7

// endsWithCall reports whether code ends with a complete call instruction.
func endsWithCall(code []byte) bool {
	n := len(code)
	if n >= 5 && code[n-5] == 0xe8 {
		return true
	}
	for l := 2; l <= min(n, maxCallBytes); l++ {
		insn := code[n-l:]
		if insn[0] == 0xff && (insn[1]>>3)&7 == 2 && 1+modRMBytes(insn[1:]) == l {
			return true
		}
	}
	return false
}

// modRMBytes returns the length of a ModRM operand, b starting at the
// ModRM byte: the byte itself, a SIB byte and a displacement. It returns 0
// when b is too short to tell.
func modRMBytes(b []byte) int {
	mod, rm := b[0]>>6, b[0]&7
	n := 1
	if mod == 3 {
		return n
	}
	if rm == 4 {
		if len(b) < 2 {
			return 0
		}
		n++
		if mod == 0 && b[1]&7 == 5 {
			n += 4 // SIB without a base register: disp32
		}
	}
	switch {
	case mod == 0 && rm == 5:
		n += 4 // disp32(%rip)
	case mod == 1:
		n++
	case mod == 2:
		n += 4
	}
	return n
}

// keepCheck caches the answer to a code check, emptying the cache when it
// is full: stray words from the sampler would otherwise fill it for good.
func (b *objfile) keepCheck(k codeCheck, v uint8) {
	if b.codeChecks == nil || len(b.codeChecks) >= maxCodeChecks {
		b.codeChecks = make(map[codeCheck]uint8)
	}
	b.codeChecks[k] = v
}

// readCode reads the bytes at file offset off of the file that m maps into
// buf and returns how many it read. The code is read from the file, as the
// symbols are, so that it is the same for every process mapping it.
func (s *Symbolizer) readCode(pid uint32, m *procMapping, off uint64, buf []byte) int {
	f, _, err := s.openMapping(pid, &m.mapping)
	if err != nil {
		return 0
	}
	defer f.Close()
	n, _ := f.ReadAt(buf, int64(off))
	return n
}
