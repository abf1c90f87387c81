package symbolize

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"debug/gosym"
	"encoding/binary"
	"errors"
	"fmt"
)

// errNotGo reports a binary without a Go pclntab: not an error, only a
// sign to name its code from ELF symbols alone.
var errNotGo = errors.New("not a Go binary")

// loadGo finds the pclntab of a Go binary and returns a source reading it.
//
// The table is found through its section (.gopclntab), else through the
// runtime.pclntab symbol, else, when the section headers are gone too, by
// its magic number in the loaded segments. Two more addresses are needed:
// runtime.text, since function entries are offsets from it, and
// moduledata.gofunc, since inline trees are at offsets from it. Both are
// read from runtime.firstmoduledata, the linker-written record the runtime
// itself uses, found as the word in the data segments that points to the
// pclntab; symbols and the .text section stand in when it is not found.
func loadGo(ef *elf.File, file []byte, syms rawSymbols) (symbolSource, error) {
	symAddr := syms.addr
	var pcln uint64
	if s := ef.Section(".gopclntab"); s != nil && s.Type != elf.SHT_NOBITS {
		pcln = s.Addr
	} else if a := symAddr("runtime.pclntab"); a != 0 {
		pcln = a
	} else if len(ef.Sections) == 0 && isGo(ef, file) {
		return scanGo(ef, file)
	} else {
		return nil, errNotGo
	}
	data, err := segmentTail(ef, file, pcln)
	if err != nil {
		return nil, fmt.Errorf("read pclntab: %w", err)
	}
	text := symAddr("runtime.text")
	if text == 0 {
		if s := ef.Section(".text"); s != nil {
			text = s.Addr
		}
	}
	gofunc := symAddr("go:func.*", "go.func.*")
	return newGoSource(ef, file, pcln, data, text, gofunc)
}

// isGo reports whether ef was written by the Go linker: it has a Go build ID
// note, or build information that debug/buildinfo can read.
func isGo(ef *elf.File, file []byte) bool {
	if readNotes(ef).goID != "" {
		return true
	}
	_, err := buildinfo.Read(bytes.NewReader(file))
	return err == nil
}

// newGoSource builds the source for the pclntab at ELF address pcln, whose
// bytes (to the end of their segment) are data, a slice of file. text and
// gofunc are the fallbacks for what runtime.firstmoduledata says, 0 when
// unknown.
func newGoSource(ef *elf.File, file []byte, pcln uint64, data []byte, text, gofunc uint64) (symbolSource, error) {
	t, err := newGoTable(data, 0, nil)
	if errors.Is(err, errOldPclntab) {
		return newGosymTable(data, text)
	}
	if err != nil {
		return nil, err
	}
	t.heldBytes = int64(len(data))
	if mdText, mdGofunc, ok := findModuledata(ef, file, pcln, uint64(len(data)-len(t.funcnametab)), t.go120); ok {
		text, gofunc = mdText, mdGofunc
	}
	t.text = text
	if text == 0 || !t.inExecSegment(ef) {
		return nil, fmt.Errorf("pclntab at %#x: runtime.text not found", pcln)
	}
	if gofunc >= pcln && gofunc-pcln < uint64(len(data)) {
		// Since Go 1.26 the function data is inside the pclntab's range.
		t.inl = data[gofunc-pcln:]
	} else if gofunc != 0 {
		if inl, err := segmentTail(ef, file, gofunc); err == nil {
			t.inl = inl
			t.heldBytes += int64(len(inl))
		}
	}
	return t, nil
}

// inExecSegment checks t.text, which may be a guess: every function of t
// must then lie in an executable segment.
func (t *goTable) inExecSegment(ef *elf.File) bool {
	lo, hi := t.textRange()
	for _, p := range ef.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 && lo <= hi && lo >= p.Vaddr && hi <= p.Vaddr+p.Memsz {
			return true
		}
	}
	return false
}

// Word indexes in runtime.moduledata (runtime/symtab.go): pcHeader, then
// six slices (funcnametab first) and eight words before text. gofunc moved
// when Go 1.20 added covctrs and ecovctrs.
const (
	mdFuncnametab = 1
	mdText        = 22
	mdGofunc118   = 38
	mdGofunc120   = 40
)

