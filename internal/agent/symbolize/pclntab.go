package symbolize

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
)

// Go's PC-line table ("pclntab") is written by the linker for the runtime's
// own tracebacks, so it survives `-ldflags=-s -w` and every other kind of
// stripping. Its layout is described in runtime/symtab.go (pcHeader, _func),
// runtime/symtabinl.go (inlinedCall) and internal/abi/symtab.go. goTable
// reads the layouts of Go 1.18 through at least 1.26; older tables go
// through debug/gosym instead (see gosymTable), without inlined frames.
//
// goTable is written by hand rather than built on debug/gosym for two
// reasons: debug/gosym does not expose a function's PCDATA and FUNCDATA,
// which inlined frames need, and gosym.NewTable materializes a Func and a
// name string for every function up front, where goTable reads the bytes on
// demand and only keeps the names it has returned.

// Magic numbers at the start of the table (internal/abi.PCLnTabMagic).
const (
	go12Magic  = 0xfffffffb // Go 1.2 to 1.15
	go116Magic = 0xfffffffa // Go 1.16 and 1.17
	go118Magic = 0xfffffff0 // Go 1.18 and 1.19: function entries are offsets from runtime.text
	go120Magic = 0xfffffff1 // Go 1.20 and later: _func and inlinedCall carry startLine
)

// Indexes of the tables a function carries (internal/abi: PCDATA_InlTreeIndex,
// FUNCDATA_InlTree), unchanged since Go 1.16.
const (
	pcdataInlTreeIndex = 2
	funcdataInlTree    = 3
)

// maxInlineDepth bounds the walk up an inline tree, so that a malformed
// table with a cycle in it still ends. The compiler's own inlining budget
// keeps real chains far shorter.
const maxInlineDepth = 100

// errOldPclntab reports a table from before Go 1.18, which goTable does not read.
var errOldPclntab = errors.New("pclntab from before Go 1.18")

// goTable answers PC lookups from a Go 1.18+ pclntab. It is not safe for
// concurrent use: it interns the names it returns.
type goTable struct {
	big     bool // the table is big-endian; see u32
	go120   bool
	quantum uint64
	text    uint64 // runtime.text: function entries are offsets from it
	nfunc   int

	funcnametab []byte
	cutab       []byte
	filetab     []byte
	pctab       []byte
	pclntable   []byte // the _func records; the functab is at its start
	functab     []byte // nfunc (entryOff, funcOff) pairs and the end offset, uint32 each

	// inl holds the bytes from moduledata.gofunc on: FUNCDATA offsets, and
	// so inline trees, are relative to it. nil when it could not be found;
	// lookups then return the physical function only.
	inl []byte

	names, files map[uint32]string // interned strings by table offset
	heldBytes    int64             // bytes of the loaded regions, set by the loader
	internBytes  int64
}

