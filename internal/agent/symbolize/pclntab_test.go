package symbolize

import (
	"bytes"
	"debug/elf"
	"debug/gosym"
	"encoding/binary"
	"os"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// synthFunc describes one function of a synthetic pclntab.
type synthFunc struct {
	name     string
	size     uint32   // bytes of code
	file     string   // every pc is in this file
	lines    []pcSpan // pcln table
	inlIndex []pcSpan // PCDATA_InlTreeIndex table; nil for none
	inlTree  []synthInl
}

// pcSpan says value holds for pcs below end (an offset from the entry).
type pcSpan struct {
	end   uint32
	value int32
}

type synthInl struct {
	name     string
	parentPC uint32
}

// synthPclntab writes a 64-bit Go 1.20 (go120) or Go 1.18 pclntab of funcs
// laid out one after another from text offset 0, and the gofunc bytes
// holding their inline trees.
func synthPclntab(funcs []synthFunc, go120 bool, le binary.AppendByteOrder) (pcln, inl []byte) {
	var names, files, pctab, cutab []byte
	pctab = append(pctab, 0) // offset 0 means "no table"
	nameOff := map[string]uint32{}
	name := func(s string) uint32 {
		if off, ok := nameOff[s]; ok {
			return off
		}
		nameOff[s] = uint32(len(names))
		names = append(append(names, s...), 0)
		return nameOff[s]
	}
	table := func(spans []pcSpan) uint32 {
		if spans == nil {
			return 0
		}
		off := uint32(len(pctab))
		val, pc := int32(-1), uint32(0)
		for _, s := range spans {
			d := s.value - val
			uv := uint32(d) << 1
			if d < 0 {
				uv = uint32(^d)<<1 | 1
			}
			pctab = binary.AppendUvarint(pctab, uint64(uv))
			pctab = binary.AppendUvarint(pctab, uint64(s.end-pc))
			val, pc = s.value, s.end
		}
		return off
	}
	// One compilation unit per function, each with one file.
	var records [][]byte
	entry := uint32(0)
	var entries []uint32
	for i, f := range funcs {
		cutab = le.AppendUint32(cutab, uint32(len(files)))
		files = append(append(files, f.file...), 0)
		fileTab := table([]pcSpan{{f.size, 0}})
		r := le.AppendUint32(nil, entry)
		r = le.AppendUint32(r, name(f.name))
		r = le.AppendUint32(r, 0)              // args
		r = le.AppendUint32(r, 0)              // deferreturn
		r = le.AppendUint32(r, 0)              // pcsp
		r = le.AppendUint32(r, fileTab)        // pcfile
		r = le.AppendUint32(r, table(f.lines)) // pcln
		r = le.AppendUint32(r, 3)              // npcdata
		r = le.AppendUint32(r, uint32(i))      // cuOffset
		if go120 {
			r = le.AppendUint32(r, uint32(f.lines[0].value)) // startLine
		}
		r = append(r, 0, 0, 0, 4)                 // funcID, flag, pad, nfuncdata
		r = le.AppendUint32(r, 0)                 // PCDATA_UnsafePoint
		r = le.AppendUint32(r, 0)                 // PCDATA_StackMapIndex
		r = le.AppendUint32(r, table(f.inlIndex)) // PCDATA_InlTreeIndex
		for fd := 0; fd < 4; fd++ {
			if fd != funcdataInlTree || f.inlTree == nil {
				r = le.AppendUint32(r, ^uint32(0))
				continue
			}
			r = le.AppendUint32(r, uint32(len(inl)))
			for _, c := range f.inlTree {
				if go120 {
					inl = append(inl, 0, 0, 0, 0) // funcID, padding
					inl = le.AppendUint32(inl, name(c.name))
					inl = le.AppendUint32(inl, c.parentPC)
					inl = le.AppendUint32(inl, 0) // startLine
				} else {
					inl = append(inl, 0xff, 0xff, 0, 0) // parent, funcID, padding
					inl = le.AppendUint32(inl, 0)       // file
					inl = le.AppendUint32(inl, 0)       // line
					inl = le.AppendUint32(inl, name(c.name))
					inl = le.AppendUint32(inl, c.parentPC)
				}
			}
		}
		records = append(records, r)
		entries = append(entries, entry)
		entry += f.size
	}
	var pclntable []byte
	recOff := uint32(len(funcs)*8 + 4)
	for i := range funcs {
		pclntable = le.AppendUint32(pclntable, entries[i])
		pclntable = le.AppendUint32(pclntable, recOff)
		recOff += uint32(len(records[i]))
	}
	pclntable = le.AppendUint32(pclntable, entry)
	for _, r := range records {
		pclntable = append(pclntable, r...)
	}

	magic := uint32(go118Magic)
	if go120 {
		magic = go120Magic
	}
	hdr := le.AppendUint32(nil, magic)
	hdr = append(hdr, 0, 0, 1, 8)
	off := uint64(8 + 8*8)
	words := []uint64{uint64(len(funcs)), uint64(len(funcs)), 0}
	for _, t := range [][]byte{names, cutab, files, pctab, pclntable} {
		words = append(words, off)
		off += uint64(len(t))
	}
	for _, w := range words {
		hdr = le.AppendUint64(hdr, w)
	}
	return slices.Concat(hdr, names, cutab, files, pctab, pclntable), inl
}

// synthFuncs: f (100 bytes) has g inlined at [20, 40), and h inlined into
// g at [30, 40); k (50 bytes) has nothing inlined.
var synthFuncs = []synthFunc{
	{
		name: "main.f", size: 100, file: "f.go",
		lines:    []pcSpan{{10, 10}, {20, 11}, {30, 20}, {40, 30}, {100, 12}},
		inlIndex: []pcSpan{{20, -1}, {30, 0}, {40, 1}, {100, -1}},
		// g's call site is the instruction at 5 (line 10); h's at 25 (line 20).
		inlTree: []synthInl{{"main.g", 5}, {"main.h", 25}},
	},
	{name: "main.k", size: 50, file: "k.go", lines: []pcSpan{{50, 40}}},
}

func TestGoTableSynthetic(t *testing.T) {
	const text = 0x401000
	for _, tc := range []struct {
		go120 bool
		order binary.AppendByteOrder
	}{{true, binary.LittleEndian}, {false, binary.LittleEndian}, {true, binary.BigEndian}} {
		go120 := tc.go120
		pcln, inl := synthPclntab(synthFuncs, go120, tc.order)
		tab, err := newGoTable(pcln, text, inl)
		if err != nil {
			t.Fatalf("go120=%v %v: %v", go120, tc.order, err)
		}
		for _, c := range []struct {
			pc   uint64
			want []Frame
		}{
			{text + 0, []Frame{{Function: "main.f", File: "f.go", Line: 10}}},
			{text + 15, []Frame{{Function: "main.f", File: "f.go", Line: 11}}},
			{text + 25, []Frame{
				{Function: "main.g", File: "f.go", Line: 20, Inlined: true},
				{Function: "main.f", File: "f.go", Line: 10},
			}},
			{text + 35, []Frame{
				{Function: "main.h", File: "f.go", Line: 30, Inlined: true},
				{Function: "main.g", File: "f.go", Line: 20, Inlined: true},
				{Function: "main.f", File: "f.go", Line: 10},
			}},
			{text + 99, []Frame{{Function: "main.f", File: "f.go", Line: 12}}},
			{text + 100, []Frame{{Function: "main.k", File: "k.go", Line: 40}}},
			{text + 149, []Frame{{Function: "main.k", File: "k.go", Line: 40}}},
			{text + 150, nil},
			{text - 1, nil},
		} {
			got, ok := tab.lookup(nil, c.pc)
			if ok != (c.want != nil) || !cmp.Equal(got, c.want) {
				t.Errorf("go120=%v %v pc %#x: got %+v (%v), want %+v", go120, tc.order, c.pc, got, ok, c.want)
			}
		}
		// Without the gofunc bytes, the physical function only.
		tab, _ = newGoTable(pcln, text, nil)
		if got, _ := tab.lookup(nil, text+35); !cmp.Equal(got, []Frame{{Function: "main.f", File: "f.go", Line: 30}}) {
			t.Errorf("go120=%v without inline trees: got %+v", go120, got)
		}
	}
}

// TestGoTableMatchesGosym compares goTable with debug/gosym over every
// function of the test binary: the same physical function, and the same
// innermost file and line.
func TestGoTableMatchesGosym(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	ef, err := elf.NewFile(bytes.NewReader(file))
	if err != nil {
		t.Skipf("test binary is not ELF: %v", err)
	}
	syms, _ := symbolTable(ef, file, elf.SHT_SYMTAB)
	src, err := loadGo(ef, file, syms)
	if err != nil {
		t.Fatal(err)
	}
	tab := src.(*goTable)
	if tab.inl == nil {
		t.Error("inline trees not found")
	}
	sec := ef.Section(".gopclntab")
	data, err := sec.Data()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := gosym.NewTable(nil, gosym.NewLineTable(data, tab.text))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, fn := range ref.Funcs {
		if fn.End <= fn.Entry {
			continue // an alias of the next function (seen in C code of -race binaries)
		}
		for _, pc := range []uint64{fn.Entry, (fn.Entry + fn.End) / 2, fn.End - 1} {
			file, line, _ := ref.PCToLine(pc)
			if line < 0 {
				// Padding after the function's code, outside its tables:
				// goTable leaves the position empty too.
				line = 0
			}
			got, ok := tab.lookup(nil, pc)
			if !ok {
				t.Fatalf("%s pc %#x: not found", fn.Name, pc)
			}
			inner, outer := got[0], got[len(got)-1]
			if outer.Function != fn.Name || inner.File != file || inner.Line != line {
				t.Fatalf("%s pc %#x: got %+v, want %s and %s:%d", fn.Name, pc, got, fn.Name, file, line)
			}
			checked++
		}
	}
	t.Logf("%d functions, %d pcs", len(ref.Funcs), checked)
}

func TestGoTableRejects(t *testing.T) {
	pcln, _ := synthPclntab(synthFuncs, true, binary.LittleEndian)
	for name, b := range map[string][]byte{
		"empty":     nil,
		"bad magic": append([]byte{1, 2, 3, 4}, pcln[4:]...),
		"padding":   append(slices.Clone(pcln[:4]), append([]byte{1}, pcln[5:]...)...),
		"truncated": pcln[:40],
		"function count": func() []byte {
			b := slices.Clone(pcln)
			binary.LittleEndian.PutUint64(b[8:], 1<<40)
			return b
		}(),
		"old function count": func() []byte {
			b := slices.Clone(pcln)
			binary.LittleEndian.PutUint32(b, go116Magic)
			binary.LittleEndian.PutUint64(b[8:], uint64(len(b))) // more than fit
			return b
		}(),
		"unsorted": func() []byte {
			b := slices.Clone(pcln)
			functab := binary.LittleEndian.Uint64(b[8+7*8:])  // the pclnOffset word
			binary.LittleEndian.PutUint32(b[functab+8:], 200) // main.k past the end
			return b
		}(),
	} {
		if _, err := newGoTable(b, 0, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	old := slices.Clone(pcln)
	binary.LittleEndian.PutUint32(old, go116Magic)
	if _, err := newGoTable(old, 0, nil); err != errOldPclntab {
		t.Errorf("Go 1.16 table: got %v, want errOldPclntab", err)
	}
}