// findModuledata looks in the writable segments for runtime.firstmoduledata:
// a pointer to the pclntab at pcln followed by a slice whose data pointer is
// the function name table, funcnameOff bytes further. It returns the
// moduledata's text and gofunc.
//
// The Go linker writes these pointers into the file even for PIE, where
// they are also relocated at load time, so the file's values are the
// unrelocated ELF addresses wanted here.
func findModuledata(ef *elf.File, file []byte, pcln, funcnameOff uint64, go120 bool) (text, gofunc uint64, ok bool) {
	ptrSize := 8
	if ef.Class == elf.ELFCLASS32 {
		ptrSize = 4
	}
	gofuncWord := mdGofunc118
	if go120 {
		gofuncWord = mdGofunc120
	}
	needle := make([]byte, ptrSize)
	putPtr(ef.ByteOrder, needle, pcln)
	for _, p := range ef.Progs {
		if p.Type != elf.PT_LOAD || p.Flags&elf.PF_W == 0 {
			continue
		}
		data := segmentData(p, file)
		for i := 0; ; {
			j := bytes.Index(data[i:], needle)
			if j < 0 {
				break
			}
			at := i + j
			i = at + 1
			if at%ptrSize != 0 || at+(gofuncWord+1)*ptrSize > len(data) {
				continue
			}
			word := func(k int) uint64 { return ptr(ef.ByteOrder, data[at+k*ptrSize:], ptrSize) }
			if word(mdFuncnametab) != pcln+funcnameOff {
				continue
			}
			return word(mdText), word(gofuncWord), true
		}
	}
	return 0, 0, false
}

func ptr(order binary.ByteOrder, b []byte, size int) uint64 {
	if size == 4 {
		return uint64(order.Uint32(b))
	}
	return order.Uint64(b)
}

func putPtr(order binary.ByteOrder, b []byte, v uint64) {
	if len(b) == 4 {
		order.PutUint32(b, uint32(v))
		return
	}
	order.PutUint64(b, v)
}

// scanGo finds the pclntab of a Go binary without section headers by its
// header: a known magic number at a pointer-aligned address, followed by a
// table that parses.
func scanGo(ef *elf.File, file []byte) (symbolSource, error) {
	align := uint64(8)
	if ef.Class == elf.ELFCLASS32 {
		align = 4
	}
	// Read-only data first: the Go linker puts the pclntab there; external
	// linkers may move it into a writable (RELRO) segment.
	for _, writable := range []bool{false, true} {
		for _, p := range ef.Progs {
			if p.Type != elf.PT_LOAD || p.Flags&elf.PF_X != 0 || (p.Flags&elf.PF_W != 0) != writable {
				continue
			}
			data := segmentData(p, file)
			for off := (align - p.Vaddr%align) % align; off+8 <= uint64(len(data)); off += align {
				m := ef.ByteOrder.Uint32(data[off:])
				if m != go118Magic && m != go120Magic && m != go116Magic && m != go12Magic {
					continue
				}
				if _, err := newGoTable(data[off:], 0, nil); err != nil && !errors.Is(err, errOldPclntab) {
					continue
				}
				if src, err := newGoSource(ef, file, p.Vaddr+off, data[off:], 0, 0); err == nil {
					return src, nil
				}
			}
		}
	}
	return nil, errors.New("no pclntab found in a Go binary without section headers")
}

// gosymTable names code from a pclntab older than Go 1.18 through
// debug/gosym. It returns no inlined frames: the older inline tree layouts
// are not read.
type gosymTable struct {
	t     *gosym.Table
	bytes int64
}

func newGosymTable(data []byte, text uint64) (*gosymTable, error) {
	t, err := gosym.NewTable(nil, gosym.NewLineTable(data, text))
	if err != nil {
		return nil, fmt.Errorf("read pre-1.18 pclntab: %w", err)
	}
	// gosym keeps a Func, a Sym and a name string per function: about 240
	// bytes each, measured on a Go 1.26 test binary.
	n := int64(len(data)) + int64(len(t.Funcs))*240
	return &gosymTable{t: t, bytes: n}, nil
}

func (g *gosymTable) sizeBytes() int64 { return g.bytes }

func (g *gosymTable) lookup(dst []Frame, pc uint64) ([]Frame, bool) {
	file, line, fn := g.t.PCToLine(pc)
	if fn == nil {
		return dst, false
	}
	return append(dst, Frame{Function: fn.Name, File: file, Line: line}), true
}