// newGoTable parses the header of the pclntab at the start of data. text is
// the address of runtime.text and inl the bytes at moduledata.gofunc (or nil).
// data may run past the end of the table.
func newGoTable(data []byte, text uint64, inl []byte) (*goTable, error) {
	if len(data) < 8 {
		return nil, errors.New("pclntab shorter than its header")
	}
	t := &goTable{text: text, inl: inl}
	// The magic numbers read differently in the other byte order, which
	// tells the order.
	var order binary.ByteOrder
	var magic uint32
	switch {
	case isPclntabMagic(binary.LittleEndian.Uint32(data)):
		order, magic = binary.LittleEndian, binary.LittleEndian.Uint32(data)
	case isPclntabMagic(binary.BigEndian.Uint32(data)):
		order, magic, t.big = binary.BigEndian, binary.BigEndian.Uint32(data), true
	default:
		return nil, fmt.Errorf("pclntab magic %#x unknown", binary.LittleEndian.Uint32(data))
	}
	if data[4] != 0 || data[5] != 0 {
		return nil, errors.New("pclntab header padding is not zero")
	}
	quantum, ptrSize := data[6], int(data[7])
	if (quantum != 1 && quantum != 2 && quantum != 4) || (ptrSize != 4 && ptrSize != 8) {
		return nil, fmt.Errorf("pclntab instruction size %d or pointer size %d invalid", quantum, ptrSize)
	}
	// After the first 8 bytes come pointer-sized words: nfunc, nfiles, an
	// unused word that was textStart, then the offsets of the tables from
	// the start of the header. Tables before Go 1.18 also start with nfunc.
	const nwords = 8
	if len(data) < 8+nwords*ptrSize {
		return nil, errors.New("pclntab shorter than its header")
	}
	word := func(i int) uint64 {
		if ptrSize == 4 {
			return uint64(order.Uint32(data[8+4*i:]))
		}
		return order.Uint64(data[8+8*i:])
	}
	// Each function takes at least two words of the function table (two
	// uint32s since Go 1.18); checking that they fit bounds what a reader
	// allocates per function (debug/gosym allocates up front).
	nfunc, fieldSize := word(0), uint64(4)
	if magic == go12Magic || magic == go116Magic {
		fieldSize = uint64(ptrSize)
	}
	if nfunc == 0 || nfunc > uint64(len(data))/(2*fieldSize) {
		return nil, fmt.Errorf("pclntab function count %d invalid for %d bytes", nfunc, len(data))
	}
	if magic == go12Magic || magic == go116Magic {
		return nil, errOldPclntab
	}
	t.go120 = magic == go120Magic
	t.quantum = uint64(quantum)
	table := func(i int) ([]byte, error) {
		off := word(i)
		if off > uint64(len(data)) {
			return nil, fmt.Errorf("pclntab table %d at offset %d past the end (%d bytes)", i, off, len(data))
		}
		return data[off:], nil
	}
	t.nfunc = int(nfunc)
	var err error
	for i, dst := range []*[]byte{&t.funcnametab, &t.cutab, &t.filetab, &t.pctab, &t.pclntable} {
		if *dst, err = table(3 + i); err != nil {
			return nil, err
		}
	}
	n := (2*t.nfunc + 1) * 4
	if len(t.pclntable) < n {
		return nil, fmt.Errorf("pclntab function table of %d entries does not fit", t.nfunc)
	}
	t.functab = t.pclntable[:n]
	// The runtime binary-searches this table; a table out of order is not one.
	for i := 1; i <= t.nfunc; i++ {
		if t.entryOff(i) < t.entryOff(i-1) {
			return nil, fmt.Errorf("pclntab function %d starts before function %d", i, i-1)
		}
	}
	t.names = map[uint32]string{}
	t.files = map[uint32]string{}
	return t, nil
}

// u32 reads a uint32 in the table's byte order. Calling the ByteOrder
// interface instead costs a dynamic call per read on the lookup path.
func (t *goTable) u32(b []byte) uint32 {
	if t.big {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

func isPclntabMagic(m uint32) bool {
	return m == go12Magic || m == go116Magic || m == go118Magic || m == go120Magic
}

// entryOff returns the entry of function i as an offset from text; i ==
// nfunc gives the end of the last function.
func (t *goTable) entryOff(i int) uint32 { return t.u32(t.functab[8*i:]) }

func (t *goTable) sizeBytes() int64 { return t.heldBytes + t.internBytes }

// textRange returns the ELF addresses of the code t names, end exclusive.
func (t *goTable) textRange() (lo, hi uint64) {
	return t.text + uint64(t.entryOff(0)), t.text + uint64(t.entryOff(t.nfunc))
}

// goFunc is one _func record (runtime/runtime2.go).
type goFunc struct {
	entry     uint64
	nameOff   uint32
	pcsp      uint32 // the stack pointer's offset from its value at entry
	pcfile    uint32
	pcln      uint32
	npcdata   uint32
	cuOffset  uint32
	nfuncdata uint32
	tables    []byte // pcdata[npcdata] then funcdata[nfuncdata], uint32 each
}

// funcFor returns the function holding the ELF address pc.
func (t *goTable) funcFor(pc uint64) (goFunc, bool) {
	if pc < t.text || pc-t.text >= uint64(t.entryOff(t.nfunc)) {
		return goFunc{}, false
	}
	off := uint32(pc - t.text)
	i := sort.Search(t.nfunc, func(i int) bool { return t.entryOff(i) > off }) - 1
	if i < 0 {
		return goFunc{}, false
	}
	// ^0 marks a hole between text sections that external linkers filled
	// with code Go does not know about.
	funcOff := t.u32(t.functab[8*i+4:])
	if funcOff == math.MaxUint32 || uint64(funcOff) >= uint64(len(t.pclntable)) {
		return goFunc{}, false
	}
	b := t.pclntable[funcOff:]
	// Go 1.20 inserted startLine (int32) before funcID, flag, padding and nfuncdata.
	hdr := 40
	if t.go120 {
		hdr = 44
	}
	if len(b) < hdr {
		return goFunc{}, false
	}
	f := goFunc{
		entry:     t.text + uint64(t.u32(b[0:])),
		nameOff:   t.u32(b[4:]),
		pcsp:      t.u32(b[16:]),
		pcfile:    t.u32(b[20:]),
		pcln:      t.u32(b[24:]),
		npcdata:   t.u32(b[28:]),
		cuOffset:  t.u32(b[32:]),
		nfuncdata: uint32(b[hdr-1]),
		tables:    b[hdr:],
	}
	if f.entry > pc {
		return goFunc{}, false
	}
	return f, true
}

// pcdata returns the offset in pctab of f's i'th PCDATA table, 0 if none.
func (t *goTable) pcdata(f *goFunc, i uint32) uint32 {
	if i >= f.npcdata || uint64(i)*4+4 > uint64(len(f.tables)) {
		return 0
	}
	return t.u32(f.tables[4*i:])
}

// funcdata returns the offset from gofunc of f's i'th FUNCDATA.
func (t *goTable) funcdata(f *goFunc, i uint32) (uint32, bool) {
	at := (uint64(f.npcdata) + uint64(i)) * 4
	if i >= f.nfuncdata || at+4 > uint64(len(f.tables)) {
		return 0, false
	}
	off := t.u32(f.tables[at:])
	return off, off != math.MaxUint32
}

// pcvalue decodes the pc-value table at off in pctab for the function
// starting at entry and returns the value in effect at target. Each step
// of the table is a zig-zag varint value delta and a varint pc delta (in
// instruction-size units); a value holds from the previous pc up to, not
// including, the new one.
func (t *goTable) pcvalue(off uint32, entry, target uint64) (int32, bool) {
	if off == 0 || uint64(off) >= uint64(len(t.pctab)) {
		return -1, false
	}
	p := t.pctab[off:]
	val, pc := int32(-1), entry
	for first := true; ; first = false {
		uv, n := uvarint(p)
		if n <= 0 || uv > math.MaxUint32 || (uv == 0 && !first) {
			return -1, false
		}
		p = p[n:]
		d := uint32(uv)
		if d&1 != 0 {
			d = ^(d >> 1)
		} else {
			d >>= 1
		}
		val += int32(d)
		pcDelta, n := uvarint(p)
		if n <= 0 || pcDelta > math.MaxUint32 {
			return -1, false
		}
		p = p[n:]
		pc += pcDelta * t.quantum
		if target < pc {
			return val, true
		}
	}
}

// uvarint is binary.Uvarint with the one-byte case, most of a pc-value
// table, inline.
func uvarint(p []byte) (uint64, int) {
	if len(p) > 0 && p[0] < 0x80 {
		return uint64(p[0]), 1
	}
	return binary.Uvarint(p)
}

// fileLine returns the source position of pc in f: the innermost one, for
// code inlined there.
func (t *goTable) fileLine(f *goFunc, pc uint64) (string, int) {
	line, ok := t.pcvalue(f.pcln, f.entry, pc)
	if !ok || line < 0 {
		line = 0
	}
	fileNo, ok := t.pcvalue(f.pcfile, f.entry, pc)
	if !ok || fileNo < 0 {
		return "", int(line)
	}
	// File numbers are per compilation unit; cutab maps them to offsets in filetab.
	at := (uint64(f.cuOffset) + uint64(fileNo)) * 4
	if at+4 > uint64(len(t.cutab)) {
		return "", int(line)
	}
	return t.file(t.u32(t.cutab[at:])), int(line)
}

// spDelta returns how many bytes the function holding the ELF address pc
// has pushed on the stack (or reserved) at pc, from its pcsp table: 0
// before its prologue, in a function without a frame, and after its
// epilogue.
func (t *goTable) spDelta(pc uint64) (int32, bool) {
	f, ok := t.funcFor(pc)
	if !ok {
		return 0, false
	}
	return t.pcvalue(f.pcsp, f.entry, pc)
}

// lookup appends the frames for the ELF address pc, innermost first: the
// functions inlined at pc, each marked Inlined, then the function the code
// physically belongs to. It reports false if no function holds pc.
func (t *goTable) lookup(dst []Frame, pc uint64) ([]Frame, bool) {
	f, ok := t.funcFor(pc)
	if !ok {
		return dst, false
	}
	// Each inlined call has an entry in the function's inline tree; the
	// InlTreeIndex PCDATA says which call an instruction belongs to (-1 for
	// none), and the entry gives the callee's name and parentPC, an
	// instruction of the caller whose position is the call site. Walking
	// from pc through parentPCs yields the logical frames, as the runtime's
	// inlineUnwinder does.
	cur := pc
	tree, hasTree := t.funcdata(&f, funcdataInlTree)
	index := t.pcdata(&f, pcdataInlTreeIndex)
	for depth := 0; hasTree && t.inl != nil && index != 0 && depth < maxInlineDepth; depth++ {
		i, ok := t.pcvalue(index, f.entry, cur)
		if !ok || i < 0 {
			break
		}
		nameOff, parentPC, ok := t.inlinedCall(tree, i)
		if !ok {
			break
		}
		file, line := t.fileLine(&f, cur)
		dst = append(dst, Frame{Function: t.name(nameOff), File: file, Line: line, Inlined: true})
		cur = f.entry + uint64(parentPC)
	}
	file, line := t.fileLine(&f, cur)
	return append(dst, Frame{Function: t.name(f.nameOff), File: file, Line: line}), true
}

// inlinedCall reads entry i of the inline tree at offset tree from gofunc.
// Go 1.20 and later write {funcID uint8; _ [3]byte; nameOff, parentPc,
// startLine int32}; Go 1.18 and 1.19 wrote {parent int16; funcID uint8;
// _ byte; file, line, nameOff, parentPc int32}.
func (t *goTable) inlinedCall(tree uint32, i int32) (nameOff uint32, parentPC uint32, ok bool) {
	size, nameAt, parentAt := uint64(20), uint64(12), uint64(16)
	if t.go120 {
		size, nameAt, parentAt = 16, 4, 8
	}
	at := uint64(tree) + uint64(i)*size
	if at+size > uint64(len(t.inl)) {
		return 0, 0, false
	}
	e := t.inl[at : at+size]
	parent := int32(t.u32(e[parentAt:]))
	if parent < 0 {
		return 0, 0, false
	}
	return t.u32(e[nameAt:]), uint32(parent), true
}

// name returns the function name at off in funcnametab.
func (t *goTable) name(off uint32) string { return t.intern(t.names, t.funcnametab, off) }

// file returns the file name at off in filetab.
func (t *goTable) file(off uint32) string { return t.intern(t.files, t.filetab, off) }

// intern returns the NUL-terminated string at off in tab, made once and
// kept in seen: the table is in a mapped file, and a name handed out must
// not point into it.
func (t *goTable) intern(seen map[uint32]string, tab []byte, off uint32) string {
	if s, ok := seen[off]; ok {
		return s
	}
	s := cString(tab, off)
	seen[off] = s
	t.internBytes += int64(len(s)) + internOverhead
	return s
}

// internOverhead approximates the bytes a map entry and string header cost.
const internOverhead = 48

// maxNameBytes bounds a name read from a table, so that a table missing its
// NUL terminators cannot turn each lookup into a copy of the rest of it.
const maxNameBytes = 64 << 10

// cString returns the NUL-terminated string at off in b ("" when off is
// outside b).
func cString(b []byte, off uint32) string {
	if uint64(off) >= uint64(len(b)) {
		return ""
	}
	b = b[off:]
	if len(b) > maxNameBytes {
		b = b[:maxNameBytes]
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
